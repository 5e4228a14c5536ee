"""The public API: ``inpaint(image, mask, **options)``, ``outpaint(image, extend, **options)``
and the reusable :class:`Inpainter`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from .config import InpaintConfig
from .errors import NPSError
from .io import (
    Photo,
    check_mask,
    mask_from_alpha,
    mask_from_array,
    mask_from_pil,
    photo_from_pil,
    to_pil,
)
from .outpaint import Extent, outpaint_photo, requested_extent
from .prior import load_prior
from .synthesis import Synthesizer

ImageLike = TypeVar("ImageLike", Image.Image, np.ndarray)


def resolve_device(name: str) -> torch.device:
    """The one place that picks the device: ``auto`` means CUDA when available; ``cpu``,
    ``cuda`` or ``cuda:N`` as named. Another name, or CUDA that torch cannot see, is an
    NPSError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise NPSError(f"unknown device {name!r} (auto, cpu, cuda or cuda:N)")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NPSError("--device cuda was asked for, but torch sees no CUDA device")
    return torch.device(name)


class Inpainter:
    """Loads the networks once; call it on many photos.

    >>> nps = Inpainter(iterations=(40, 20, 10))
    >>> out = nps(image, mask)            # PIL image or (H, W, 3) uint8 array → same type
    """

    def __init__(self, config: InpaintConfig | None = None, **options) -> None:
        self.config = InpaintConfig.from_options(config, **options)
        self.device = resolve_device(self.config.device)
        self.prior = load_prior(self.config.prior, self.device)
        self.synthesizer = Synthesizer(self.config, self.prior, self.device)

    def photo(self, photo: Photo, mask: np.ndarray | None = None, *, invert_mask: bool = False,
              allow_large_hole: bool = False) -> Photo:
        """Fill the hole of a :class:`~neural_patch_synth.io.Photo`.

        ``mask``: ``(H, W)`` bool, True = hole; None uses the photo's transparency.
        ``invert_mask`` fills the complement instead; a hole over 90 % of the photo is refused
        as probably inverted unless ``allow_large_hole``. Known pixels of the result are
        bit-identical to the input; an alpha channel used as the mask becomes fully opaque (the
        holes are filled).
        """
        alpha = photo.alpha
        if mask is None:
            if alpha is None:
                raise NPSError("no mask given and the image has no transparency to use as one")
            mask, alpha = mask_from_alpha(alpha), np.full_like(alpha, photo.max_value)
        if mask.shape != photo.pixels.shape[:2]:
            raise NPSError(
                f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                f"{photo.size[0]}x{photo.size[1]}"
            )
        if invert_mask:
            mask = ~mask
        check_mask(mask, allow_large_hole)
        return self._fill(photo, mask, alpha, "inpaint")

    def _fill(self, photo: Photo, mask: np.ndarray, alpha: np.ndarray | None,
              command: str) -> Photo:
        """``photo`` with the hole ``mask`` ``(H, W)`` filled as ``command`` (``"inpaint"`` or
        ``"outpaint"``) does, and ``alpha`` as its alpha channel; known pixels bit-identical."""
        px = self.synthesizer(photo.pixels, mask, command)
        if photo.gray:  # the fill's brightness, in all three channels
            px[mask] = px[mask].mean(axis=1, keepdims=True).round().astype(px.dtype)
        return Photo(px, alpha=alpha, gray=photo.gray, info=dict(photo.info))

    def __call__(self, image: ImageLike, mask: ImageLike | None = None, *,
                 invert_mask: bool = False, allow_large_hole: bool = False) -> ImageLike:
        """Fill ``image``'s hole; returns the same type as ``image``.

        ``image``: PIL image, or ``(H, W, 3)`` / ``(H, W)`` uint8 array. ``mask``: PIL image or
        array of the same size, white = hole from 50 % up (see
        :func:`~neural_patch_synth.io.mask_from_array`); None uses an RGBA image's transparent
        pixels. ``invert_mask``, ``allow_large_hole``: see :meth:`photo`.
        """
        hole = None
        if mask is not None:
            hole = mask_from_pil(mask) if isinstance(mask, Image.Image) else mask_from_array(mask)
        out = self.photo(_as_photo(image), hole, invert_mask=invert_mask,
                         allow_large_hole=allow_large_hole)
        return _like(out, image)

    def outpaint_photo(self, photo: Photo, extent: Extent) -> Photo:
        """``photo`` extended by ``extent``, step by step (see
        :func:`~neural_patch_synth.outpaint.outpaint_photo`); its pixels are kept bit-identical
        with the outpainting defaults (:data:`~neural_patch_synth.config.COMMAND_DEFAULTS`)."""

        def fill(canvas: Photo, new: np.ndarray) -> Photo:
            return self._fill(canvas, new, None, "outpaint")

        return outpaint_photo(photo, extent, fill, self.config.outpaint_step,
                              self.config.progress)

    def outpaint(self, image: ImageLike, extend: str | Sequence[int | str] | None = None, *,
                 to: str | Sequence[int] | None = None) -> ImageLike:
        """``image`` extended beyond its borders; returns the same type as ``image``.

        ``extend``: ``"L,T,R,B"`` or four values, pixels or ``"N%"`` of the side (e.g.
        ``"0,0,50%,0"``); or ``to``: ``"WxH"`` / ``(W, H)``, the photo centred. An RGBA image
        must be fully opaque.
        """
        photo = _as_photo(image)
        extent = requested_extent(photo.size, extend, to)
        return _like(self.outpaint_photo(photo, extent), image)


def _as_photo(image: ImageLike) -> Photo:
    """A PIL image or an ``(H, W)`` / ``(H, W, 3|4)`` uint8 array as a :class:`Photo`."""
    if isinstance(image, Image.Image):
        return photo_from_pil(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (
        arr.ndim == 3 and arr.shape[2] not in (3, 4)
    ):
        raise NPSError("image array must be (H, W), (H, W, 3) or (H, W, 4) uint8")
    return photo_from_pil(Image.fromarray(arr))


def _like(photo: Photo, image: ImageLike) -> ImageLike:
    """``photo`` as the type of ``image``: PIL image, or array of its layout."""
    if isinstance(image, Image.Image):
        return to_pil(photo)
    if photo.gray:
        return photo.pixels[..., 0]
    return photo.pixels if photo.alpha is None else np.dstack([photo.pixels, photo.alpha])


def inpaint(image: ImageLike, mask: ImageLike | None = None,
            config: InpaintConfig | None = None, *, invert_mask: bool = False,
            allow_large_hole: bool = False, **options) -> ImageLike:
    """Fill the hole of ``image`` (like ``cv2.inpaint``): see :meth:`Inpainter.__call__`.

    ``options`` are :class:`InpaintConfig` fields, e.g. ``inpaint(img, mask, seed=1,
    iterations=(40, 20, 10))``. To fill many photos, build one :class:`Inpainter` and reuse it.
    """
    return Inpainter(config, **options)(image, mask, invert_mask=invert_mask,
                                        allow_large_hole=allow_large_hole)


def outpaint(image: ImageLike, extend: str | Sequence[int | str] | None = None,
             config: InpaintConfig | None = None, *, to: str | Sequence[int] | None = None,
             **options) -> ImageLike:
    """Extend ``image`` beyond its borders: see :meth:`Inpainter.outpaint`.

    ``outpaint(img, "0,0,50%,0", seed=1)`` widens a photo by half on the right, in steps of at
    most ``outpaint_step`` (a quarter) of the side. ``options`` are :class:`InpaintConfig`
    fields; a mask is refused (outpaint fills only the added border).
    """
    if "mask" in options:
        raise NPSError("outpaint takes no mask: it fills only the pixels it adds "
                       "(use inpaint for holes)")
    return Inpainter(config, **options).outpaint(image, extend, to=to)
