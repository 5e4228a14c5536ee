"""The paper's L-BFGS pyramid (``method="optimise"``): tiles, loss, layers."""

import numpy as np
import pytest
import torch

from neural_patch_synth import InpaintConfig, inpaint
from neural_patch_synth.optimise import LevelProblem, NeuralOptimiser, make_tiles
from tests.images import textured


def test_tiles_cover_every_centre_once_and_give_exact_features(vgg_weights):
    from neural_patch_synth.features import load_vgg
    from neural_patch_synth.patches import extract_patches

    vgg = load_vgg(("relu2_1", "relu3_1"), vgg_weights)
    x = torch.rand(1, 3, 96, 112)
    centres = {"relu2_1": torch.stack(torch.meshgrid(torch.arange(10, 38), torch.arange(12, 44),
                                                     indexing="ij"), -1).reshape(-1, 2),
               "relu3_1": torch.tensor([[5, 5], [12, 20], [20, 26]])}
    tiles = make_tiles(centres, (96, 112), 3, tile=32)
    assert len(tiles) > 1
    full = vgg(x)
    for name, c in centres.items():
        owned = torch.cat([t.owned[name] for t in tiles])
        assert sorted(owned.tolist()) == list(range(len(c)))
        for t in tiles:
            if len(t.owned[name]):
                feats = vgg(x[:, :, t.y0:t.y1, t.x0:t.x1])
                got = extract_patches(feats[name], t.local[name])
                want = extract_patches(full[name], c[t.owned[name]])
                assert torch.allclose(got, want, atol=1e-4)


def test_loss_decreases_with_fixed_matches(vgg_weights):
    cfg = InpaintConfig(method="optimise", vgg_weights=str(vgg_weights), progress=False,
                        layers=("relu2_1", "relu3_1"))
    optimiser = NeuralOptimiser(cfg, torch.device("cpu"))
    img = torch.from_numpy(textured(64, 64)).permute(2, 0, 1)[None].float() / 255
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 20:44, 20:44] = 1
    start = torch.where(hole > 0.5, torch.full_like(img, 0.5), img)
    problem = LevelProblem(optimiser, start, hole, pool=1)
    problem.update_matches()
    before = float(problem.loss())
    assert problem.step(15) == pytest.approx(before)
    assert float(problem.loss()) < 0.9 * before
    known = (hole < 0.5).expand_as(img)
    assert torch.equal(problem.image()[known], img[known])


def test_optimise_fills_and_keeps_known_pixels(vgg_weights, device):
    img = textured(64, 64)
    mask = np.zeros((64, 64), bool)
    mask[18:40, 20:45] = True
    given = np.where(mask[..., None], 0, img).astype(np.uint8)
    out = inpaint(given, mask, method="optimise", vgg_weights=str(vgg_weights), prior="smooth",
                  iterations=(6, 4), coarse_size=32, device=device.type, progress=False)
    assert np.array_equal(out[~mask], img[~mask])
    mean_fill_err = np.abs(img[mask].astype(float) - img[~mask].mean(0)).mean()
    assert np.abs(out[mask].astype(float) - img[mask]).mean() < mean_fill_err


def test_deeper_layers_with_a_full_weight_file(deep_vgg_weights):
    cfg = InpaintConfig(method="optimise", vgg_weights=str(deep_vgg_weights), progress=False,
                        layers=("relu3_1", "relu4_1"), iterations=(4,))
    optimiser = NeuralOptimiser(cfg, torch.device("cpu"))
    img = textured(160, 160)
    mask = np.zeros((160, 160), bool)
    mask[50:110, 55:105] = True
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    hole = torch.from_numpy(mask)[None, None].float()
    layers = optimiser.prepare_texture(x, hole)
    assert set(layers) == {"relu3_1", "relu4_1"}
    assert layers["relu4_1"].keys.shape[1] == 512 * 9
