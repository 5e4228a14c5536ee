"""``benchmarks/box_sizes.py``'s cases: seeded box spots inside the photo, their masks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from neural_patch_synth.errors import NPSError

from .conftest import REPO

_spec = importlib.util.spec_from_file_location("box_sizes", REPO / "benchmarks" / "box_sizes.py")
box_sizes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(box_sizes)


@pytest.mark.parametrize(("height", "width", "side", "margin"),
                         [(512, 768, 96, 48), (768, 512, 160, 80), (512, 768, 256, 32)])
def test_box_spot_keeps_the_margin(height, width, side, margin):
    rng = np.random.default_rng(0)
    for _ in range(200):
        y, x = box_sizes.box_spot(height, width, side, rng)
        assert margin <= y <= height - side - margin
        assert margin <= x <= width - side - margin


def test_box_spot_is_seeded_and_refuses_a_small_photo():
    spots = [box_sizes.box_spot(512, 768, 96, np.random.default_rng(96)) for _ in range(2)]
    assert spots[0] == spots[1]
    with pytest.raises(NPSError, match="no room"):
        box_sizes.box_spot(300, 300, 256, np.random.default_rng(0))


def test_box_cases_take_every_second_photo_with_its_box(tmp_path):
    (tmp_path / "kodak").mkdir()
    for i in range(1, 5):
        Image.new("RGB", (200, 150), (10 * i, 0, 0)).save(tmp_path / "kodak" / f"kodim0{i}.png")
    cases = box_sizes.box_cases(tmp_path, 40, tmp_path / "masks")
    assert [c.image_id for c in cases] == ["kodim02", "kodim04"]
    assert {c.dataset for c in cases} == {"kodak-box-40"}
    for case in cases:
        image, mask = case.load()
        assert image.shape == (150, 200, 3) and mask.sum() == 40 * 40
        ys, xs = np.nonzero(mask)
        assert ys.max() - ys.min() == xs.max() - xs.min() == 39
