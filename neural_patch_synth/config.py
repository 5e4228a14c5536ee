"""Every knob of the engine, its default and why, in one dataclass."""

from __future__ import annotations

import math
import numbers
import os
import re
from dataclasses import dataclass, fields, replace
from typing import Any, NoReturn

from .errors import NPSError


@dataclass(frozen=True)
class InpaintConfig:
    """Options of :func:`neural_patch_synth.inpaint`.

    Defaults were chosen by measurement on Kodak crops (see ``benchmarks/speed.py`` and the
    README): they fill a 256² hole in a 512² photo in well under a minute on 2 CPU cores.
    """

    # --- content prior: the coarse global structure -----------------------------------------
    prior: str = "auto"
    """``"auto"`` (shipped content network if present, else smooth), ``"network"``,
    ``"smooth"`` (non-learned coarse-to-fine fill), or a path to content-network weights."""
    prior_only: bool = False
    """Return the prior's fill, upsampled, without texture optimisation."""
    context: float = 2.0
    """Side of the square context window around each hole, as a multiple of the hole's
    bounding-box side (the paper's 128 px input with a 64 px hole is 2.0)."""

    # --- pyramid and optimiser -------------------------------------------------------------
    coarse_size: int = 128
    """Side of the context window at the coarsest pyramid level, in pixels; also the smallest
    context window, so small holes still have known patches around them."""
    iterations: tuple[int, ...] = (60, 40, 20)
    """L-BFGS iterations per level, coarse to fine; the last entry repeats for extra levels."""
    lbfgs_history: int = 25
    """L-BFGS history size (the original code used 25)."""

    # --- loss ------------------------------------------------------------------------------
    layers: tuple[str, ...] = ("relu3_1",)
    """VGG-19 layers for the neural-patch texture term (``relu{block}_{index}``)."""
    content_weight: float = 1.0
    """Weight of the content term: mean squared pixel distance to the reference in the hole."""
    texture_weight: float = 1.0
    """Weight of the texture term; the term is normalised by the known region's feature
    energy, so the weight does not depend on the backbone's activation scale."""
    texture_colour: bool = False
    """Match and pull feature patches of the colour image (True) or of its brightness only
    (False, default: the hole's colours come from the content reference alone). Measured:
    colour features let the optimiser invent colours (magenta / green blobs on a 37 % irregular
    hole in Kodak 05, purple on the facade of Kodak 08); brightness-only removed them and
    scored +0.6 dB there, -0.1 to -0.25 dB on two centre holes (less saturated foliage)."""
    tv_weight: float = 0.5
    """Weight of the total-variation term, normalised by the known region's own TV."""

    # --- nearest-patch search --------------------------------------------------------------
    patch_size: int = 3
    """Side of a feature patch (3 in the paper)."""
    known_stride: int = 1
    """Stride when sampling patches from the known region (the original code used 2)."""
    max_known_patches: int = 40000
    """Cap on the known patches per layer; the stride grows to keep under it (bounds memory)."""
    match_every: int = 10
    """Refresh the nearest-patch matches every this many L-BFGS iterations."""
    similarity: str = "ncc"
    """Patch similarity: ``"ncc"`` (normalised cross-correlation, the paper's) or ``"l2"``
    (Euclidean distance of the raw feature patches)."""
    search: str = "auto"
    """Nearest-patch backend: ``"auto"`` (faiss if importable, else torch), ``"faiss"``,
    ``"torch"``."""
    pca_dim: int | None = 128
    """Search a short list in this many principal components of the patch vectors, then
    re-rank it exactly (None: exact search only). Measured on a 512² photo with a 256² hole:
    3× less search time, same hole PSNR (``benchmarks/speed.py``)."""

    # --- runtime ---------------------------------------------------------------------------
    vgg_weights: str | None = None
    """VGG-19 weight file; else ``$NPS_VGG_WEIGHTS``; else torchvision's file via torch hub."""
    device: str = "auto"
    """``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``."""
    seed: int | None = 0
    """Seed for every random choice; ``None`` leaves the generators alone."""
    progress: bool = True
    """Show a progress bar per pyramid level."""

    def __post_init__(self) -> None:
        """Check every field's type and range: the first bad one is a one-line NPSError."""

        def fail(name: str, expected: str) -> NoReturn:
            raise NPSError(f"{name} must be {expected}, got {getattr(self, name)!r}")

        def is_int(value: object) -> bool:
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)

        def integer(name: str, low: int, optional: bool = False) -> None:
            value = getattr(self, name)
            if not (optional and value is None) and not (is_int(value) and value >= low):
                fail(name, f"an integer >= {low}" + (" or None" if optional else ""))

        def real(name: str, low: float) -> None:
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                    and math.isfinite(value) and value >= low):
                fail(name, f"a finite number >= {low}")

        def flag(name: str) -> None:
            if not isinstance(getattr(self, name), bool):
                fail(name, "True or False")

        def path(name: str, optional: bool) -> None:
            value = getattr(self, name)
            if not ((optional and value is None) or isinstance(value, os.PathLike)
                    or (isinstance(value, str) and value)):
                fail(name, "a file path" + (" or None" if optional else ""))

        path("prior", optional=False)
        flag("prior_only")
        real("context", 1.0)
        integer("coarse_size", 16)
        if (not isinstance(self.iterations, (tuple, list)) or not self.iterations
                or not all(is_int(n) and n >= 0 for n in self.iterations)):
            fail("iterations", "a non-empty list of integers >= 0")
        integer("lbfgs_history", 1)
        if (not isinstance(self.layers, (tuple, list)) or not self.layers or not all(
                isinstance(layer, str) and re.fullmatch(r"relu\d_\d", layer)
                for layer in self.layers)):
            fail("layers", "a non-empty list of VGG-19 layer names such as relu3_1")
        for name in ("content_weight", "texture_weight", "tv_weight"):
            real(name, 0.0)
        flag("texture_colour")
        integer("patch_size", 1)
        if self.patch_size % 2 == 0:
            fail("patch_size", "odd")
        for name in ("known_stride", "max_known_patches", "match_every"):
            integer(name, 1)
        if self.similarity not in ("ncc", "l2"):
            fail("similarity", "ncc or l2")
        if self.search not in ("auto", "faiss", "torch"):
            fail("search", "auto, faiss or torch")
        integer("pca_dim", 1, optional=True)
        path("vgg_weights", optional=True)
        if not (isinstance(self.device, str)
                and re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device)):
            fail("device", "auto, cpu, cuda or cuda:N")
        integer("seed", 0, optional=True)
        flag("progress")

    def level_iterations(self, level: int) -> int:
        """L-BFGS iterations at pyramid ``level`` (0 = coarsest)."""
        return int(self.iterations[min(level, len(self.iterations) - 1)])

    @classmethod
    def from_options(cls, config: InpaintConfig | None = None, **options: Any) -> InpaintConfig:
        """``config`` with ``options`` replaced; unknown option names are an :class:`NPSError`."""
        base = config if config is not None else cls()
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise NPSError(f"unknown option(s): {', '.join(unknown)}")
        if "iterations" in options:
            its = options["iterations"]
            options["iterations"] = (int(its),) if isinstance(its, int) else tuple(map(int, its))
        if "layers" in options and isinstance(options["layers"], str):
            options["layers"] = tuple(s.strip() for s in options["layers"].split(","))
        return replace(base, **options)
