"""The engine: split the mask into hole groups, fill each group's context window, composite.

For each group (its context window, see :mod:`masks`) the content prior predicts the hole at
128 px; then ``method="vote"`` (:func:`voting.vote_fill`) copies real patches into that layout
coarse to fine, or ``method="optimise"`` (:class:`optimise.NeuralOptimiser`) runs the paper's
L-BFGS pyramid. Known pixels are never changed; cost grows with the hole, not the photo.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import InpaintConfig
from .masks import hole_groups
from .optimise import NeuralOptimiser
from .poisson import seamless_clone
from .prior import Prior
from .pyramid import downsample, resize
from .voting import vote_fill


class Synthesizer:
    """Fills holes in photos; holds the loaded prior (and VGG for ``"optimise"``).

    ``__call__(pixels, mask, command)``: ``pixels`` ``(H, W, 3)`` uint8 or uint16, ``mask``
    ``(H, W)`` bool (True = hole), ``command`` ``"inpaint"`` or ``"outpaint"`` (whose defaults
    apply, :meth:`~neural_patch_synth.config.InpaintConfig.for_command`). Returns a copy of
    ``pixels`` with the hole filled; its known pixels are the input's. Only the hole groups'
    context windows are converted and filled, so the cost grows with the hole, not the photo.
    """

    def __init__(self, config: InpaintConfig, prior: Prior, device: torch.device) -> None:
        self.config = config
        self.prior = prior
        self.device = device
        self.optimiser: NeuralOptimiser | None = None
        if config.method == "optimise" and not config.prior_only:
            self.optimiser = NeuralOptimiser(config, device)

    def __call__(self, pixels: np.ndarray, mask: np.ndarray, command: str = "inpaint"
                 ) -> np.ndarray:
        cfg = self.config.for_command(command)
        if cfg.seed is not None:
            torch.manual_seed(cfg.seed)  # the randomised PCA of the feature search
        scale = float(np.iinfo(pixels.dtype).max)
        out = pixels.copy()
        groups = hole_groups(mask, cfg.context, cfg.coarse_size)
        for i, group in enumerate(groups):
            rows, cols = slice(group.window.y0, group.window.y1), slice(group.window.x0,
                                                                      group.window.x1)
            crop = torch.from_numpy(pixels[rows, cols].astype(np.float32) / scale)
            crop = crop.permute(2, 0, 1)[None].to(self.device)
            hole = torch.from_numpy(group.mask)[None, None].float().to(self.device)
            label = f"hole {i + 1}/{len(groups)} " if len(groups) > 1 else ""
            filled = self.fill(crop, hole, cfg, label, seed_offset=i)[0].permute(1, 2, 0)
            values = np.rint(filled.cpu().numpy() * scale).astype(pixels.dtype)
            out[rows, cols][group.mask] = values[group.mask]
        return out

    def fill(self, image: torch.Tensor, hole: torch.Tensor, cfg: InpaintConfig,
             label: str = "", seed_offset: int = 0) -> torch.Tensor:
        """Fill one context window: ``(1, 3, h, w)`` and ``(1, 1, h, w)`` → ``(1, 3, h, w)``,
        with ``cfg``, this synthesizer's config as one command runs it."""
        if cfg.prior_only:
            x = self.run_prior(image, hole)
        elif self.optimiser is not None:
            x = self.optimiser.fill(image, hole, self.run_prior, label)
        else:
            generator = torch.Generator(device=self.device)
            if cfg.seed is None:
                generator.seed()
            else:
                generator.manual_seed(cfg.seed + seed_offset)
            x = vote_fill(image, hole, self.run_prior(image, hole), cfg, generator, label)
        x = torch.where(hole > 0.5, x, image)
        if cfg.blend == "poisson":
            x = seamless_clone(image[0], x[0], hole[0, 0] > 0.5)[None].clamp(0, 1)
        return x

    def run_prior(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The prior's fill of ``image`` ``(1, 3, h, w)``, at the prior's own size and back;
        known pixels are ``image``'s."""
        side = getattr(self.prior, "size", None)
        size = image.shape[-2:]
        if side:
            small, small_hole = downsample(image, hole, (side, side))
            filled = resize(self.prior(small, small_hole), size)
        else:
            filled = self.prior(image, hole)
        return torch.where(hole > 0.5, filled.clamp(0, 1), image)
