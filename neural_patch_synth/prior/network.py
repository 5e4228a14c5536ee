"""Content-network weights files and the network as a prior.

Three architectures share one interface (:class:`~.layers.Predictor`): ``pconv``, the
partial-convolution U-Net (:mod:`.pconv`); ``attention``, the contextual-attention generator
(:mod:`.attention`); ``v1``, the first Context-Encoder-style network (:mod:`.context_encoder`).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import NPSError
from ..io import replace_file
from .attention import AttentionNet
from .context_encoder import ContextEncoder
from .layers import SIZE, Predictor
from .pconv import PConvUNet

ARCHITECTURES: dict[str, type[Predictor]] = {
    "pconv": PConvUNet, "attention": AttentionNet, "v1": ContextEncoder}
"""Content-network classes by name (``nps train-content --arch``)."""


def architecture(arch: str) -> type[Predictor]:
    """The class named ``arch`` in :data:`ARCHITECTURES`; NPSError if there is none."""
    if arch not in ARCHITECTURES:
        raise NPSError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHITECTURES)})")
    return ARCHITECTURES[arch]


def build(arch: str, width: int) -> Predictor:
    """A new, randomly initialised network of architecture ``arch`` and ``width``."""
    return architecture(arch)(width)


def arch_name(model: Predictor) -> str:
    """The :data:`ARCHITECTURES` name of ``model``."""
    return next(name for name, cls in ARCHITECTURES.items() if type(model) is cls)


def save_weights(model: Predictor, path: Path) -> None:
    """Write ``model`` as fp16 weights plus the config needed to rebuild it (through a
    temporary file: an interrupted write leaves the old file)."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.state_dict().items()}
    config = {"arch": arch_name(model), "width": model.width, "size": SIZE}
    replace_file(path, lambda out: torch.save({"config": config, "state_dict": state}, out))


def load_weights(path: Path, device: torch.device) -> Predictor:
    """Rebuild a network written by :func:`save_weights` (fp32, eval mode)."""
    try:
        blob: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
        config = blob["config"]
        model = build(config.get("arch", "v1"), config["width"])
        model.load_state_dict({k: v.float() for k, v in blob["state_dict"].items()})
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, NPSError,
            pickle.UnpicklingError) as err:
        raise NPSError(f"not a content-network weights file: {path} ({err})") from err
    return model.to(device).eval()


class NetworkPrior:
    """:class:`Predictor` as a prior: predicts the hole at 128², keeps the known pixels.

    The prediction is the mean of the network's fills of the input and of its mirror image
    (mirrored back): the networks are trained on mirrored photos too, and the mean of the two
    is closer to the truth (+0.03 dB hole PSNR on centre holes, +0.09 to +0.18 dB on the
    thinnest irregular ones: the model card)."""

    size: int | None = SIZE

    def __init__(self, model: Predictor, device: torch.device) -> None:
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
        out = (self.model(x, m) + self.model(x.flip(-1), m.flip(-1)).flip(-1)) / 2.0
        out = out * m + x * (1.0 - m)
        return out.to(image.device, image.dtype)
