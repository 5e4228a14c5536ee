"""16-bit colour PNG and TIFF encoders: Pillow has no image mode for 16-bit RGB(A).

Both take ``planes``, an ``(H, W, C)`` uint16 array (RGB, or RGBA with unassociated alpha),
and write a complete file to a binary stream. The PNG is written chunk by chunk with zlib; the
TIFF's strips are compressed by Pillow (as an 8-bit image of the same row length, so any
lossless byte codec Pillow's libtiff has works) under a directory of our own.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import BinaryIO

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
"""Descriptive EXIF / TIFF tags copied into a 16-bit TIFF: ImageDescription, Make, Model,
Software, DateTime, Artist, Copyright."""
_ROWS = 256
"""Rows filtered at a time (bounds the PNG encoder's memory)."""


def _chunk(f: BinaryIO, kind: bytes, data: bytes) -> None:
    f.write(struct.pack(">I", len(data)) + kind + data)
    f.write(struct.pack(">I", zlib.crc32(kind + data)))


def _paeth_rows(rows: np.ndarray, above: np.ndarray, step: int) -> np.ndarray:
    """PNG Paeth filter (type 4) of byte ``rows`` ``(n, L)``; ``above`` is the row before them
    (zeros for the first), ``step`` the bytes per pixel. Returns ``(n, L + 1)`` with the
    filter-type byte first."""
    x = rows.astype(np.int16)
    b = np.vstack([above[None].astype(np.int16), x[:-1]])
    a = np.zeros_like(x)
    a[:, step:] = x[:, :-step]
    c = np.zeros_like(x)
    c[:, step:] = b[:, :-step]
    pa, pb, pc = np.abs(b - c), np.abs(a - c), np.abs(a + b - 2 * c)
    predictor = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    out = np.empty((len(rows), rows.shape[1] + 1), np.uint8)
    out[:, 0] = 4
    out[:, 1:] = (x - predictor).astype(np.uint8)
    return out


def write_png16(f: BinaryIO, planes: np.ndarray, icc_profile: bytes | None = None,
                dpi: tuple[float, float] | None = None, exif: bytes | None = None) -> None:
    """16-bit RGB / RGBA PNG of ``planes`` with an optional colour profile, resolution and
    EXIF block (``Exif\\0\\0`` header optional)."""
    height, width, channels = planes.shape
    f.write(PNG_SIGNATURE)
    _chunk(f, b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2 if channels == 3 else 6,
                                   0, 0, 0))
    if icc_profile:
        _chunk(f, b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc_profile))
    if dpi:
        _chunk(f, b"pHYs", struct.pack(">IIB", *(round(d / 0.0254) for d in dpi), 1))
    if exif:
        _chunk(f, b"eXIf", exif.removeprefix(b"Exif\0\0"))
    rows = planes.astype(">u2").reshape(height, -1).view(np.uint8)
    packer = zlib.compressobj(6)
    above = np.zeros(rows.shape[1], np.uint8)
    for start in range(0, height, _ROWS):
        block = rows[start:start + _ROWS]
        data = packer.compress(_paeth_rows(block, above, 2 * channels).tobytes())
        above = block[-1]
        if data:
            _chunk(f, b"IDAT", data)
    _chunk(f, b"IDAT", packer.flush())
    _chunk(f, b"IEND", b"")


def _ifd(entries: dict[int, tuple[int, list | bytes]], offset: int) -> bytes:
    """A little-endian TIFF directory at file ``offset``, its out-of-line values after it.

    ``entries``: tag → (type, values); types 2 ASCII and 7 UNDEFINED take bytes, 3 SHORT and
    4 LONG lists of ints, 5 RATIONAL a list of (numerator, denominator)."""
    head = struct.pack("<H", len(entries))
    extra = b""
    data_at = offset + 2 + 12 * len(entries) + 4
    for tag in sorted(entries):
        kind, values = entries[tag]
        if kind in (2, 7):
            raw = bytes(values)
        elif kind == 5:
            raw = b"".join(struct.pack("<II", *v) for v in values)
        else:
            raw = struct.pack(f"<{len(values)}{'H' if kind == 3 else 'I'}", *values)
        if len(raw) <= 4:
            field = raw.ljust(4, b"\0")
        else:
            field = struct.pack("<I", data_at + len(extra))
            extra += raw + b"\0" * (len(raw) % 2)
        head += struct.pack("<HHI", tag, kind, len(values)) + field
    return head + b"\0\0\0\0" + extra


def write_tiff16(f: BinaryIO, planes: np.ndarray, compression: str = "raw",
                 predictor: bool = False, icc_profile: bytes | None = None,
                 dpi: tuple[float, float] | None = None,
                 text: dict[int, str] | None = None) -> None:
    """16-bit RGB / RGBA TIFF of ``planes``, compressed with a Pillow TIFF ``compression``
    (a lossless one: ``raw``, ``tiff_lzw``, ``tiff_adobe_deflate``, ``tiff_deflate``,
    ``packbits``), with horizontal differencing if ``predictor``, and an optional colour
    profile, resolution and descriptive ASCII tags (``text``: tag → value)."""
    height, width, channels = planes.shape
    samples = planes.astype("<u2")  # a copy
    if predictor:
        samples[:, 1:] -= planes[:, :-1].astype("<u2")  # wraps modulo 2**16, as TIFF expects
    rows = samples.reshape(height, -1).view(np.uint8)
    carrier = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rows), "L").save(carrier, "TIFF", compression=compression)
    with Image.open(carrier) as packed:
        tags = packed.tag_v2
        offsets, counts = list(tags[273]), list(tags[279])
        rows_per_strip, code = int(tags.get(278, height)), int(tags[259])
    body = bytearray(b"II*\0\0\0\0\0")
    strips = []
    for offset, count in zip(offsets, counts, strict=True):
        strips.append(len(body))
        body += carrier.getbuffer()[offset:offset + count]
        body += b"\0" * (len(body) % 2)
    entries: dict[int, tuple[int, list | bytes]] = {
        256: (4, [width]), 257: (4, [height]), 258: (3, [16] * channels), 259: (3, [code]),
        262: (3, [2]), 273: (4, strips), 277: (3, [channels]), 278: (4, [rows_per_strip]),
        279: (4, counts), 284: (3, [1]),
    }
    if predictor:
        entries[317] = (3, [2])
    if channels == 4:
        entries[338] = (3, [2])  # unassociated alpha
    if dpi:
        entries[282], entries[283] = ((5, [(round(d * 1000), 1000)]) for d in dpi)
        entries[296] = (3, [2])  # inch
    if icc_profile:
        entries[34675] = (7, icc_profile)
    for tag, value in (text or {}).items():
        entries[tag] = (2, value.encode("ascii", "replace") + b"\0")
    body[4:8] = struct.pack("<I", len(body))
    f.write(bytes(body) + _ifd(entries, len(body)))
