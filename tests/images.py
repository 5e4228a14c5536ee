"""Small synthetic photos shared by the tests."""

from __future__ import annotations

import numpy as np


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A small photo-like test image: stripes plus noise, uint8 ``(h, w, 3)``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    base = 0.5 + 0.3 * np.sin(xx / 3.0)[..., None] * np.array([1.0, 0.6, 0.2])
    return np.clip((base + 0.05 * rng.standard_normal((h, w, 3))) * 255, 0, 255).astype(np.uint8)


def tiled(h: int, w: int, period: int = 8, seed: int = 0) -> np.ndarray:
    """A periodic texture: one random ``period²`` colour tile repeated, uint8 ``(h, w, 3)``.

    Every patch of it occurs elsewhere in the image, so a hole in it has an exact fill.
    """
    tile = np.random.default_rng(seed).integers(0, 256, (period, period, 3), dtype=np.uint8)
    return np.tile(tile, (h // period + 1, w // period + 1, 1))[:h, :w].copy()
