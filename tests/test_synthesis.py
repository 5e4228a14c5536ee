"""The engine end to end through the public API (default ``method="vote"``)."""

import numpy as np
import pytest
import torch
from PIL import Image

from neural_patch_synth import Inpainter, inpaint, voting
from neural_patch_synth.config import InpaintConfig
from neural_patch_synth.poisson import seamless_clone
from neural_patch_synth.synthesis import Synthesizer
from tests.images import textured, tiled


def holed(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo as a user gives it: hole pixels carry nothing of the truth."""
    return np.where(mask[..., None], 0, img).astype(np.uint8)


def test_a_periodic_texture_is_filled_exactly(device):
    """Every patch of a periodic texture exists outside the hole: voting must copy it back
    (without the detail step, which sharpens even an exact copy)."""
    img = tiled(96, 128)
    mask = np.zeros((96, 128), bool)
    mask[30:70, 40:90] = True
    out = inpaint(holed(img, mask), mask, prior="smooth", detail=0.0, device=device.type,
                  progress=False)
    err = np.abs(out[mask].astype(float) - img[mask]).mean()
    mean_fill_err = np.abs(img[mask].astype(float) - img[~mask].mean(0)).mean()
    assert err < 0.05 * mean_fill_err


@pytest.mark.parametrize("shape", [(64, 64), (61, 77)])
def test_known_pixels_untouched_and_hole_filled(shape, device):
    img = textured(*shape)
    mask = np.zeros(shape, bool)
    mask[18:40, 20:45] = True
    out = inpaint(holed(img, mask), mask, prior="smooth", device=device.type, progress=False)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], img[~mask])
    mean_fill_err = np.abs(img[mask].astype(float) - img[~mask].mean(0)).mean()
    assert np.abs(out[mask].astype(float) - img[mask]).mean() < 0.5 * mean_fill_err


def test_holes_on_the_border_and_several_holes(device):
    img = tiled(96, 160)
    mask = np.zeros((96, 160), bool)
    mask[10:20, 10:20] = True
    mask[40:96, 130:160] = True  # touches the bottom and right edges
    out = Inpainter(prior="smooth", device=device.type, progress=False)(holed(img, mask), mask)
    assert np.array_equal(out[~mask], img[~mask])
    assert np.abs(out[mask].astype(float) - img[mask]).mean() < 5


def test_seed_makes_runs_reproducible_on_any_thread_count(device):
    img = textured(48, 64, seed=3)
    mask = np.zeros((48, 64), bool)
    mask[12:30, 14:44] = True
    given, threads = holed(img, mask), torch.get_num_threads()
    options = {"prior": "smooth", "device": device.type, "progress": False}
    try:
        runs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            runs.append(inpaint(given, mask, seed=7, **options))
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(runs[0], runs[1])
    other = inpaint(given, mask, seed=8, **options)
    assert not np.array_equal(runs[0], other)


def test_hole_pixels_reach_the_fill_only_through_the_prior(device):
    """What a photo holds under its hole (the object to remove) must not leak into the fill
    except through the prior: replaying the prior's output on the zeroed photo gives the
    same fill (``benchmarks/oracle_prior.py``'s perfect prior relies on it)."""
    img = textured(64, 80, seed=5)
    mask = np.zeros((64, 80), bool)
    mask[16:44, 20:60] = True
    seen: list[torch.Tensor] = []

    class Perfect:  # returns the photo, hole pixels included, and records it
        size = None

        def __call__(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
            seen.append(image.clone())
            return image

    class Replay:
        size = None

        def __call__(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
            return seen.pop(0)

    config = InpaintConfig(device=device.type, progress=False)
    truth = Synthesizer(config, Perfect(), device)(img, mask)
    zeroed = Synthesizer(config, Replay(), device)(holed(img, mask), mask)
    assert np.array_equal(truth, zeroed)
    assert not np.array_equal(truth, Synthesizer(config, Perfect(), device)(holed(img, mask),
                                                                            mask))


def test_poisson_blend_is_seamless_cloning_of_the_fill(device):
    """``blend="poisson"`` = the same seeded fill, seamlessly cloned; known pixels kept."""
    img = textured(48, 48)
    mask = np.zeros((48, 48), bool)
    mask[16:32, 16:32] = True
    options = {"prior": "smooth", "device": device.type, "progress": False}
    plain = inpaint(holed(img, mask), mask, **options)
    out = inpaint(holed(img, mask), mask, blend="poisson", **options)
    assert np.array_equal(out[~mask], img[~mask])
    def tensor(a):
        return torch.from_numpy(a).permute(2, 0, 1).float() / 255

    cloned = seamless_clone(tensor(img), tensor(plain), torch.from_numpy(mask)).clamp(0, 1)
    expected = (cloned * 255).round().permute(1, 2, 0).numpy()
    assert np.abs(out.astype(float) - expected).max() <= 1
    assert not np.array_equal(out, plain)


def test_prior_only_and_types():
    img = Image.fromarray(textured(40, 50))
    mask = Image.new("L", img.size)
    mask.paste(255, (10, 10, 30, 25))
    out = inpaint(img, mask, prior="smooth", prior_only=True, progress=False)
    assert isinstance(out, Image.Image) and out.size == img.size and out.mode == "RGB"
    rgba = np.dstack([textured(40, 50), np.full((40, 50), 255, np.uint8)])
    rgba[5:15, 5:20, 3] = 0
    filled = inpaint(rgba, prior="smooth", prior_only=True, progress=False)
    assert filled.shape == (40, 50, 4) and (filled[..., 3] == 255).all()
    assert np.array_equal(filled[..., :3][rgba[..., 3] == 255], rgba[..., :3][rgba[..., 3] == 255])


def test_guide_sigma_reaches_the_layout_guide(monkeypatch):
    sigmas = []
    layout_guide = voting.layout_guide

    def recorded(start, sigma):
        sigmas.append(sigma)
        return layout_guide(start, sigma)

    monkeypatch.setattr(voting, "layout_guide", recorded)
    img, mask = textured(48, 64), np.zeros((48, 64), bool)
    mask[16:32, 20:44] = True
    inpaint(holed(img, mask), mask, prior="smooth", guide_sigma=5.0, progress=False)
    assert sigmas == [5.0]
