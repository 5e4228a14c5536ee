"""The Python API takes the same mask options as the command line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from neural_patch_synth import NPSError, inpaint

FAST = {"prior": "smooth", "prior_only": True, "device": "cpu", "progress": False}


def test_mask_threshold_inversion_and_large_holes():
    image = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    mask = np.zeros((20, 20), np.uint8)
    mask[5:10, 5:10] = 255
    mask[15:, 15:] = 60  # faint (JPEG ringing, say): not a hole
    out = inpaint(image, mask, **FAST)
    changed = (out != image).any(axis=2)
    assert changed[5:10, 5:10].any() and not changed[mask < 128].any()
    as_pil = inpaint(Image.fromarray(image), Image.fromarray(mask), **FAST)
    assert np.array_equal(np.asarray(as_pil), out)

    big = np.full((20, 20), 255, np.uint8)
    big[:5, :5] = 0  # a mask drawn the wrong way round
    with pytest.raises(NPSError, match="probably inverted"):
        inpaint(image, big, **FAST)
    inverted = inpaint(image, big, invert_mask=True, **FAST)
    assert not (inverted != image).any(axis=2)[big > 0].any()
    assert (inpaint(image, big, allow_large_hole=True, **FAST) != image).any()
