"""Outpainting: extend a photo beyond its borders, a band at a time.

A large extension is done in steps (recursive extension): each step adds at most
:attr:`~neural_patch_synth.config.InpaintConfig.outpaint_step` of the current side to each
side that still grows, and fills the new band as a border hole with the engine, so every step
sees the previous steps' result. Inside a step the edge bands (with the corners) are filled
together; where a step grows two adjacent sides, the corner blocks are then filled again with
both of their edges known ("corners after their edges"). The photo's own pixels are never
changed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from .errors import NPSError
from .io import MAX_PIXELS, Photo, parse_size

Fill = Callable[[Photo, np.ndarray], Photo]
"""Fills the hole ``(H, W)`` bool of a photo, known pixels unchanged."""


@dataclass(frozen=True)
class Extent:
    """Pixels added on each side."""

    left: int
    top: int
    right: int
    bottom: int

    def grown(self, size: tuple[int, int]) -> tuple[int, int]:
        """``(width, height)`` of an image of ``size`` ``(width, height)`` extended by this."""
        return size[0] + self.left + self.right, size[1] + self.top + self.bottom


def requested_extent(size: tuple[int, int], extend: str | Sequence[int | str] | None = None,
                     to: str | Sequence[int] | None = None) -> Extent:
    """The :class:`Extent` for an image of ``size`` ``(W, H)`` asked for by exactly one of
    ``extend`` (:func:`parse_extend`) and ``to`` (:func:`parse_to`); else an NPSError."""
    if (extend is None) == (to is None):
        raise NPSError("outpaint takes either --extend L,T,R,B (extend=) or --to WxH (to=)")
    return parse_extend(extend, size) if to is None else parse_to(to, size)


def parse_extend(spec: str | Sequence[int | str], size: tuple[int, int]) -> Extent:
    """``"L,T,R,B"`` (or 4 values) → :class:`Extent` for an image of ``size`` ``(W, H)``.

    Each value is pixels (``"64"``) or a percentage of its side (``"50%"``: of the width for
    L and R, of the height for T and B), rounded to the nearest pixel.
    """
    parts = [p.strip() for p in spec.split(",")] if isinstance(spec, str) else list(spec)
    if len(parts) != 4:
        raise NPSError(f"--extend takes four values L,T,R,B (pixels or N%), got {spec!r}")
    sides = (size[0], size[1], size[0], size[1])
    values = []
    for part, side in zip(parts, sides, strict=True):
        text = str(part).strip()
        match = re.fullmatch(r"([-+]?\d+(?:\.\d*)?)%", text)
        try:
            values.append(round(float(match[1]) * side / 100) if match else int(text))
        except ValueError:
            raise NPSError(f"--extend value {text!r} is neither pixels nor N% "
                           f"(in {spec!r})") from None
    return check_extent(Extent(*values), size)


def parse_to(spec: str | Sequence[int], size: tuple[int, int]) -> Extent:
    """``"WxH"`` (or ``(W, H)``) → the :class:`Extent` that centres an image of ``size`` in a
    ``W × H`` canvas (an odd margin puts the extra pixel right / bottom)."""
    if isinstance(spec, str):
        width, height = parse_size(spec, "--to")
    else:
        try:
            width, height = (int(v) for v in spec)
        except (TypeError, ValueError):
            raise NPSError(f"to takes (W, H) in pixels, got {spec!r}") from None
    if width < size[0] or height < size[1]:
        raise NPSError(f"--to {width}x{height} is smaller than the {size[0]}x{size[1]} image")
    dw, dh = width - size[0], height - size[1]
    return check_extent(Extent(dw // 2, dh // 2, dw - dw // 2, dh - dh // 2), size)


def check_extent(extent: Extent, size: tuple[int, int]) -> Extent:
    """``extent`` if it is valid for an image of ``size``: no negative side, something to add,
    and a result within :data:`~neural_patch_synth.io.MAX_PIXELS`; else an NPSError."""
    values = (extent.left, extent.top, extent.right, extent.bottom)
    if any(v < 0 for v in values):
        raise NPSError(f"extents must not be negative (outpaint only adds pixels), got "
                       f"{','.join(map(str, values))}")
    if not any(values):
        raise NPSError("nothing to add: every extent is zero")
    width, height = extent.grown(size)
    if width * height > MAX_PIXELS:
        raise NPSError(f"the extended image would be {width}x{height} = {width * height:,} "
                       f"pixels, over the {MAX_PIXELS:,}-pixel limit")
    return extent


def plan_steps(size: tuple[int, int], extent: Extent, step: float) -> list[Extent]:
    """The steps of a recursive extension of an image of ``size`` ``(W, H)``: each adds to a
    side at most ``step`` × the current width (left, right) or height (top, bottom), at least
    one pixel, until ``extent`` is reached."""
    left, top, right, bottom = extent.left, extent.top, extent.right, extent.bottom
    width, height = size
    steps = []
    while left or top or right or bottom:
        across, down = max(1, int(step * width)), max(1, int(step * height))
        now = Extent(min(left, across), min(top, down), min(right, across), min(bottom, down))
        steps.append(now)
        left, top, right, bottom = (left - now.left, top - now.top, right - now.right,
                                    bottom - now.bottom)
        width, height = now.grown((width, height))
    return steps


def band_masks(size: tuple[int, int], extent: Extent) -> tuple[np.ndarray, np.ndarray]:
    """The new pixels ``(H', W')`` bool of ``size`` extended by ``extent``, and the corner
    blocks among them (where a new row meets a new column)."""
    width, height = extent.grown(size)
    cols = np.ones(width, bool)
    cols[extent.left:extent.left + size[0]] = False
    rows = np.ones(height, bool)
    rows[extent.top:extent.top + size[1]] = False
    return rows[:, None] | cols[None, :], rows[:, None] & cols[None, :]


def outpaint_photo(photo: Photo, extent: Extent, fill: Fill, step: float,
                   progress: bool = True) -> Photo:
    """``photo`` extended by ``extent``, the new pixels filled by ``fill`` in the steps of
    :func:`plan_steps`. The photo's pixels are kept bit-identical.

    An alpha channel must be fully opaque (transparent pixels would be neither kept nor
    filled); it is extended opaque.
    """
    if photo.alpha is not None and (photo.alpha < photo.max_value).any():
        raise NPSError("the image has transparent pixels; outpaint extends opaque images only "
                       "(fill the transparent part with nps inpaint first, or flatten it)")
    check_extent(extent, photo.size)
    steps = plan_steps(photo.size, extent, step)
    pixels = photo.pixels
    with tqdm(steps, desc="outpaint", unit="step", disable=not progress,
              dynamic_ncols=True) as bar:
        for now in bar:
            new, corners = band_masks((pixels.shape[1], pixels.shape[0]), now)
            pad = ((now.top, now.bottom), (now.left, now.right), (0, 0))
            canvas = Photo(np.pad(pixels, pad), gray=photo.gray)
            canvas = fill(canvas, new)
            if corners.any():
                canvas = fill(canvas, corners)
            pixels = canvas.pixels
    alpha = None if photo.alpha is None else np.full(pixels.shape[:2], photo.max_value,
                                                     photo.alpha.dtype)
    return Photo(pixels, alpha=alpha, gray=photo.gray, info=dict(photo.info))
