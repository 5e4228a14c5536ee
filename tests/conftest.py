"""Shared fixtures: data and weights beside the checkout, or stand-ins when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from neural_patch_synth.features import LAYOUT

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("NPS_DATA", REPO.parent / "shared" / "data"))
SHARED_VGG = REPO.parent / "shared" / "weights" / "vgg19_features_to_relu3_1.pth"


@pytest.fixture(scope="session")
def vgg_weights(tmp_path_factory) -> Path:
    """A VGG-19 weight file up to conv3_1 with fixed random weights (torchvision's keys).

    The engine's mechanics (shapes, matching, gradients, compositing) hold for any weights, so
    these tests need no download and no ``../shared``.
    """
    gen = torch.Generator().manual_seed(0)
    state = {}
    for name, idx, cin in LAYOUT[: [n for n, _, _ in LAYOUT].index("conv3_1") + 1]:
        if name.startswith("conv"):
            cout = {1: 64, 2: 128, 3: 256}[int(name[4])]
            state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * (
                2.0 / (9 * cin)) ** 0.5
            state[f"features.{idx}.bias"] = torch.zeros(cout)
    path = tmp_path_factory.mktemp("weights") / "vgg_random_to_conv3_1.pth"
    torch.save(state, path)
    return path


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    folder = DATA / "kodak"
    if not folder.is_dir():
        pytest.skip(f"Kodak photos not found at {folder} (set NPS_DATA to the data folder)")
    return folder


@pytest.fixture(scope="session")
def imagenet_vgg() -> Path:
    if not SHARED_VGG.is_file():
        pytest.skip(f"ImageNet VGG-19 weights not found at {SHARED_VGG}")
    return SHARED_VGG
