"""Building blocks shared by the content-network architectures."""

from __future__ import annotations

import torch
from torch import nn

SIZE = 128
"""Side of the square the content networks work at."""


def conv(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """``k×k`` convolution (same padding) followed by ELU."""
    pad = dilation * (k - 1) // 2
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, dilation), nn.ELU())


def mean_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace hole pixels by the mean colour of the known pixels.

    ``image``: ``(B, 3, H, W)`` in ``[0, 1]``; ``mask``: ``(B, 1, H, W)``, 1 = hole. Images with
    no known pixel get grey 0.5.
    """
    known = 1.0 - mask
    count = known.sum(dim=(2, 3), keepdim=True)
    mean = (image * known).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1.0)
    mean = torch.where(count > 0, mean, torch.full_like(mean, 0.5))
    return image * known + mean * mask


class Predictor(nn.Module):
    """A content network: ``stages(image, mask)`` lists its predictions (the last is the
    result, earlier ones are supervised too); ``forward`` returns the last. ``width`` is its
    size setting."""

    width: int

    def stages(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """``image``: ``(B, 3, 128, 128)`` in ``[0, 1]`` (hole values ignored); ``mask``:
        ``(B, 1, 128, 128)``, 1 = hole. Returns predictions ``(B, 3, 128, 128)`` in ``[0, 1]``."""
        raise NotImplementedError

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.stages(image, mask)[-1]
