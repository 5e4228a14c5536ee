import numpy as np

from neural_patch_synth.bench.speed import measure
from tests.test_synthesis import textured


def test_speed_breakdown_adds_up(vgg_weights):
    img = textured(128, 128)
    mask = np.zeros((128, 128), bool)
    mask[32:96, 32:96] = True
    r = measure(img, mask, vgg_weights=str(vgg_weights), prior="smooth", iterations=(3,))
    parts = [k for k in r if k.endswith("_s") and k != "total_s"]
    assert abs(sum(r[k] for k in parts) - r["total_s"]) < 1e-6
    assert all(r[k] >= 0 for k in parts if k != "other_s")
    assert r["vgg_forward_s"] > 0 and r["patch_search_s"] > 0
    assert np.isfinite(r["hole_psnr_db"])
