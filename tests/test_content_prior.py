"""Content-prior benchmark helpers: weights labels, border masks, fine-texture ratio, sheet."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from neural_patch_synth.bench.content_prior import (
    BORDER_CATEGORY,
    border_masks,
    fine_texture,
    parse_weights,
    write_sheet,
)
from neural_patch_synth.masks import MASK_CATEGORIES, centre_square_mask
from neural_patch_synth.prior.layers import mean_fill


def test_parse_weights() -> None:
    assert parse_weights(["a/content_net.pt", "v1=b.pt", "c/old.pt"]) == {
        "network": Path("a/content_net.pt"), "v1": Path("b.pt"), "old": Path("c/old.pt")}


def test_border_masks_touch_the_edge_in_their_category() -> None:
    masks = border_masks(6)
    assert masks.shape == (6, 1, 128, 128)
    lo, hi = MASK_CATEGORIES[BORDER_CATEGORY]
    for m in masks[:, 0] > 0.5:
        assert lo <= float(m.float().mean()) <= hi
        assert m[[0, -1]].any() or m[:, [0, -1]].any()
    assert torch.equal(masks, border_masks(6))


def test_fine_texture_of_truth_and_of_a_flat_fill() -> None:
    torch.manual_seed(0)
    images = torch.rand(3, 3, 64, 64)
    masks = torch.from_numpy(centre_square_mask(64, 32)).float()[None, None].repeat(3, 1, 1, 1)
    assert fine_texture(images, images, masks) == pytest.approx(1.0)
    assert fine_texture(mean_fill(images, masks), images, masks) == pytest.approx(0.0, abs=1e-3)


def test_sheet(tmp_path: Path) -> None:
    images = torch.rand(2, 3, 128, 128)
    masks = torch.from_numpy(centre_square_mask()).float()[None, None].repeat(2, 1, 1, 1)
    path = tmp_path / "sheet.jpg"
    write_sheet(path, {"mean": mean_fill}, images, masks)
    with Image.open(path) as im:
        assert im.width == 2 * 3 * 128  # two images per row: input, one fill, truth
    assert list(tmp_path.iterdir()) == [path]
