"""A non-learned prior: coarse-to-fine (push-pull) smooth fill of the hole."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def smooth_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill holes by push-pull interpolation of the known pixels.

    ``image``: ``(B, C, H, W)`` float; ``mask``: ``(B, 1, H, W)`` with 1 = hole. Known pixels are
    averaged down a pyramid, then the pyramid is collapsed coarse to fine, each level keeping its
    own known average where it has one. Returns ``(B, C, H, W)``, known pixels unchanged.
    """
    weight = 1.0 - mask
    levels = [(image * weight, weight)]
    while min(levels[-1][0].shape[-2:]) > 1:
        v, w = levels[-1]
        levels.append((F.avg_pool2d(v, 2, ceil_mode=True), F.avg_pool2d(w, 2, ceil_mode=True)))
    fill = levels[-1][0] / levels[-1][1].clamp_min(1e-8)
    for v, w in reversed(levels[:-1]):
        up = F.interpolate(fill, size=v.shape[-2:], mode="bilinear", align_corners=False)
        trust = w.clamp(0, 1)
        fill = trust * (v / w.clamp_min(1e-8)) + (1 - trust) * up
    return torch.where(mask > 0.5, fill, image)


class SmoothPrior:
    """:func:`smooth_fill` as a prior (works at any size)."""

    size: int | None = None

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return smooth_fill(image, mask)
