"""v1 content network: a compact Context-Encoder-style encoder/decoder (Pathak et al. 2016).

The hole of the RGB input is filled with the mean colour of the known pixels, a mask channel is
appended, and a strided-convolution encoder, a dilated bottleneck and an upsampling decoder with
additive skip connections predict the whole image through a pixel-shuffle head. ELU activations
and no normalisation layers, so one image gives the same result alone or in a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import Predictor, conv, mean_fill


class ContextEncoder(Predictor):
    """Encoder/decoder over 128² RGB + hole mask.

    ``width`` is the channel count of the first level (levels 64², 32², 16², 8² have
    ``width × (1, 2, 4, 4)`` channels).
    """

    def __init__(self, width: int = 24) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width
        self.width = width
        self.enc1 = nn.Sequential(conv(4, c1, 5, 2), conv(c1, c1))  # 64²
        self.enc2 = nn.Sequential(conv(c1, c2, 3, 2), conv(c2, c2))  # 32²
        self.enc3 = nn.Sequential(conv(c2, c3, 3, 2), conv(c3, c3))  # 16²
        self.enc4 = conv(c3, c3, 3, 2)  # 8²
        self.middle = nn.Sequential(conv(c3, c3, dilation=2), conv(c3, c3, dilation=4),
                                    conv(c3, c3))
        self.dec3 = conv(c3, c2)
        self.dec2 = conv(c2, c1)
        self.dec1 = conv(c1, c1)
        self.head = nn.Conv2d(c1, 12, 3, padding=1)  # 2×2 sub-pixels of 3 channels

    def stages(self, image: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """``image``: ``(B, 3, 128, 128)`` in ``[0, 1]`` (hole values ignored); ``mask``:
        ``(B, 1, 128, 128)``, 1 = hole. Returns ``[prediction]``, ``(B, 3, 128, 128)``."""
        x = torch.cat([mean_fill(image, mask) * 2.0 - 1.0, mask], dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        y = self.middle(self.enc4(e3))
        y = self.dec3(F.interpolate(y, scale_factor=2.0, mode="nearest") + e3)
        y = self.dec2(F.interpolate(y, scale_factor=2.0, mode="nearest") + e2)
        y = self.dec1(F.interpolate(y, scale_factor=2.0, mode="nearest") + e1)
        return [torch.sigmoid(F.pixel_shuffle(self.head(y), 2))]
