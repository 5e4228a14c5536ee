"""The speed figure's time breakdown (``python -m neural_patch_synth.bench.speed``)."""

import numpy as np
import pytest

from neural_patch_synth import Inpainter
from neural_patch_synth.bench.speed import measure
from tests.images import textured

TIMED = ("prior_s", "search_s", "vote_s", "seams_s")
"""The parts timed directly (``other_s`` is the total minus these)."""


@pytest.fixture(scope="module")
def case() -> tuple[np.ndarray, np.ndarray]:
    img = textured(96, 96)
    mask = np.zeros((96, 96), bool)
    mask[24:72, 24:72] = True
    return img, mask


def test_speed_breakdown_is_consistent(case, device):
    """Timed parts are non-negative and nested inside the total; search and vote are seen, the
    seam pass only when it runs, and the search grows with the iterations."""
    options = {"prior": "smooth", "device": device.type, "progress": False}
    few_nps = Inpainter(em_iterations=(1,), seams=False, **options)
    many_nps = Inpainter(em_iterations=(12,), seams=True, **options)
    # three runs each, compared by their fastest: a busy machine can stall any one run
    few = [measure(*case, few_nps) for _ in range(3)]
    many = [measure(*case, many_nps) for _ in range(3)]
    for r in few + many:
        assert all(r[k] >= 0 for k in TIMED), r
        assert sum(r[k] for k in TIMED) <= r["total_s"], r
        assert r["search_s"] > 0 and r["vote_s"] > 0 and r["prior_s"] > 0
        assert np.isfinite(r["hole_psnr_db"])
    assert all(r["seams_s"] == 0 for r in few) and all(r["seams_s"] > 0 for r in many)
    assert min(r["search_s"] for r in many) > min(r["search_s"] for r in few)
