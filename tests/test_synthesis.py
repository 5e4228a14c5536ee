import numpy as np
import pytest
import torch

from neural_patch_synth import InpaintConfig, Inpainter, inpaint
from neural_patch_synth.prior import SmoothPrior
from neural_patch_synth.synthesis import (
    LevelProblem,
    Synthesizer,
    downsample,
    make_tiles,
    pyramid_sizes,
)


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A small photo-like test image: stripes plus noise, uint8 ``(h, w, 3)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = 0.5 + 0.3 * np.sin(xx / 3.0)[..., None] * np.array([1.0, 0.6, 0.2])
    return np.clip((base + 0.05 * rng.standard_normal((h, w, 3))) * 255, 0, 255).astype(np.uint8)


def test_pyramid_sizes():
    assert pyramid_sizes(512, 512, 128) == [(128, 128), (256, 256), (512, 512)]
    assert pyramid_sizes(513, 257, 128) == [(128, 64), (256, 128), (513, 257)]
    assert pyramid_sizes(2048, 1536, 128) == [(128, 96), (256, 192), (512, 384), (1024, 768),
                                              (2048, 1536)]
    assert pyramid_sizes(90, 70, 128) == [(90, 70)]


def test_downsample_never_leaks_hole_values():
    img = torch.rand(1, 3, 8, 8)
    hole = torch.zeros(1, 1, 8, 8)
    hole[..., 2:5, 2:5] = 1
    img_poisoned = img.clone()
    img_poisoned[hole.expand_as(img) > 0] = 1e6
    a, ha = downsample(img, hole, (4, 4))
    b, hb = downsample(img_poisoned, hole, (4, 4))
    assert torch.equal(ha, hb)
    assert torch.allclose(a[(ha < 0.5).expand_as(a)], b[(hb < 0.5).expand_as(b)])
    assert ha[0, 0].tolist() == [[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]


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
    cfg = InpaintConfig(prior="smooth", vgg_weights=str(vgg_weights), progress=False,
                        layers=("relu2_1", "relu3_1"))
    synth = Synthesizer(cfg, SmoothPrior(), torch.device("cpu"))
    img = torch.from_numpy(textured(64, 64)).permute(2, 0, 1)[None].float() / 255
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 20:44, 20:44] = 1
    start = torch.where(hole > 0.5, torch.full_like(img, 0.5), img)
    problem = LevelProblem(synth, start, hole, pool=1)
    problem.update_matches()
    before = float(problem.loss())
    assert problem.step(15) == pytest.approx(before)
    assert float(problem.loss()) < 0.9 * before
    known = (hole < 0.5).expand_as(img)
    assert torch.equal(problem.image()[known], img[known])


@pytest.mark.parametrize("shape", [(64, 64), (61, 77)])
def test_known_pixels_untouched_and_hole_filled(vgg_weights, shape):
    img = textured(*shape)
    mask = np.zeros(shape, bool)
    mask[18:40, 20:45] = True
    out = inpaint(img, mask, vgg_weights=str(vgg_weights), prior="smooth", iterations=(6, 4),
                  coarse_size=32, progress=False)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out[~mask], img[~mask])
    mean_fill_err = np.abs(img[mask].astype(float) - img[~mask].mean(0)).mean()
    assert np.abs(out[mask].astype(float) - img[mask]).mean() < mean_fill_err


def test_several_separate_holes(vgg_weights):
    img = textured(96, 160)
    mask = np.zeros((96, 160), bool)
    mask[10:20, 10:20] = True
    mask[70:84, 130:150] = True
    out = Inpainter(vgg_weights=str(vgg_weights), prior="smooth", iterations=(4,),
                    progress=False)(img, mask)
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out[mask], np.zeros_like(out[mask]))


def test_seed_makes_runs_reproducible(vgg_weights):
    img = textured(48, 48, seed=3)
    mask = np.zeros((48, 48), bool)
    mask[12:30, 14:34] = True
    opts = dict(vgg_weights=str(vgg_weights), prior="smooth", iterations=(5,), progress=False)
    assert np.array_equal(inpaint(img, mask, seed=7, **opts), inpaint(img, mask, seed=7, **opts))


def test_prior_only_and_types(vgg_weights):
    from PIL import Image

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



def test_deeper_layers_with_a_full_weight_file(deep_vgg_weights):
    cfg = InpaintConfig(prior="smooth", vgg_weights=str(deep_vgg_weights), progress=False,
                        layers=("relu3_1", "relu4_1"), iterations=(4,))
    synth = Synthesizer(cfg, SmoothPrior(), torch.device("cpu"))
    img = textured(160, 160)
    mask = np.zeros((160, 160), bool)
    mask[50:110, 55:105] = True
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    hole = torch.from_numpy(mask)[None, None].float()
    layers = synth.prepare_texture(x, hole)
    assert set(layers) == {"relu3_1", "relu4_1"}
    assert layers["relu4_1"].keys.shape[1] == 512 * 9
    out = synth(torch.from_numpy(img.astype(np.float32) / 255), torch.from_numpy(mask))
    assert torch.equal(out[~torch.from_numpy(mask)], x[0].permute(1, 2, 0)[~torch.from_numpy(mask)])
