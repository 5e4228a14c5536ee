"""Dominant shifts: the repeat offsets of a photo, and their rounding to a pyramid level."""

import torch

from neural_patch_synth.shifts import MIN_SHIFT, SIDE, dominant_shifts, level_shifts
from tests.images import textured, tiled


def photo(pixels) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255


def box_hole(h: int, w: int, box: tuple[int, int, int, int]) -> torch.Tensor:
    hole = torch.zeros(1, 1, h, w)
    hole[..., box[0]:box[1], box[2]:box[3]] = 1
    return hole


def test_a_periodic_texture_repeats_at_multiples_of_its_period():
    period = 12
    image = photo(tiled(SIDE, SIDE, period))
    shifts = dominant_shifts(image, box_hole(SIDE, SIDE, (20, 44, 20, 44)), 8)
    assert len(shifts) == 8
    assert bool((shifts.remainder(period) == 0).all())  # every peak a whole number of periods
    assert bool((shifts.abs().amax(1) >= MIN_SHIFT * SIDE).all())


def test_shifts_are_in_the_windows_own_pixels():
    """The statistics are taken at SIDE pixels; the shifts come back at the window's scale."""
    period = 12
    small = dominant_shifts(photo(tiled(SIDE, SIDE, period)),
                            box_hole(SIDE, SIDE, (20, 44, 20, 44)), 4)
    big = dominant_shifts(photo(tiled(SIDE, SIDE, period).repeat(4, 0).repeat(4, 1)),
                          box_hole(4 * SIDE, 4 * SIDE, (80, 176, 80, 176)), 4)
    assert torch.equal(big, 4 * small)


def test_a_photo_with_too_few_known_patches_has_no_shifts():
    image = photo(textured(16, 16))
    assert len(dominant_shifts(image, box_hole(16, 16, (2, 14, 2, 14)), 10)) == 0


def test_level_shifts_round_and_drop_duplicates_and_zero():
    shifts = torch.tensor([[0.0, 40.0], [4.0, -44.0], [1.0, 1.0], [0.0, 38.0], [-36.0, 12.0]])
    out = level_shifts(shifts, (512, 512), (32, 32))
    assert out.dtype == torch.long
    assert out.tolist() == [[0, 2], [0, -3], [-2, 1]]  # (0.06, 0.06) rounds to zero: dropped
    assert level_shifts(shifts[2:3], (512, 512), (32, 32)).shape == (0, 2)
