"""Shared fixtures: data and weights beside the checkout, or stand-ins when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from neural_patch_synth.features import LAYOUT

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NPS_DATA", REPO.parent / "shared" / "data"))
NO_CUDA = "torch sees no CUDA device (this test runs on a GPU machine)"


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason=NO_CUDA))])
def device(request) -> torch.device:
    """Each device the engine runs on here: the CPU, and CUDA where torch sees it."""
    return torch.device(request.param)


def random_vgg(path: Path, last: str) -> Path:
    """Write VGG-19 weights up to conv layer ``last`` with fixed random values (torchvision's
    keys) — the engine's mechanics (shapes, matching, gradients, compositing) hold for any
    weights, so tests need no download and no ``../shared``."""
    gen = torch.Generator().manual_seed(0)
    state = {}
    for name, idx, cin in LAYOUT[: [n for n, _, _ in LAYOUT].index(last) + 1]:
        if name.startswith("conv"):
            cout = min(512, 64 * 2 ** (int(name[4]) - 1))
            std = (2.0 / (9 * cin)) ** 0.5
            state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * std
            state[f"features.{idx}.bias"] = torch.zeros(cout)
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def vgg_weights(tmp_path_factory) -> Path:
    """Random VGG-19 weights up to conv3_1, like the offline file."""
    return random_vgg(tmp_path_factory.mktemp("weights") / "vgg_to_conv3_1.pth", "conv3_1")


@pytest.fixture(scope="session")
def deep_vgg_weights(tmp_path_factory) -> Path:
    """Random VGG-19 weights up to conv4_1, standing in for torchvision's full file."""
    return random_vgg(tmp_path_factory.mktemp("weights") / "vgg_to_conv4_1.pth", "conv4_1")


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    folder = DATA / "kodak"
    if not folder.is_dir():
        pytest.skip(f"Kodak photos not found at {folder} (set NPS_DATA to the data folder)")
    return folder


@pytest.fixture
def unwritable_dir(tmp_path: Path):
    """A folder no file can be created in, even by root (``chattr +i``); skipped where that
    cannot be arranged."""
    import subprocess

    folder = tmp_path / "locked"
    folder.mkdir()
    root = os.geteuid() == 0
    if root:
        locked = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    else:
        folder.chmod(0o555)
        locked = True
    try:
        if not locked or os.access(folder, os.W_OK) and not root:
            pytest.skip("cannot make a folder unwritable here")
        yield folder
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)
