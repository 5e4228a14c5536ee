"""Pictures for judging by eye: the kept fills, comparison pictures and look sheets.

- ``OUT/outputs/<dataset>/<image>-<mask>/<method>.png``: a method's filled image (known pixels
  from the photo), kept for the methods the sheets show.
- Comparison picture: input | every method | truth, each photo shrunk to :data:`PANEL` px.
- Look sheet: input | chosen fills | truth, cropped around the hole at 1:1 pixels (see
  :func:`look_box`), enlarged ×2 (nearest) when that still fits :data:`LOOK_MAX`, so the
  texture of a fill can be seen. The hole is shown checkered.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from neural_patch_synth.io import Photo, save_image

from .datasets import Case

PANEL = 256
"""Longest side of one panel of a comparison picture, in pixels."""
COLUMNS = 5
"""Panels per line of a comparison picture."""
LOOK_MAX = 512
"""Longest side of one look-sheet panel, in pixels."""
GROW = 0.5
"""A look sheet shows the hole's bounding box grown by this fraction of its size per side."""
CHECKER = 8
"""Side of the checkerboard squares that show the hole, in pixels."""
FONT_SIZE = 14


def output_path(out: Path, case: Case, method: str) -> Path:
    """Where the filled image of ``case`` by ``method`` is kept."""
    return out / "outputs" / case.dataset / f"{case.image_id}-{case.mask_id}" / f"{method}.png"


def save_picture(picture: Image.Image | np.ndarray, path: Path) -> None:
    """Write ``picture`` (an RGB image or ``(H, W, 3)`` uint8) to ``path``, its folder made as
    needed, through :func:`~neural_patch_synth.io.save_image`: a temporary file renamed into
    place, so an interrupted run never leaves half a picture; PNG lossless, JPEG at
    :data:`~neural_patch_synth.io.JPEG_QUALITY`."""
    pixels = np.asarray(picture.convert("RGB") if isinstance(picture, Image.Image) else picture)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(path, Photo(np.ascontiguousarray(pixels)), overwrite=True)


def load_fill(out: Path, case: Case, method: str) -> np.ndarray | None:
    """The kept ``(H, W, 3)`` uint8 fill of ``case`` by ``method``, or None if not kept."""
    path = output_path(out, case, method)
    return np.asarray(Image.open(path).convert("RGB")) if path.exists() else None


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError):  # Pillow < 10.1 or no FreeType: the small bitmap font
        return ImageFont.load_default()


def labelled(image: Image.Image, label: str) -> Image.Image:
    """``image`` under a white bar holding ``label``."""
    bar = FONT_SIZE + 6
    panel = Image.new("RGB", (image.width, image.height + bar), "white")
    panel.paste(image, (0, bar))
    ImageDraw.Draw(panel).text((3, 2), label, fill="black", font=_font())
    return panel


def grid(panels: Sequence[Image.Image], columns: int) -> Image.Image:
    """Panels left to right, ``columns`` per line, on white; cells as large as the largest."""
    w, h = max(p.width for p in panels), max(p.height for p in panels)
    cols = min(columns, len(panels))
    sheet = Image.new("RGB", (cols * w, -(-len(panels) // cols) * h), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % cols) * w, (i // cols) * h))
    return sheet


def checkered(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` uint8 with the hole ``mask`` ``(H, W)`` drawn as a light
    checkerboard (distinct from white sky or paper)."""
    yy, xx = np.indices(mask.shape)
    board = np.where((yy // CHECKER + xx // CHECKER) % 2 == 0, 255, 200).astype(np.uint8)
    return np.where(mask[..., None], board[..., None], image).astype(np.uint8)


def look_box(mask: np.ndarray, grow: float = GROW, limit: int = LOOK_MAX) -> tuple[slice, slice]:
    """The region a look sheet shows: the hole's bounding box grown by ``grow`` × its size per
    side, clipped to the image; a side longer than ``limit`` is cut to ``limit`` around the
    hole's centre (so pixels stay 1:1)."""
    spans = []
    for axis, size in enumerate(mask.shape):
        idx = np.nonzero(mask.any(axis=1 - axis))[0]
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        margin = round(grow * (hi - lo))
        a, b = max(0, lo - margin), min(size, hi + margin)
        if b - a > limit:
            a = min(max(0, (lo + hi - limit) // 2), size - limit)
            b = a + limit
        spans.append(slice(a, b))
    return spans[0], spans[1]


def _look_panel(image: np.ndarray, box: tuple[slice, slice], label: str) -> Image.Image:
    crop = Image.fromarray(np.ascontiguousarray(image[box]))
    if 2 * max(crop.size) <= LOOK_MAX:
        crop = crop.resize((2 * crop.width, 2 * crop.height), Image.NEAREST)
    return labelled(crop, label)


def look_sheet(image: np.ndarray, mask: np.ndarray, fills: Sequence[tuple[str, np.ndarray]],
               title: str = "input") -> Image.Image:
    """One row: input (hole checkered, labelled ``title``) | each ``(label, fill)`` | truth,
    all cropped to :func:`look_box`. ``image``, fills: ``(H, W, 3)`` uint8; ``mask``: bool."""
    box = look_box(mask)
    panels = [_look_panel(checkered(image, mask), box, title)]
    panels += [_look_panel(fill, box, label) for label, fill in fills]
    panels.append(_look_panel(image, box, "truth"))
    return grid(panels, len(panels))


def look_path(out: Path, case: Case) -> Path:
    return out / "look" / f"{case.dataset}-{case.image_id}-{case.mask_id}.png"


def write_look(out: Path, case: Case, methods: Sequence[str]) -> Path | None:
    """:func:`look_sheet` of ``case`` with the kept fills of ``methods`` (in that order) at
    :func:`look_path`; None (nothing written) if none of them was kept."""
    fills = [(m, f) for m in methods if (f := load_fill(out, case, m)) is not None]
    if not fills:
        return None
    image, mask = case.load()
    path = look_path(out, case)
    save_picture(look_sheet(image, mask, fills, f"input {case.image_id}"), path)
    return path


def _thumb(image: np.ndarray, label: str) -> Image.Image:
    img = Image.fromarray(image)
    img.thumbnail((PANEL, PANEL), Image.LANCZOS)
    return labelled(img, label)


def write_picture(path: Path, case: Case, out: Path, methods: Sequence[str]) -> bool:
    """Input with a white hole | each method's kept fill | ground truth, whole photos shrunk to
    :data:`PANEL` px, :data:`COLUMNS` panels per line. False (nothing written) if no fill was
    kept."""
    image, mask = case.load()
    fills = [_thumb(f, m) for m in methods if (f := load_fill(out, case, m)) is not None]
    if not fills:
        return False
    shown = np.where(mask[..., None], 255, image).astype(np.uint8)
    sheet = grid([_thumb(shown, "input"), *fills, _thumb(image, "ground truth")], COLUMNS)
    save_picture(sheet, path)
    return True
