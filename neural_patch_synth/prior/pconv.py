"""Partial-convolution U-Net (Liu et al. 2018) for the 128-px content prior.

Each convolution sees only valid pixels, is renormalised by their count and passes on an
updated mask (a pixel becomes valid once its window saw one valid pixel), so the output does
not depend on the values inside the hole and any hole shape, border-touching ones included, is
handled natively (the zero padding counts as invalid). No normalisation layers: one image gives
the same result alone or in a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Predictor


class PartialConv2d(nn.Module):
    """``k×k`` partial convolution with a single-channel validity mask.

    ``forward(x, valid)``: ``x`` ``(B, C_in, H, W)``, ``valid`` ``(B, 1, H, W)`` in ``{0, 1}``
    (1 = valid). Returns ``(out, new_valid)``: ``out = W·(x ⊙ valid) · k² / count + b`` where
    ``count`` (the valid pixels in the window) is positive and 0 elsewhere,
    ``(B, C_out, H', W')``, and ``new_valid = count > 0``, ``(B, 1, H', W')``.
    """

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("window", torch.ones(1, 1, k, k), persistent=False)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            count = F.conv2d(valid, self.window, stride=self.conv.stride,
                             padding=self.conv.padding)
            new_valid = (count > 0).to(x.dtype)
            ratio = self.window.numel() / count.clamp_min(1.0) * new_valid
        out = self.conv(x * valid) * ratio + self.bias.view(1, -1, 1, 1)
        return out * new_valid, new_valid


def layout(width: int) -> list[tuple[tuple[int, ...], int, int, int]]:
    """Every layer of :class:`PConvUNet` at ``width``, encoder then decoder: its input channel
    groups (the decoder concatenates the upsampled level below and the encoder feature of the
    same level), output channels, kernel size and stride."""
    chans = [3, width, 2 * width, 4 * width, 4 * width, 4 * width, 4 * width]
    outs = [3, width, width, 2 * width, 4 * width, 4 * width]  # decoder output per level
    enc = [((chans[i],), chans[i + 1], 5 if i == 0 else 3, 2) for i in range(6)]
    dec = [((chans[6] if i == 5 else outs[i + 1], chans[i]), outs[i], 3, 1)
           for i in range(5, -1, -1)]
    return enc + dec


class PConvUNet(Predictor):
    """Partial-convolution U-Net over ``(B, 3, 128, 128)`` images and hole masks.

    Encoder: six stride-2 partial convolutions, 128² → 2² (``width × (1, 2, 4, 4, 4, 4)``
    channels, 5×5 for the first, ReLU). Decoder: nearest ×2 upsampling, concatenation with the
    encoder feature of the same level (their masks are joined by union), a 3×3 partial
    convolution and LeakyReLU(0.2); the last level concatenates the input image (hole zeroed)
    and predicts RGB through a sigmoid.
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        convs = [PartialConv2d(sum(groups), cout, k, stride)
                 for groups, cout, k, stride in layout(width)]
        self.enc = nn.ModuleList(convs[:6])
        self.dec = nn.ModuleList(convs[6:])

    def widened(self, width: int) -> PConvUNet:
        """A copy with ``width`` ≥ ``self.width`` channels, on this network's device, that
        computes exactly what this network does: the old weights in place, the new channels'
        incoming weights freshly initialised (torch's global generator, on the CPU) and their
        outgoing weights zero, so training starts from this network's function and grows into
        the new channels."""
        if width < self.width:
            raise ValueError(f"cannot narrow a width-{self.width} network to {width}")
        wide = PConvUNet(width).to(self.enc[0].conv.weight.device)
        olds = [*self.enc, *self.dec]
        news = [*wide.enc, *wide.dec]
        with torch.no_grad():
            for old, new, (groups, cout, _, _), (wide_groups, _, _, _) in zip(
                    olds, news, layout(self.width), layout(width), strict=True):
                starts = [sum(wide_groups[:i]) for i in range(len(groups))]
                kept = torch.cat([torch.arange(s, s + g) for s, g in zip(starts, groups,
                                                                         strict=True)])
                weight = torch.zeros_like(new.conv.weight)
                weight[cout:, kept] = new.conv.weight[cout:, kept]  # new channels: fresh
                weight[:cout, kept] = old.conv.weight
                new.conv.weight.copy_(weight)
                new.bias.zero_()
                new.bias[:cout] = old.bias
        return wide

    def stages(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """``image``: ``(B, 3, 128, 128)`` in ``[0, 1]`` (hole values ignored); ``mask``:
        ``(B, 1, 128, 128)``, 1 = hole. Returns ``[prediction]``, ``(B, 3, 128, 128)``."""
        valid = 1.0 - mask
        feats, masks = [image * valid], [valid]
        x, m = feats[0], valid
        for layer in self.enc:
            x, m = layer(x, m)
            x = F.relu(x)
            feats.append(x)
            masks.append(m)
        for depth, layer in zip(range(5, -1, -1), self.dec, strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            m = F.interpolate(m, scale_factor=2.0, mode="nearest")
            x, m = layer(torch.cat([x, feats[depth]], 1), torch.maximum(m, masks[depth]))
            x = F.leaky_relu(x, 0.2) if depth else torch.sigmoid(x)
        return [x]
