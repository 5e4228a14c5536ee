"""Image pyramids of a context window: level sizes, known-pixel downsampling, resizing."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


def pyramid_sizes(height: int, width: int, coarse: float) -> list[tuple[int, int]]:
    """``(h, w)`` per level, coarse to fine: ×2 per level, the coarsest about ``coarse`` px on
    its longer side, the finest exactly ``(height, width)``."""
    levels = max(1, 1 + round(math.log2(max(height, width) / coarse)))
    return level_sizes(height, width, levels)


def level_sizes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """``(h, w)`` of ``levels`` levels, coarse to fine, halving per level."""
    scales = [2 ** (levels - 1 - k) for k in range(levels)]
    return [(max(1, round(height / s)), max(1, round(width / s))) for s in scales]


def level_count(hole: np.ndarray, reach: float, min_side: int) -> int:
    """Levels a patch pyramid needs for ``hole`` ``(h, w)`` bool: enough that every hole pixel
    is within ``reach`` pixels of a known one at the coarsest level (so that the coarsest
    level can fill it from its surroundings), but no level whose longer side is under
    ``min_side``."""
    depth = float(ndimage.distance_transform_edt(hole).max())
    wanted = 1 + max(0, math.ceil(math.log2(max(depth, 1.0) / reach)))
    room = 1 + max(0, int(math.log2(max(hole.shape) / min_side)))
    return max(1, min(wanted, room))


def downsample(image: torch.Tensor, hole: torch.Tensor, size: tuple[int, int],
               majority: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Known-pixel average of ``image`` ``(1, C, H, W)`` at ``size``, and the hole there.

    A pixel of the result is a hole when any source pixel under it is (``majority``: when most
    are, so thin holes do not swallow the context at coarse levels); known pixels average only
    known sources, so hole values never leak into the context.
    """
    if tuple(image.shape[-2:]) == tuple(size):
        return image, hole
    known = 1 - hole
    num = F.interpolate(image * known, size=size, mode="area")
    den = F.interpolate(known, size=size, mode="area")
    share = F.interpolate(hole, size=size, mode="area")
    small_hole = (share > 0.5 if majority else share > 0).float()
    return num / den.clamp_min(1e-8), small_hole


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area (down) or bicubic (up) resize of ``(1, C, H, W)``, clamped to ``[0, 1]``."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    mode = "area" if size[0] < image.shape[-2] else "bicubic"
    kwargs = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(image, size=size, mode=mode, **kwargs).clamp(0, 1)
