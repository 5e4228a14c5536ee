"""The three loss terms of the joint objective, each a pure function of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights: the split between brightness (free detail) and colour."""


def content_loss(x: torch.Tensor, ref: torch.Tensor, hole: torch.Tensor, pool: int = 1
                 ) -> torch.Tensor:
    """Mean squared distance to the content reference over the hole.

    ``x``, ``ref``: ``(1, 3, H, W)`` RGB in ``[0, 1]``; ``hole``: ``(1, 1, H, W)`` 0/1. With
    ``pool > 1`` the luma is compared after ``pool × pool`` averaging, so only the structure a
    coarser level decided is held and fine texture is free; the chroma (RGB minus luma) is still
    compared pixel by pixel, so texture detail cannot drift into colour noise.
    """
    n = (hole.sum() * x.shape[1]).clamp_min(1)
    if pool == 1:
        return ((x - ref) ** 2 * hole).sum() / n
    weights = x.new_tensor(LUMA).view(1, 3, 1, 1)
    luma_x, luma_ref = (x * weights).sum(1, keepdim=True), (ref * weights).sum(1, keepdim=True)
    chroma = (((x - luma_x) - (ref - luma_ref)) ** 2 * hole).sum() / n
    small_hole = F.max_pool2d(hole, pool)
    luma = ((F.avg_pool2d(luma_x, pool) - F.avg_pool2d(luma_ref, pool)) ** 2 * small_hole).sum()
    return chroma + luma / small_hole.sum().clamp_min(1)


def texture_loss(patches: torch.Tensor, targets: torch.Tensor, energy: torch.Tensor
                 ) -> torch.Tensor:
    """Neural-patch loss: squared distance of each hole patch to its matched known patch.

    ``patches``, ``targets``: ``(N, D)`` raw feature patches; ``energy``: mean squared value
    of the known patches, which makes the term independent of the backbone's feature scale.
    Returns the sum over patches of the per-patch mean squared distance, divided by
    ``energy`` (callers divide by the total patch count).
    """
    return ((patches - targets) ** 2).mean(dim=1).sum() / energy


def tv_loss(x: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference of neighbouring pixels touching ``region``.

    ``x``: ``(1, C, H, W)``; ``region``: ``(1, 1, H, W)`` 0/1. A pair counts when either pixel
    is in the region.
    """
    dy = (x[:, :, 1:] - x[:, :, :-1]) ** 2
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2
    wy = torch.maximum(region[:, :, 1:], region[:, :, :-1])
    wx = torch.maximum(region[:, :, :, 1:], region[:, :, :, :-1])
    total = (dy * wy).sum() + (dx * wx).sum()
    return total / ((wy.sum() + wx.sum()) * x.shape[1]).clamp_min(1)
