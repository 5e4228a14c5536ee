"""Read and write photos and masks safely.

Photos come in as RGB arrays, whatever the file held: EXIF orientation applied, grayscale and
palette images expanded, 16-bit grayscale and colour kept at 16 bits, CMYK and Lab converted to
sRGB through their colour profile, alpha split off. Writes keep the format, 16 bits per channel
where the format has them (PNG, TIFF), lossless-ness, TIFF compression, resolution (DPI), EXIF,
and a colour profile only where it describes the pixels written. Every failure is an
:class:`~neural_patch_synth.errors.NPSError` with a one-line message; what is kept only in part
is a ``logging`` warning. Writes go to a temporary file in the destination folder and are
renamed into place, so a reader never sees half a file and an existing file is only replaced
when asked.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps

from .errors import NPSError
from .io16 import TIFF_TEXT_TAGS, write_png16, write_tiff16

log = logging.getLogger(__name__)

MAX_PIXELS = 150_000_000
"""Largest image (width × height) decoded; larger files are refused as unsafe."""
LARGE_HOLE = 0.9
"""Largest share of the image a hole may cover without ``allow_large_hole``."""

JPEG_QUALITY = 95
"""Quality of JPEG (4:4:4) and lossy WebP outputs."""
SAVE_FORMATS = {
    ".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF",
    ".webp": "WEBP", ".bmp": "BMP",
}
IMAGE_EXTENSIONS = frozenset(SAVE_FORMATS)
"""Extensions (compared lower-case) of the photos nps reads and writes."""
PART_SUFFIX = ".part"
"""Ending of temporary files; see :func:`part_prefix`."""
LOSSLESS_TIFF = ("raw", "tiff_lzw", "tiff_adobe_deflate", "tiff_deflate", "packbits")
"""TIFF compressions kept as they are (any bit depth); ``jpeg`` is kept for 8-bit photos."""
_PREDICTED_TIFF = ("tiff_lzw", "tiff_adobe_deflate", "tiff_deflate")
_TAGGED_PART = re.compile(r"\..*\.([0-9A-Za-z]+)-[a-z0-9_]{8}" + re.escape(PART_SUFFIX))
_ORIENTATION = 0x0112
_TIFF_METADATA = (*TIFF_TEXT_TAGS, 269, 285, 316, 700, 33723, 34665, 34853)
"""Tags carried from a TIFF source's directory (descriptions, XMP, IPTC, EXIF and GPS blocks);
the rest describes the file's layout, which the writer sets."""
_SWAPPED = {";16B": ";16L", ";16L": ";16B", ";16N": ";16B" if sys.byteorder == "little" else ";16L"}


@dataclass
class Photo:
    """A decoded photo.

    ``pixels``: ``(H, W, 3)`` uint8 or uint16 (16-bit sources), RGB, orientation applied.
    ``alpha``: ``(H, W)`` of the same dtype, or None. ``gray``: the source had one channel
    (written back as grayscale). ``info``: what to carry to the output: ``exif``,
    ``icc_profile`` (one that describes ``pixels``), ``dpi``, and the source's ``format``,
    ``lossless``, and for TIFF ``compression`` and ``predictor``.
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
        """Full scale of the pixels' dtype: 255 (8 bits) or 65535 (16 bits)."""
        return int(np.iinfo(self.pixels.dtype).max)


@contextmanager
def _decoding(path: Path, what: str) -> Iterator[None]:
    """Turn what decoding ``path`` raises into a one-line NPSError; bombs are errors."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except NPSError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise NPSError(f"{what} is too large to decode safely: {path}") from None
    except PermissionError:
        raise NPSError(f"{what} is not readable (permission denied): {path}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise NPSError(f"{what} could not be decoded ({err}): {path}") from None


def _open(path: str | os.PathLike, what: str, max_pixels: int) -> Image.Image:
    """The file opened (not yet decoded), its size checked against ``max_pixels``."""
    path = Path(path)
    if not path.exists():
        raise NPSError(f"{what} not found: {path}")
    if path.is_dir():
        raise NPSError(f"{what} is a folder, not a file: {path}")
    with _decoding(path, what):
        img = Image.open(path)
        w, h = img.size
        if w * h > max_pixels:
            raise NPSError(f"{what} is too large to decode safely ({w}x{h}): {path}")
    return img


def _rawmodes(img: Image.Image) -> list[str | None]:
    """The raw (file) mode of each tile of an image not yet decoded."""
    modes = []
    for tile in img.tile:
        args = tile.args
        modes.append(args if isinstance(args, str) else args[0]
                      if isinstance(args, tuple) and args and isinstance(args[0], str) else None)
    return modes


def _low_byte_tiles(img: Image.Image) -> list | None:
    """Tiles that decode a 16-bit RGB(A) file to the low bytes of its samples, or None.

    Pillow decodes such files to 8 bits by keeping the high bytes; reading the samples with
    the opposite byte order keeps the low bytes instead, and the two make the 16-bit values.
    """
    modes = _rawmodes(img)
    if img.mode not in ("RGB", "RGBA") or not modes or not all(
            m and m.split(";")[0] in ("RGB", "RGBA", "RGBX") and m[-4:] in _SWAPPED
            for m in modes):
        return None
    tiles = []
    for tile, mode in zip(img.tile, modes, strict=True):
        swapped = mode[:-4] + _SWAPPED[mode[-4:]]
        args = swapped if isinstance(tile.args, str) else (swapped, *tile.args[1:])
        tiles.append(tile._replace(args=args))
    return tiles


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> Photo:
    """Read a photo file; see :class:`Photo` for what comes back."""
    path = Path(path)
    img = _open(path, "image", max_pixels)
    deep = any(mode and ";16" in mode for mode in _rawmodes(img))
    low_tiles = _low_byte_tiles(img) if deep else None
    with _decoding(path, "image"):
        img.load()
    low = None
    if low_tiles is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked
                low = Image.open(path)
                low.tile = low_tiles
                low.load()
        except (OSError, ValueError, SyntaxError):  # a layout this reading does not cover
            low = None
    if deep and low is None and not img.mode.startswith("I"):
        log.warning("the 16-bit %s samples of %s are read with 8 bits", img.mode, path)
    return photo_from_pil(img, low)


@cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _colour_space(icc: bytes) -> str | None:
    """The colour space an ICC profile describes (``RGB``, ``GRAY``, ``CMYK``, ``Lab``...), or
    None for a profile that cannot be read."""
    try:
        return ImageCms.ImageCmsProfile(BytesIO(icc)).profile.xcolor_space.strip()
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return None


def _to_srgb(img: Image.Image, info: dict, name: str) -> Image.Image:
    """A CMYK or Lab image converted to sRGB through its colour profile (Lab: the built-in
    D50 Lab when it has none), relative colorimetric; ``info`` then carries an sRGB profile.
    CMYK without a CMYK profile has no defined colours and is refused."""
    icc = info.get("icc_profile")
    space = _colour_space(icc) if icc else None
    if img.mode == "CMYK" and space != "CMYK":
        raise NPSError(f"{name} is CMYK without a usable CMYK colour profile, so its colours "
                       "are undefined; convert it to RGB first")
    source = (ImageCms.ImageCmsProfile(BytesIO(icc)) if space in ("CMYK", "Lab")
              else ImageCms.createProfile("LAB"))
    try:
        rgb = ImageCms.profileToProfile(img, source, _srgb_profile(), outputMode="RGB",
                                        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    except (ImageCms.PyCMSError, OSError, ValueError) as err:
        raise NPSError(f"could not convert the {img.mode} colours of {name} to sRGB "
                       f"({err})") from None
    info["icc_profile"] = _srgb_profile().tobytes()
    log.warning("%s photo converted to sRGB by colour management (the output is RGB): %s",
                img.mode, name)
    return rgb


def _carried_info(img: Image.Image) -> dict:
    """What to carry from a source image to its output; see :class:`Photo`."""
    info: dict = {"format": "JPEG" if img.format == "MPO" else img.format}
    if img.info.get("icc_profile"):
        info["icc_profile"] = img.info["icc_profile"]
    dpi = img.info.get("dpi")
    if dpi and min(dpi) > 0 and (img.format != "TIFF" or img.tag_v2.get(296) in (2, 3)):
        info["dpi"] = tuple(float(d) for d in dpi)  # a TIFF's only with a unit (inch, cm)
    if img.format == "TIFF":
        info["compression"] = img.info.get("compression", "raw")
        info["predictor"] = int(img.tag_v2.get(317, 1))
    info["lossless"] = (
        _webp_lossless(getattr(img, "filename", "")) if img.format == "WEBP"
        else img.format not in ("JPEG", "MPO")
        and info.get("compression") not in ("jpeg", "tiff_jpeg", "webp"))
    return info


def _webp_lossless(path: str | os.PathLike) -> bool:
    """Whether a WebP file holds a lossless (``VP8L``) image: its RIFF chunks are walked to
    the first image chunk. False when unknown."""
    try:
        with open(path, "rb") as f:
            if f.read(12)[8:] != b"WEBP":
                return False
            while len(head := f.read(8)) == 8:
                if head[:4] in (b"VP8L", b"VP8 "):
                    return head[:4] == b"VP8L"
                size = int.from_bytes(head[4:], "little")
                f.seek(size + size % 2, os.SEEK_CUR)
    except OSError:
        pass
    return False


def photo_from_pil(img: Image.Image, low: Image.Image | None = None) -> Photo:
    """Decode a PIL image into a :class:`Photo` (orientation applied, alpha split off).

    ``low``: the same 16-bit RGB(A) file decoded to the low bytes of its samples (see
    :func:`load_image`), making a 16-bit photo. CMYK and Lab are converted to sRGB; an ICC
    profile that does not describe the resulting pixels is dropped with a warning.
    """
    name = getattr(img, "filename", "") or "the image"
    info = _carried_info(img)
    exif = img.getexif()
    if exif.get(_ORIENTATION, 1) in (5, 6, 7, 8) and "dpi" in info:
        info["dpi"] = info["dpi"][::-1]
    img = ImageOps.exif_transpose(img)
    if low is not None:
        low = ImageOps.exif_transpose(low)
    if exif:
        for tag in [t for t in exif if t == _ORIENTATION  # applied to the pixels now
                    or (info["format"] == "TIFF" and t not in _TIFF_METADATA)]:
            del exif[tag]
        info["exif"] = exif.tobytes()
    mode = img.mode
    if mode.startswith("I"):
        a = np.clip(np.asarray(img), 0, 65535).astype(np.uint16)
        _drop_foreign_profile(info, "GRAY", name)
        return Photo(np.repeat(a[..., None], 3, axis=2), gray=True, info=info)
    if mode in ("CMYK", "LAB"):
        img = _to_srgb(img, info, name)
    elif mode in ("P", "PA"):
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode == "1":
        img = img.convert("L")
    elif mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if "A" in mode else "RGB")
    gray = img.mode in ("L", "LA")
    _drop_foreign_profile(info, "GRAY" if gray else "RGB", name)
    alpha = np.asarray(img.getchannel("A")).copy() if img.mode in ("RGBA", "LA") else None
    pixels = np.asarray(img.convert("RGB")).copy()
    if low is not None:
        pixels = (pixels.astype(np.uint16) << 8) | np.asarray(low.convert("RGB"))
        if alpha is not None:
            alpha = (alpha.astype(np.uint16) << 8) | np.asarray(low.getchannel("A"))
    return Photo(pixels, alpha=alpha, gray=gray, info=info)


def _drop_foreign_profile(info: dict, space: str, name: str) -> None:
    """Remove from ``info`` a colour profile that is not for ``space`` pixels (or unreadable)."""
    icc = info.get("icc_profile")
    if icc and _colour_space(icc) != space:
        del info["icc_profile"]
        log.warning("the colour profile of %s is not for its %s pixels; it is not copied to "
                    "the output", name, space)


def to_8bit(a: np.ndarray) -> np.ndarray:
    """uint16 samples (0…65535) rounded to uint8 (0…255); uint8 as it is."""
    if a.dtype == np.uint8:
        return a
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


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
    path = Path(path)
    img = _open(path, "mask", MAX_PIXELS)
    with _decoding(path, "mask"):
        img.load()
    hole = mask_from_pil(ImageOps.exif_transpose(img))
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


def parse_size(spec: str, flag: str) -> tuple[int, int]:
    """``"WxH"`` (``x``, ``X`` or ``×``; e.g. ``"1536x512"``) → ``(width, height)``, both
    positive; else an NPSError naming ``flag``."""
    match = re.fullmatch(r"\s*(\d+)\s*[x×X]\s*(\d+)\s*", spec)
    if not match or not int(match[1]) or not int(match[2]):
        raise NPSError(f"{flag} takes WxH in pixels, e.g. 1536x512, got {spec!r}")
    return int(match[1]), int(match[2])


def output_format(path: str | os.PathLike) -> str:
    """PIL format name for an output path, from its extension."""
    ext = Path(path).suffix.lower()
    if ext not in SAVE_FORMATS:
        known = ", ".join(sorted(SAVE_FORMATS))
        raise NPSError(f"unknown output extension {ext or '(none)'!r}; use one of {known}")
    return SAVE_FORMATS[ext]


def to_pil(photo: Photo, fmt: str = "PNG") -> Image.Image:
    """Encode a :class:`Photo` back to a PIL image the way its source looked (16-bit colour
    becomes 8-bit: Pillow has no mode for it)."""
    px, alpha = photo.pixels, photo.alpha
    if px.dtype == np.uint16:
        if photo.gray and fmt in ("PNG", "TIFF"):
            return Image.fromarray(np.ascontiguousarray(px[..., 0]))  # mode I;16
        px, alpha = to_8bit(px), None if alpha is None else to_8bit(alpha)
    img = Image.fromarray(px[..., 0] if photo.gray else px, "L" if photo.gray else "RGB")
    if alpha is not None and fmt in ("PNG", "TIFF", "WEBP"):
        img.putalpha(Image.fromarray(alpha.astype(np.uint8), "L"))
    return img


def _name_max(folder: Path) -> int:
    """Longest file name (bytes) the file system of ``folder`` takes."""
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def part_prefix(path: Path, tag: str = "") -> str:
    """Start of the name of ``path``'s temporary files: ``.NAME.TAG-`` (``.NAME.`` without a
    tag), then 8 random characters and :data:`PART_SUFFIX`. NAME is shortened where the whole
    would be too long for the file system."""
    tail = f".{tag}-" if tag else "."
    room = _name_max(path.parent) - len(os.fsencode(tail)) - 1 - 8 - len(PART_SUFFIX)
    name = path.name
    while len(os.fsencode(name)) > room:
        name = name[:-1]
    return f".{name}{tail}"


def part_tag(name: str) -> str | None:
    """The tag in the name of a temporary file made by :func:`save_image` (see
    :func:`part_prefix`), or None for any other name or an untagged temporary file."""
    match = _TAGGED_PART.fullmatch(name)
    return match[1] if match else None


def estimated_size(photo: Photo, fmt: str) -> int:
    """Rough size in bytes of ``photo`` written as ``fmt`` (for the free-space check): the raw
    samples for BMP and uncompressed TIFF, half of them for other lossless outputs, a tenth for
    lossy ones."""
    samples = photo.pixels[..., :1 if photo.gray else 3]
    raw = samples.nbytes + (0 if photo.alpha is None else photo.alpha.nbytes)
    if fmt == "JPEG" or (fmt == "WEBP" and not photo.info.get("lossless")):
        return raw // 10
    if fmt == "BMP" or (fmt == "TIFF" and _tiff_options(photo, None)[0] == "raw"):
        return raw
    return raw // 2


def make_output_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) if needed and check that it can be written in;
    NPSError otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NPSError(f"cannot create the output folder {folder}: "
                       f"{err.strerror or err}") from None
    check_writable(folder)


def check_writable(folder: Path) -> None:
    """NPSError unless a file can be created and written in ``folder`` (tried with an
    anonymous 64 KiB temporary file, so a full disk fails too; where the system allows it the
    file never has a name, so even a ``kill -9`` leaves nothing behind)."""
    try:
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(bytes(65536))
            probe.flush()
    except OSError as err:
        raise NPSError(f"cannot write in the output folder {folder}: "
                       f"{err.strerror or err}") from None


def check_destination(path: str | os.PathLike, *, overwrite: bool = False,
                      sources: Iterable[str | os.PathLike | None] = (),
                      needed: int = 0) -> None:
    """Refuse, before any work, an output that cannot or must not be written.

    NPSError for: an unknown extension; one of ``sources`` (the input photo, its mask), also
    through a symlink or a hard link; an existing file unless ``overwrite``; a folder that is
    missing or where no file can be created (tried with a temporary file); a name too long for
    the file system; less free space than ``needed`` bytes.
    """
    path = Path(path)
    output_format(path)
    folder = path.parent
    size, limit = len(os.fsencode(path.name)), _name_max(folder)
    if size > limit:
        raise NPSError(f"the output name is too long for its file system ({size} bytes, at most "
                       f"{limit}): {path}")
    for source in sources:
        if source and path.exists() and os.path.exists(source) and os.path.samefile(path, source):
            raise NPSError(f"the output is the input {source} itself, and nps never replaces an "
                           f"original: {path}")
    if path.is_dir():
        raise NPSError(f"the output is a folder: {path}")
    if path.exists() and not overwrite:
        raise NPSError(f"output exists (use --overwrite to replace it): {path}")
    if not folder.is_dir():
        raise NPSError(f"output folder does not exist: {folder}")
    check_writable(folder)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise NPSError(f"not enough free space for {path}: {free / 1e6:.0f} MB free, about "
                       f"{needed / 1e6:.0f} MB needed")


def _tiff_options(photo: Photo, path: Path | None) -> tuple[str, bool]:
    """``(compression, predictor)`` for a TIFF output: the source TIFF's (a lossy one only for
    8-bit photos; what cannot be kept becomes LZW, with a warning when ``path`` is given), or
    uncompressed for other sources."""
    info = photo.info
    if info.get("format") != "TIFF":
        return "raw", False
    compression = {"tiff_jpeg": "jpeg"}.get(info["compression"], info["compression"])
    deep = photo.pixels.dtype == np.uint16 and not photo.gray
    if compression not in LOSSLESS_TIFF and (deep or compression != "jpeg"):
        if path is not None:
            log.warning("TIFF compression %s cannot be written here; %s uses LZW",
                        info["compression"], path)
        compression = "tiff_lzw"
    return compression, info.get("predictor") == 2 and compression in _PREDICTED_TIFF


def _encoder(photo: Photo, fmt: str, path: Path) -> Callable[[BinaryIO], None]:
    """A function writing ``photo`` as ``fmt`` to a binary stream; see :func:`save_image`."""
    info = photo.info
    dpi, icc, exif = info.get("dpi"), info.get("icc_profile"), info.get("exif")
    deep = photo.pixels.dtype == np.uint16 and not photo.gray
    planes = photo.pixels if photo.alpha is None else np.dstack([photo.pixels, photo.alpha])
    if deep and fmt == "PNG":
        return lambda f: write_png16(f, planes, icc, dpi, exif)
    if fmt == "TIFF":
        compression, predictor = _tiff_options(photo, path)
        if deep:
            text = {}
            if exif:
                tags = Image.Exif()
                tags.load(exif)
                text = {t: str(tags[t]) for t in TIFF_TEXT_TAGS if t in tags}
            return lambda f: write_tiff16(f, planes, compression, predictor, icc, dpi, text)
    if deep:
        log.warning("%s has 8 bits per channel: the 16-bit photo is written with 8: %s",
                    fmt, path)
    img = to_pil(photo, fmt)
    params: dict = {key: info[key] for key in ("icc_profile", "dpi") if info.get(key)}
    if exif or fmt == "TIFF":
        params["exif"] = Image.Exif()
        if exif:
            params["exif"].load(exif)
    if fmt == "JPEG":
        params.update(quality=JPEG_QUALITY, subsampling=0)
    elif fmt == "WEBP":
        params.update(lossless=True) if info.get("lossless") else params.update(
            quality=JPEG_QUALITY)
    elif fmt == "TIFF":
        params["compression"] = compression
        if compression == "jpeg":
            params["quality"] = JPEG_QUALITY
        if predictor:
            params["exif"][317] = 2  # Pillow takes TIFF tags from the EXIF block
    return lambda f: img.save(f, format=fmt, **params)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_image(path: str | os.PathLike, photo: Photo, overwrite: bool = False,
               tag: str = "") -> None:
    """Write ``photo`` atomically; the format follows the extension.

    An existing file is an error unless ``overwrite``; it is replaced through
    :func:`replace_file` (permissions kept; a new file gets those the umask leaves). Kept from
    ``photo.info``: EXIF, resolution (DPI), the colour profile, 16 bits per channel in PNG and
    TIFF (other formats get 8, with a warning), and, from a TIFF source, the TIFF compression
    and predictor.
    WebP is lossless when the source was lossless (lossless WebP, PNG, TIFF, BMP). JPEG and
    lossy WebP are written at quality :data:`JPEG_QUALITY`, JPEG in 4:4:4. ``tag`` goes into
    the temporary file's name (:func:`part_prefix`).
    """
    path = Path(path)
    fmt = output_format(path)
    if path.exists() and not overwrite:
        raise NPSError(f"output exists (use --overwrite to replace it): {path}")
    if not path.parent.is_dir():
        raise NPSError(f"output folder does not exist: {path.parent}")
    replace_file(path, _encoder(photo, fmt, path), tag)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, replacing any file there atomically
    (:func:`replace_file`)."""
    replace_file(Path(path), lambda f: f.write(text.encode()))


def replace_file(path: Path, write: Callable[[BinaryIO], object], tag: str = "") -> None:
    """Put what ``write`` writes into a temporary file beside ``path``, then rename it to
    ``path``: a reader sees the old file or the new one, never half of one, and a failed
    write leaves no temporary file. A replaced file keeps its permissions, a new one gets
    those the umask leaves. ``tag`` goes into the temporary file's name (:func:`part_prefix`).
    NPSError if it cannot be written."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~_umask()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=part_prefix(path, tag), suffix=PART_SUFFIX,
                                   dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise NPSError(f"could not write {path}: {err.strerror or err}") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
