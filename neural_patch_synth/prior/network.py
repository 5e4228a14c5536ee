"""The learned content prior: a compact encoder/decoder that predicts a hole at 128×128.

Context-Encoder style (Pathak et al. 2016; Yang et al. 2017): the hole of the RGB input is filled
with the mean colour of the known pixels, a mask channel is appended, and a strided-convolution
encoder, a dilated bottleneck and an upsampling decoder with additive skip connections predict the
whole image. ELU activations and no normalisation layers, so one image gives the same result
alone or in a batch.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NPSError

SIZE = 128
"""Side of the square the network works at."""


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


class ContentNet(nn.Module):
    """Encoder/decoder over ``(B, 4, 128, 128)`` inputs (RGB in ``[0, 1]`` + hole mask).

    ``width`` is the channel count of the first level (levels 64², 32², 16², 8² have
    ``width × (1, 2, 4, 4)`` channels). :meth:`forward` returns ``(B, 3, 128, 128)`` in ``[0, 1]``.
    """

    def __init__(self, width: int = 32) -> None:
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

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image``: ``(B, 3, 128, 128)`` in ``[0, 1]`` (hole values ignored); ``mask``:
        ``(B, 1, 128, 128)``, 1 = hole. Returns the predicted image, ``(B, 3, 128, 128)``."""
        x = torch.cat([mean_fill(image, mask) * 2.0 - 1.0, mask], dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        y = self.middle(self.enc4(e3))
        y = self.dec3(F.interpolate(y, scale_factor=2.0, mode="nearest") + e3)
        y = self.dec2(F.interpolate(y, scale_factor=2.0, mode="nearest") + e2)
        y = self.dec1(F.interpolate(y, scale_factor=2.0, mode="nearest") + e1)
        return torch.sigmoid(F.pixel_shuffle(self.head(y), 2))


def save_weights(model: ContentNet, path: Path) -> None:
    """Write ``model`` as fp16 weights plus the config needed to rebuild it."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    torch.save({"config": {"width": model.width, "size": SIZE}, "state_dict": state}, path)


def load_weights(path: Path, device: torch.device) -> ContentNet:
    """Rebuild a :class:`ContentNet` written by :func:`save_weights` (fp32, eval mode)."""
    try:
        blob: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        model = ContentNet(**{k: v for k, v in blob["config"].items() if k != "size"})
        model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    except (OSError, RuntimeError, KeyError, TypeError, ValueError,
            pickle.UnpicklingError) as err:
        raise NPSError(f"not a content-network weights file: {path} ({err})") from err
    return model.to(device).eval()


class NetworkPrior:
    """:class:`ContentNet` as a prior: predicts the hole at 128², keeps the known pixels."""

    size: int | None = SIZE

    def __init__(self, model: ContentNet, device: torch.device) -> None:
        self.model = model.to(device).eval()
        self.device = device

    @classmethod
    def from_file(cls, path: str | Path, device: torch.device) -> NetworkPrior:
        """Load weights written by training (``content_net.pt``)."""
        return cls(load_weights(Path(path), device), device)

    @torch.no_grad()
    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``image``: ``(B, 3, 128, 128)`` in ``[0, 1]``; ``mask``: ``(B, 1, 128, 128)``, 1 = hole.

        Returns ``(B, 3, 128, 128)`` in ``[0, 1]``: the prediction inside the hole, the input
        outside, on the input's device and dtype.
        """
        if image.shape[-2:] != (SIZE, SIZE) or mask.shape[-2:] != (SIZE, SIZE):
            raise NPSError(f"content network needs {SIZE}×{SIZE} inputs, "
                           f"got {tuple(image.shape[-2:])}")
        x = image.to(self.device, torch.float32)
        m = (mask.to(self.device, torch.float32) > 0.5).float()
        out = self.model(x, m)
        out = out * m + x * (1.0 - m)
        return out.to(image.device, image.dtype)
