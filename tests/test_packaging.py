"""Installed like a library: the wheel ships the content network and nothing else at the top
level; which prior runs is said, and a fallback is never silent."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neural_patch_synth import Inpainter, NPSError
from neural_patch_synth import prior as prior_mod
from neural_patch_synth.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_network_and_no_benchmarks(tmp_path):
    pytest.importorskip("setuptools")  # built without isolation: no download
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "runs", "bench-out"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "wheel"),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "neural_patch_synth/pretrained/content_net.pt" in names
    assert "neural_patch_synth/py.typed" in names
    assert {name.split("/")[0] for name in names} == {
        "neural_patch_synth", wheel.name.split("-py3")[0] + ".dist-info"}


@pytest.fixture
def no_shipped_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("NPS_CONTENT_WEIGHTS", raising=False)
    monkeypatch.setattr(prior_mod, "PRETRAINED", tmp_path / "gone" / "content_net.pt")


def _photo(tmp_path: Path) -> tuple[Path, Path]:
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(tmp_path / "p.png")
    mask = np.zeros((32, 32), np.uint8)
    mask[8:16, 8:16] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    return tmp_path / "p.png", tmp_path / "m.png"


def test_auto_prior_says_when_it_falls_back(no_shipped_weights, caplog):
    with caplog.at_level(logging.WARNING, logger="neural_patch_synth"):
        Inpainter(prior="auto", prior_only=True, device="cpu")
    assert "the smooth prior is used instead" in caplog.text
    with pytest.raises(NPSError, match="prior 'network' needs the content-network weights"):
        Inpainter(prior="network", prior_only=True, device="cpu")


def test_cli_notes_the_fallback_and_verbose_names_the_prior(no_shipped_weights, tmp_path,
                                                            capsys):
    photo, mask = _photo(tmp_path)
    args = ["inpaint", str(photo), "--mask", str(mask), "--prior-only", "-q"]
    assert main([*args, "-o", str(tmp_path / "a.png")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("nps: warning: no content-network weights")
    assert main([*args, "-o", str(tmp_path / "b.png"), "--prior", "smooth", "-v"]) == 0
    assert capsys.readouterr().err.splitlines() == ["nps: prior: smooth fill"]


@pytest.mark.skipif(not prior_mod.PRETRAINED.exists(), reason="no shipped weights")
def test_verbose_names_the_shipped_network(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("NPS_CONTENT_WEIGHTS", raising=False)
    photo, mask = _photo(tmp_path)
    assert main(["inpaint", str(photo), "--mask", str(mask), "--prior-only", "-q", "-v",
                 "-o", str(tmp_path / "a.png")]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"nps: prior: content network {prior_mod.PRETRAINED}"]
