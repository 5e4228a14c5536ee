"""VGG-19 ``features`` in plain torch, with torchvision's state-dict keys.

Weights come from, in order: an explicit path, ``$NPS_VGG_WEIGHTS``, torchvision's
``vgg19-dcbb9e9d.pth`` in the torch hub cache (downloaded when missing and online). A partial
file (e.g. conv1_1 … conv3_1 only) builds the network only as deep as it goes.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import NPSError

log = logging.getLogger(__name__)

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512)


def _layout() -> list[tuple[str, int, int | None]]:
    """``(name, torchvision index, out channels)`` for every module of ``features``."""
    out, idx, block, conv, cin = [], 0, 1, 0, 3
    for v in _CFG:
        if v == "M":
            out.append((f"pool{block}", idx, None))
            idx, block, conv = idx + 1, block + 1, 0
        else:
            conv += 1
            out.append((f"conv{block}_{conv}", idx, cin))
            out.append((f"relu{block}_{conv}", idx + 1, v))
            idx, cin = idx + 2, v
    return out


LAYOUT = _layout()
LAYER_NAMES = [name for name, _, _ in LAYOUT]


def layer_stride(layer: str) -> int:
    """Pixel stride of a layer's feature map (1, 2, 4, 8 or 16)."""
    return 2 ** (int(re.fullmatch(r"(?:relu|conv)(\d)_\d", layer).group(1)) - 1)


def receptive_field(layer: str) -> int:
    """Side in pixels of one feature's receptive field at ``layer``."""
    rf, jump = 1, 1
    for name, _, _ in LAYOUT:
        if name.startswith("conv"):
            rf += 2 * jump
        elif name.startswith("pool"):
            rf, jump = rf + jump, jump * 2
        if name == layer:
            return rf
    raise NPSError(f"unknown VGG-19 layer {layer!r}")


class VGGFeatures(nn.Module):
    """Frozen VGG-19 ``features`` up to the deepest requested layer.

    ``forward(x)``: ``x`` is ``(B, 3, H, W)`` RGB in ``[0, 1]`` (ImageNet normalisation is
    applied inside); returns ``{layer: (B, C, H / stride, W / stride)}`` for each requested layer.
    """

    def __init__(self, layers: tuple[str, ...], state_dict: dict[str, torch.Tensor],
                 source: str = "weights") -> None:
        super().__init__()
        for layer in layers:
            if layer not in LAYER_NAMES or not layer.startswith("relu"):
                names = ", ".join(n for n in LAYER_NAMES if n.startswith("relu"))
                raise NPSError(f"unknown VGG-19 layer {layer!r}; choose from {names}")
        self.layers = tuple(layers)
        deepest = max(LAYER_NAMES.index(layer) for layer in layers)
        modules: list[nn.Module] = []
        self.names: list[str] = []
        for name, idx, cin in LAYOUT[: deepest + 1]:
            if name.startswith("conv"):
                key = f"features.{idx}.weight"
                if key not in state_dict:
                    raise NPSError(
                        f"layer {LAYER_NAMES[deepest]} needs {name}, which {source} lacks "
                        f"(it goes up to {_deepest_conv(state_dict)}); choose a shallower layer "
                        "or give the full VGG-19 weights"
                    )
                conv = nn.Conv2d(cin, state_dict[key].shape[0], 3, padding=1)
                conv.weight.data.copy_(state_dict[key])
                conv.bias.data.copy_(state_dict[f"features.{idx}.bias"])
                modules.append(conv)
            elif name.startswith("relu"):
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(2, 2))
            self.names.append(name)
        self.body = nn.ModuleList(modules)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
        out = {}
        for name, module in zip(self.names, self.body, strict=True):
            x = module(x)
            if name in self.layers:
                out[name] = x
        return out


def _deepest_conv(state_dict: dict[str, torch.Tensor]) -> str:
    present = {idx for name, idx, _ in LAYOUT
               if name.startswith("conv") and f"features.{idx}.weight" in state_dict}
    convs = [name for name, idx, _ in LAYOUT if idx in present and name.startswith("conv")]
    return convs[-1] if convs else "nothing"


def weights_path(explicit: str | os.PathLike | None = None) -> Path:
    """Where the VGG-19 weights come from (explicit, env, hub cache, download)."""
    for candidate in (explicit, os.environ.get("NPS_VGG_WEIGHTS")):
        if candidate:
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise NPSError(f"VGG-19 weights not found: {path}")
            return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(TORCHVISION_URL).name
    if not cached.is_file():
        try:
            torch.hub.load_state_dict_from_url(TORCHVISION_URL, progress=True, map_location="cpu")
        except Exception as err:  # noqa: BLE001 - any download failure gets the same advice
            raise NPSError(
                "no VGG-19 weights: pass --vgg-weights PATH or set NPS_VGG_WEIGHTS "
                f"(download of {TORCHVISION_URL} failed: {type(err).__name__})"
            ) from None
    return cached


def load_vgg(layers: tuple[str, ...], weights: str | os.PathLike | None = None,
             device: torch.device | str = "cpu") -> VGGFeatures:
    """Build :class:`VGGFeatures` for ``layers`` from the weights :func:`weights_path` finds."""
    path = weights_path(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - corrupt or foreign file
        raise NPSError(f"could not read VGG-19 weights {path}: {err}") from None
    if not isinstance(state, dict) or "features.0.weight" not in state:
        raise NPSError(f"{path} is not a VGG-19 state dict with torchvision's keys")
    vgg = VGGFeatures(layers, state, source=str(path))
    log.info("VGG-19 weights: %s", path)
    return vgg.to(device=device, memory_format=torch.channels_last)  # ~20 % faster convs


def pool_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """``(1, 1, H, W)`` 0/1 mask → ``(1, 1, H // s, W // s)``: 1 where any pixel of a cell is 1."""
    return F.max_pool2d(mask, stride, stride) if stride > 1 else mask
