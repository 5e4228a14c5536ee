"""Read and write photos and masks safely.

Photos come in as RGB arrays, whatever the file held: EXIF orientation applied, grayscale and
palette images expanded, 16-bit grayscale kept at 16 bits, alpha split off. Every failure is an
:class:`~neural_patch_synth.errors.NPSError` with a one-line message. Writes go to a temporary
file in the destination folder and are renamed into place, so a reader never sees half a file
and an existing file is only replaced when asked.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import NPSError

MAX_PIXELS = 150_000_000
"""Largest image (width × height) decoded; larger files are refused as unsafe."""
LARGE_HOLE = 0.9
"""Largest share of the image a hole may cover without ``allow_large_hole``."""

JPEG_QUALITY = 95
SAVE_FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
    ".webp": "WEBP", ".bmp": "BMP",
}


@dataclass
class Photo:
    """A decoded photo.

    ``pixels``: ``(H, W, 3)`` uint8 or uint16 (16-bit sources), RGB, orientation applied.
    ``alpha``: ``(H, W)`` of the same dtype, or None. ``gray``: the source had one channel
    (written back as grayscale). ``info``: metadata to carry to the output (``exif``,
    ``icc_profile``).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    gray: bool = False
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def max_value(self) -> int:
        return 65535 if self.pixels.dtype == np.uint16 else 255


def _open(path: str | os.PathLike, what: str, max_pixels: int) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise NPSError(f"{what} not found: {path}")
    if path.is_dir():
        raise NPSError(f"{what} is a folder, not a file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
            w, h = img.size
            if w * h > max_pixels:
                raise NPSError(f"{what} is too large to decode safely ({w}x{h}): {path}")
            img.load()
    except NPSError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NPSError(f"{what} is too large to decode safely: {path}") from None
    except PermissionError:
        raise NPSError(f"{what} is not readable (permission denied): {path}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise NPSError(f"{what} could not be decoded ({err}): {path}") from None
    return img


def photo_from_pil(img: Image.Image) -> Photo:
    """Decode a PIL image into a :class:`Photo` (orientation applied, alpha split off)."""
    info = {k: img.info[k] for k in ("icc_profile",) if img.info.get(k)}
    exif = img.getexif()
    img = ImageOps.exif_transpose(img)
    if exif:
        exif.pop(0x0112, None)  # orientation is now applied to the pixels
        info["exif"] = exif.tobytes()
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img)
        a = np.clip(a, 0, 65535).astype(np.uint16)
        return Photo(np.repeat(a[..., None], 3, axis=2), gray=True, info=info)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGB")
    gray = img.mode in ("L", "LA")
    alpha = np.asarray(img.getchannel("A")).copy() if img.mode in ("RGBA", "LA") else None
    pixels = np.asarray(img.convert("RGB")).copy()
    return Photo(pixels, alpha=alpha, gray=gray, info=info)


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Photo:
    """Read a photo file; see :class:`Photo` for what comes back."""
    return photo_from_pil(_open(path, "image", max_pixels))


def mask_from_array(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` array → ``(H, W)`` bool hole mask (brightest channel counts).

    A pixel is a hole from half of full scale up: ``>= 128`` for uint8 and other integer
    arrays, ``>= 32768`` for uint16, ``>= 0.5`` for floats (0…1). Bool arrays are taken as they
    are, and an integer mask holding only 0 and 1 has its 1s as holes. So a mask saved as JPEG
    does not grow its holes through compression ringing.
    """
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.ndim != 2:
        raise NPSError(f"mask must be a 2-D array, got shape {mask.shape}")
    if mask.dtype == bool:
        return mask
    if np.issubdtype(mask.dtype, np.floating):
        return mask >= 0.5
    if not np.issubdtype(mask.dtype, np.integer):
        raise NPSError(f"mask must hold numbers, got {mask.dtype}")
    if mask.size and mask.max() <= 1:
        return mask == 1
    return mask >= (32768 if mask.dtype == np.uint16 else 128)


def mask_from_pil(img: Image.Image) -> np.ndarray:
    """Hole mask of a PIL image, thresholded at 50 % as in :func:`mask_from_array`.

    An image with an alpha channel and a uniform colour uses the alpha (opaque = hole); 16-bit,
    32-bit and float images keep their range (32-bit integers are read as 16-bit).
    """
    if "A" in img.mode or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        colour = rgba[..., :3]
        return mask_from_array(rgba[..., 3] if colour.min() == colour.max() else colour)
    if img.mode in ("1", "L", "F"):
        return mask_from_array(np.asarray(img))
    if img.mode.startswith("I"):
        return mask_from_array(np.clip(np.asarray(img), 0, 65535).astype(np.uint16))
    return mask_from_array(np.asarray(img.convert("RGB")))


def load_mask(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask file (white = hole, from 50 % grey up; see :func:`mask_from_array`) as an
    ``(H, W)`` bool array.

    ``size`` is the photo's ``(width, height)``; a mask of another size is an error. A mask with
    an alpha channel whose colour is uniform uses the alpha (opaque = hole).
    """
    hole = mask_from_pil(ImageOps.exif_transpose(_open(path, "mask", MAX_PIXELS)))
    if size is not None and (hole.shape[1], hole.shape[0]) != tuple(size):
        raise NPSError(
            f"mask is {hole.shape[1]}x{hole.shape[0]} but the image is {size[0]}x{size[1]}: {path}"
        )
    return hole


def mask_from_alpha(alpha: np.ndarray) -> np.ndarray:
    """Hole mask from an alpha channel: every pixel that is not fully opaque is a hole."""
    return alpha < np.iinfo(alpha.dtype).max


def check_mask(mask: np.ndarray, allow_large_hole: bool = False) -> None:
    """Refuse a mask with no hole, one with no known pixel left to learn from, and (unless
    ``allow_large_hole``) one covering more than :data:`LARGE_HOLE` of the image, which is
    almost surely inverted."""
    if not mask.any():
        raise NPSError("the mask is empty: no hole to fill (white / non-zero pixels are the hole)")
    if mask.all():
        raise NPSError("the mask covers the whole image: nothing is left to fill the hole from")
    if mask.mean() > LARGE_HOLE and not allow_large_hole:
        raise NPSError(
            f"the mask covers {mask.mean():.0%} of the image, so it is probably inverted (white "
            "= hole): --invert-mask (invert_mask=True) fills the rest instead, "
            "--allow-large-hole (allow_large_hole=True) fills it as it is"
        )


def output_format(path: str | os.PathLike) -> str:
    """PIL format name for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    if ext not in SAVE_FORMATS:
        known = ", ".join(sorted(SAVE_FORMATS))
        raise NPSError(f"unknown output extension {ext or '(none)'!r}; use one of {known}")
    return SAVE_FORMATS[ext]


def to_pil(photo: Photo, fmt: str = "PNG") -> Image.Image:
    """Encode a :class:`Photo` back to a PIL image the way its source looked."""
    px, alpha = photo.pixels, photo.alpha
    if px.dtype == np.uint16:
        if photo.gray and fmt in ("PNG", "TIFF"):
            return Image.fromarray(np.ascontiguousarray(px[..., 0]))  # mode I;16
        px = (px.astype(np.uint32) * 255 + 32767) // 65535
        px = px.astype(np.uint8)
        alpha = None if alpha is None else ((alpha.astype(np.uint32) * 255 + 32767) // 65535)
    img = Image.fromarray(px[..., 0] if photo.gray else px, "L" if photo.gray else "RGB")
    if alpha is not None and fmt in ("PNG", "TIFF", "WEBP"):
        img.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return img


def save_image(path: str | os.PathLike, photo: Photo, overwrite: bool = False) -> None:
    """Write ``photo`` atomically; the format follows the extension.

    An existing file is an error unless ``overwrite``. JPEG is written at quality 95; EXIF
    and the ICC profile in ``photo.info`` are kept.
    """
    path = Path(path)
    fmt = output_format(path)
    if path.exists() and not overwrite:
        raise NPSError(f"output exists (use --overwrite to replace it): {path}")
    if not path.parent.exists():
        raise NPSError(f"output folder does not exist: {path.parent}")
    img = to_pil(photo, fmt)
    params: dict = {k: v for k, v in photo.info.items() if k in ("exif", "icc_profile") and v}
    if fmt == "JPEG":
        params.update(quality=JPEG_QUALITY, subsampling=0)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            img.save(f, format=fmt, **params)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        raise NPSError(f"could not write {path}: {err}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
