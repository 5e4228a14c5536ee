"""The speed figure's time breakdown, and the speed section's patch sets against the engine's."""

import numpy as np
import pytest
import torch

from neural_patch_synth import Inpainter
from neural_patch_synth.bench import scaling
from neural_patch_synth.bench.speed import measure
from tests.test_synthesis import textured

TIMED = ("prior_s", "vgg_forward_s", "loss_and_vgg_backward_s", "patch_search_s",
         "optimiser_overhead_s")
"""The parts timed directly (``other_s`` is the total minus these)."""


@pytest.fixture(scope="module")
def case() -> tuple[np.ndarray, np.ndarray]:
    img = textured(96, 96)
    mask = np.zeros((96, 96), bool)
    mask[24:72, 24:72] = True
    return img, mask


def optimiser_work(r: dict) -> float:
    return r["vgg_forward_s"] + r["loss_and_vgg_backward_s"] + r["optimiser_overhead_s"]


def test_speed_breakdown_is_consistent(vgg_weights, case):
    """Timed parts are non-negative, nested inside the total, VGG and search are seen when
    they run (and not when they do not), and the optimiser's parts grow with iterations."""
    options = {"vgg_weights": str(vgg_weights), "prior": "smooth", "device": "cpu"}
    few = measure(*case, iterations=(1,), **options)
    many = measure(*case, iterations=(8,), **options)
    for r in (few, many):
        assert all(r[k] >= 0 for k in TIMED), r
        assert sum(r[k] for k in TIMED) <= r["total_s"], r
        assert r["vgg_forward_s"] > 0 and r["patch_search_s"] > 0
        assert np.isfinite(r["hole_psnr_db"])
    assert optimiser_work(many) > optimiser_work(few)
    plain = measure(*case, iterations=(2,), texture_weight=0.0, **options)
    assert plain["vgg_forward_s"] == 0 and plain["patch_search_s"] == 0
    assert plain["loss_and_vgg_backward_s"] > 0


@pytest.mark.parametrize("colour", [False, True])
def test_speed_patch_sets_match_the_engine(vgg_weights, case, colour):
    """The search benchmark's queries and keys are the engine's (``prepare_texture``); when this
    fails, the engine changed how it picks patches: update ``scaling.texture_centres``."""
    image, mask = case
    nps = Inpainter(vgg_weights=str(vgg_weights), prior="smooth", device="cpu", progress=False,
                    max_known_patches=150, texture_colour=colour)
    cfg, cpu = nps.config, torch.device("cpu")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    hole = torch.from_numpy(mask)[None, None].float()
    engine = nps.synthesizer.prepare_texture(x, hole)[cfg.layers[0]]
    centres, known = scaling.texture_centres(mask, cfg, cfg.layers[0], cpu)
    queries, keys, source = scaling.texture_patches(image, mask, cfg, cpu)
    assert torch.equal(centres, engine.hole_centres)
    assert 0 < len(known) <= 150 and len(queries) == len(centres)
    assert keys.shape == engine.keys.shape
    assert torch.allclose(keys, engine.keys, atol=1e-5, rtol=1e-4)
    assert source.startswith("vgg") and ("brightness" in source) != colour
