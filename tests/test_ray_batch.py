"""``nps batch --ray`` on a real local Ray instance: the same results as a plain run, workers
dying mid-photo, Ctrl-C. Faults are injected by tests/ray_hooks.py."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neural_patch_synth.cli import main

from .ray_hooks import HOOK

ray = pytest.importorskip("ray", reason="the ray extra is not installed "
                                        "(pip install -c constraints.txt -e '.[ray]')")

REPO = Path(__file__).resolve().parents[1]
FAST = ["--prior", "smooth", "--em-iterations", "1", "-q"]
TIMING = ("time", "seconds", "pid", "node")


@pytest.fixture(scope="session")
def cluster() -> str:
    """A local Ray instance with 2 CPUs for the whole session (its workers can import the tests,
    for the hook); its address."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, runtime_env={"worker_process_setup_hook": HOOK,
                                                       "env_vars": {"PYTHONPATH": str(REPO)}})
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _save(path: Path, size: int, seed: int, hole: bool = True) -> None:
    """A smooth random photo at ``path`` and, when ``hole``, its mask under ``../masks``."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(small).resize((size, size), Image.BILINEAR).save(path)
    if hole:
        mask = np.zeros((size, size), np.uint8)
        mask[size // 4: size // 2, size // 4: size // 2] = 255
        target = Path(str(path).replace("/photos/", "/masks/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(target)


def _batch(photos: Path, out: Path, *extra: str) -> int:
    return main(["batch", str(photos), "--masks", str(photos.parent / "masks"), "-o", str(out),
                 *FAST, *extra])


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "nps-report.jsonl").read_text().splitlines()]


def _results(out: Path, photos: Path) -> dict[str, dict]:
    """Latest result per photo, keyed by relative path; timing fields dropped and paths made
    relative, so runs into different folders compare equal."""
    results = {}
    for r in _lines(out):
        if r["status"] != "started":
            rel = Path(r["path"]).relative_to(photos).as_posix()
            results[rel] = {k: v for k, v in r.items() if k not in TIMING} | {
                "path": rel, "output": Path(r["output"]).relative_to(out).as_posix()}
    return results


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.png"))}


def test_same_as_a_plain_run_then_resumes(cluster, tmp_path, capsys):
    photos = tmp_path / "photos"
    for i, rel in enumerate(["a.png", "sub/b.png", "sub/deep/c.png"]):
        _save(photos / rel, 32, i)
    _save(photos / "nomask.png", 32, 7, hole=False)
    (photos / "sub" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    plain, spread = tmp_path / "plain", tmp_path / "ray"
    assert _batch(photos, plain, "--recursive") == 1
    capsys.readouterr()
    assert _batch(photos, spread, "--recursive", "--ray") == 1
    err = capsys.readouterr().err
    assert "3 done, 0 skipped, 2 failed" in err and "Traceback" not in err
    assert _results(spread, photos) == _results(plain, photos)
    assert _files(spread) == _files(plain)
    started = [r for r in _lines(spread) if r["status"] == "started"]
    assert len(started) == 5 and all(r["node"] and r["pid"] != os.getpid() for r in started)

    assert _batch(photos, spread, "--recursive", "--ray") == 1
    again = _results(spread, photos)
    assert {rel: r["status"] for rel, r in again.items()} == {
        "a.png": "skipped", "sub/b.png": "skipped", "sub/deep/c.png": "skipped",
        "nomask.png": "failed", "sub/corrupt.png": "failed"}
    assert "0 done, 3 skipped, 2 failed" in capsys.readouterr().err


def test_a_dead_worker_is_retried_once_on_a_new_one(cluster, tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    for i, name in enumerate(["a.png", "die-once.png", "die-always.png", "z.png"]):
        _save(photos / name, 32, i)
    assert _batch(photos, out, "--ray") == 1
    assert "3 done, 0 skipped, 1 failed" in capsys.readouterr().err
    results = _results(out, photos)
    assert {rel: r["status"] for rel, r in results.items()} == {
        "a.png": "done", "die-once.png": "done", "die-always.png": "failed", "z.png": "done"}
    assert "worker processing this photo died (Ray actor died" in results["die-always.png"]["error"]
    assert "tried 2 times" in results["die-always.png"]["crash"]
    pids = {name: [r["pid"] for r in _lines(out) if r["status"] == "started"
                   and r["path"].endswith(name)] for name in ("die-once.png", "die-always.png")}
    assert all(len(set(p)) == 2 for p in pids.values())  # a new actor each time
    assert not list(out.rglob("*.part"))
    assert Image.open(out / "die-once.png").size == (32, 32)


def test_ctrl_c_stops_the_workers_and_leaves_no_partial_file(cluster, tmp_path):
    photos, out = tmp_path / "photos", tmp_path / "out"
    for i, name in enumerate(["a.png", "hang.png"]):
        _save(photos / name, 32, i)
    env = {**os.environ, "PYTHONPATH": str(REPO),
           "RAY_RUNTIME_ENV_HOOK": "tests.ray_hooks.with_crashes"}
    proc = subprocess.Popen(  # Ctrl-C as in a terminal, even where this runs as a
        # background job, which starts with SIGINT ignored (and passes that on)
        [sys.executable, "-m", "neural_patch_synth.cli", "batch", str(photos), "--masks",
         str(tmp_path / "masks"), "-o", str(out), *FAST, "--ray", cluster],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not (out.is_dir() and list(out.glob(".hang.png.*.part"))):  # hung mid-write
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "nps: interrupted" in err and "Traceback" not in err
    assert not list(out.rglob("*.part"))
    assert [p.name for p in out.glob("*.png")] in ([], ["a.png"])
    assert {r["status"] for r in _lines(out) if r["path"].endswith("hang.png")} == {
        "started", "interrupted"}


@pytest.mark.parametrize("extra, words", [
    (["--ray", "--ray-workers", "0"], "--ray-workers must be at least 1, got 0"),
    (["--ray", "--gpus-per-worker", "-1"], "--gpus-per-worker must be 0 or more, got -1"),
    (["--ray", "--threads-per-worker", "0"], "--threads-per-worker must be at least 1"),
    (["--ray-workers", "2"], "--ray-workers needs --ray"),
    (["--ray", "--workers", "2"], "with --ray use --ray-workers"),
    (["--ray", "127.0.0.1:9"], "cannot reach the Ray cluster at 127.0.0.1:9"),
])
def test_bad_ray_options(tmp_path, capsys, extra, words):
    _save(tmp_path / "photos" / "a.png", 16, 0)
    assert _batch(tmp_path / "photos", tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
