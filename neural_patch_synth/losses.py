"""The three loss terms of the joint objective, each a pure function of tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def luma(x: torch.Tensor) -> torch.Tensor:
    """Brightness of ``(B, 3, H, W)`` RGB as a gray RGB image ``(B, 3, H, W)``.

    The plain channel mean, not Rec. 601 luma: its gradient moves R, G and B equally, so a
    loss on brightness changes no colour (Rec. 601 weights would push mostly green and tint the
    result magenta or green).
    """
    return x.mean(1, keepdim=True).expand(-1, 3, -1, -1)


def content_loss(x: torch.Tensor, ref: torch.Tensor, hole: torch.Tensor, pool: int = 1
                 ) -> torch.Tensor:
    """Mean squared distance to the content reference over the hole.

    ``x``, ``ref``: ``(1, 3, H, W)`` RGB in ``[0, 1]``; ``hole``: ``(1, 1, H, W)`` 0/1. With
    ``pool > 1`` the brightness (:func:`luma`) is compared after ``pool × pool`` averaging, so
    only the structure a coarser level decided is held and fine texture is free; the colour
    (RGB minus brightness) is still compared pixel by pixel, so detail cannot drift into colour
    noise.
    """
    n = (hole.sum() * x.shape[1]).clamp_min(1)
    if pool == 1:
        return ((x - ref) ** 2 * hole).sum() / n
    luma_x, luma_ref = luma(x), luma(ref)
    chroma = (((x - luma_x) - (ref - luma_ref)) ** 2 * hole).sum() / n
    small_hole = F.max_pool2d(hole, pool)
    detail = (F.avg_pool2d(luma_x[:, :1], pool) - F.avg_pool2d(luma_ref[:, :1], pool)) ** 2
    return chroma + (detail * small_hole).sum() / small_hole.sum().clamp_min(1)


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
