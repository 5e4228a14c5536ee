"""Content priors: the coarse global structure of the hole, predicted at about 128 px.

A prior is any callable ``prior(image, mask) -> image`` on ``(1, 3, h, w)`` float tensors in
``[0, 1]`` with an ``(1, 1, h, w)`` hole mask (1 = hole); hole pixels of the input are
undefined. ``prior.size`` is the square side it works at (the engine resizes the context window
to it and back), or None for any size. Known pixels of the output are ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import torch

from ..errors import NPSError
from .smooth import SmoothPrior

log = logging.getLogger(__name__)

PRETRAINED = Path(__file__).resolve().parents[1] / "pretrained" / "content_net.pt"
"""The shipped content-network weights (``$NPS_CONTENT_WEIGHTS`` overrides)."""


class Prior(Protocol):
    size: int | None

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...


def shipped_weights() -> Path | None:
    """Path of the content-network weights to use by default, or None if there are none."""
    env = os.environ.get("NPS_CONTENT_WEIGHTS")
    if env:
        return Path(env)
    return PRETRAINED if PRETRAINED.exists() else None


def load_prior(spec: str | os.PathLike, device: torch.device) -> Prior:
    """Build the prior named by ``spec``: ``auto``, ``network``, ``smooth`` or a weights path.

    ``auto`` falls back to the smooth prior, with a ``logging`` warning, when there are no
    content-network weights; the prior used is logged at INFO level.
    """
    if spec == "smooth":
        log.info("prior: smooth fill")
        return SmoothPrior()
    if spec == "auto":
        path = shipped_weights()
        if path is None:
            log.warning("no content-network weights (%s is missing): the smooth prior is used "
                        "instead (--prior smooth to choose it, --prior network to require the "
                        "network)", PRETRAINED)
            return SmoothPrior()
    elif spec == "network":
        path = shipped_weights()
        if path is None:
            raise NPSError(f"prior 'network' needs the content-network weights, which are "
                           f"missing: {PRETRAINED} (reinstall nps, or set NPS_CONTENT_WEIGHTS)")
    else:
        path = Path(spec)
    if not path.exists():
        raise NPSError(f"content-network weights not found: {path}")
    from .network import NetworkPrior

    prior = NetworkPrior.from_file(path, device)
    log.info("prior: content network %s", path)
    return prior
