"""Benchmark cases: a photo, a hole, and the labels the summary groups by.

Data layout (``$NPS_DATA``, default ``<repo>/../shared/data``): ``kodak/kodimNN.png``,
``masks/irregular/NNNNN.png`` (512², white = hole, ``int(stem) // 2000`` = hole-area category)
and ``scenes/val/*.jpg``. Subsets are drawn with a fixed seed per data set, so a suite always
runs the same cases.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from neural_patch_synth.errors import NPSError

CATEGORIES = ("1–10 %", "10–20 %", "20–30 %", "30–40 %", "40–50 %", "50–60 %")
"""Hole-area categories of the irregular masks (Liu et al. 2018), by ``int(stem) // 2000``."""
KODAK_SIDE = 512
"""Side of the Kodak centre crops (the issue's 512² photo with a 256² hole)."""
SCENE_SIDE = 128
"""Side of the scene photos after resizing (the content network's training size)."""
BORDERS = {"right": (0.0, 0.25), "left-right": (0.25, 0.25)}
"""Outpainting holes: fraction of the width cut away on the left and on the right."""


@dataclass(frozen=True)
class Case:
    """One (photo, hole) pair. ``mask_path`` None means a centre square of half the short side,
    unless ``border`` names an outpainting hole of :data:`BORDERS`."""

    dataset: str
    image_path: Path
    mask_path: Path | None = None
    category: str | None = None
    side: int | None = None
    """Resize shorter side to this and centre-crop a square (None: keep the photo as is)."""
    border: str | None = None

    @property
    def image_id(self) -> str:
        return self.image_path.stem

    @property
    def mask_id(self) -> str:
        return self.mask_path.stem if self.mask_path else self.border or "centre"

    @property
    def key(self) -> tuple[str, str, str]:
        return self.dataset, self.image_id, self.mask_id

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W, 3)`` uint8 photo and ``(H, W)`` bool hole mask."""
        img = Image.open(self.image_path).convert("RGB")
        if self.side:
            img = square_crop(img, self.side)
        image = np.asarray(img).copy()
        h, w = image.shape[:2]
        if self.border is not None:
            return image, border_hole(h, w, *BORDERS[self.border])
        if self.mask_path is None:
            return image, centre_hole(h, w)
        mask = Image.open(self.mask_path).convert("L").resize((w, h), Image.NEAREST)
        return image, np.asarray(mask) > 127


def square_crop(img: Image.Image, side: int) -> Image.Image:
    """Resize so the shorter side is ``side`` (Lanczos), then crop the centre square."""
    w, h = img.size
    scale = side / min(w, h)
    nw, nh = max(side, round(w * scale)), max(side, round(h * scale))
    img = img.resize((nw, nh), Image.LANCZOS)
    x0, y0 = (nw - side) // 2, (nh - side) // 2
    return img.crop((x0, y0, x0 + side, y0 + side))


def holed(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, 3)`` as a user gives it to a fill: uint8, hole pixels (``mask``
    ``(H, W)`` True) zeroed, so nothing of the truth reaches the method."""
    return np.where(mask[..., None], 0, image).astype(np.uint8)


def square_hole(height: int, width: int, side: int) -> np.ndarray:
    """``(height, width)`` bool mask with a centred ``side``² square hole."""
    y0, x0 = (height - side) // 2, (width - side) // 2
    mask = np.zeros((height, width), bool)
    mask[y0:y0 + side, x0:x0 + side] = True
    return mask


def centre_hole(height: int, width: int) -> np.ndarray:
    """Centre square hole of half the shorter side (256² on Kodak, 64² at 128²)."""
    return square_hole(height, width, min(height, width) // 2)


def border_hole(height: int, width: int, left: float, right: float) -> np.ndarray:
    """``(height, width)`` bool hole of the ``left`` and ``right`` fractions of the width: the
    photo cut to a centre band, to be extended back."""
    mask = np.zeros((height, width), bool)
    mask[:, :round(left * width)] = True
    mask[:, width - round(right * width):] = True
    return mask


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The benchmark data folder: ``explicit``, else ``$NPS_DATA``, else ``shared/data`` beside
    the source checkout or beside the current folder (``../shared/data``); an :class:`NPSError`
    naming where it looked if none holds ``kodak/``."""
    given = explicit or os.environ.get("NPS_DATA")
    candidates = [Path(given)] if given else [
        Path(__file__).resolve().parents[3] / "shared" / "data",
        Path.cwd().parent / "shared" / "data",
    ]
    for root in candidates:
        if (root / "kodak").is_dir():
            return root
    raise NPSError(f"benchmark data not found at {candidates[0]} (set NPS_DATA or --data to the "
                   "folder holding kodak/, masks/irregular/ and scenes/val/)")


def _files(folder: Path, pattern: str) -> list[Path]:
    files = sorted(folder.glob(pattern))
    if not files:
        raise NPSError(f"no {pattern} files in {folder}")
    return files


def seeded_rng(name: str) -> np.random.Generator:
    """A generator seeded by ``name``: the same draws on every machine and every run."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def subset(items: list[Path], count: int | None, name: str) -> list[Path]:
    """``count`` items (None: all) drawn with the seed ``name``, in sorted order.

    They are the first ``count`` of a fixed permutation, so a larger count keeps every item of
    a smaller one: the quick suite's cases are among the full suite's.
    """
    order = seeded_rng(name).permutation(len(items))[:count]
    return sorted(items[i] for i in order)


def kodak_centre(root: Path, count: int | None) -> list[Case]:
    """Kodak :data:`KODAK_SIDE`² centre crops with the 256² centre hole; ``count`` photos drawn
    at random (None: all 24)."""
    return [Case("kodak-centre", p, side=KODAK_SIDE)
            for p in subset(_files(root / "kodak", "*.png"), count, "kodak-centre")]


def kodak_irregular(root: Path, per_category: int,
                    categories: Sequence[int] = range(len(CATEGORIES))) -> list[Case]:
    """Full-size Kodak photos with irregular masks (resized to the photo), ``per_category``
    cases for each hole-area category index in ``categories`` (0 = 1–10 % … 5 = 50–60 %).

    Each case gets a different photo while there are photos left; masks are drawn per category.
    """
    kodak = _files(root / "kodak", "*.png")
    photos = [kodak[i] for i in seeded_rng("kodak-irregular").permutation(len(kodak))]
    masks = _files(root / "masks" / "irregular", "*.png")
    cases = []
    for cat in categories:
        label = CATEGORIES[cat]
        pool = [m for m in masks if int(m.stem) // 2000 == cat]
        if not pool:
            raise NPSError(f"no irregular masks of category {label} in {root / 'masks/irregular'}")
        for mask in subset(pool, per_category, f"irregular-{cat}"):
            photo = photos[len(cases) % len(photos)]
            cases.append(Case("kodak-irregular", photo, mask, label))
    return cases


def kodak_outpaint(root: Path, count: int | None) -> list[Case]:
    """Full-size Kodak photos with the right quarter cut away (every second one also the left
    quarter), to be extended back; ``count`` photos drawn at random (None: all 24)."""
    photos = subset(_files(root / "kodak", "*.png"), count, "kodak-outpaint")
    return [Case("kodak-outpaint", p, border=("right", "left-right")[i % 2])
            for i, p in enumerate(photos)]


def scenes(root: Path, count: int) -> list[Case]:
    """``count`` scene validation photos at 128² with the centre 64² hole."""
    return [Case("scenes-128", p, side=SCENE_SIDE)
            for p in subset(_files(root / "scenes" / "val", "*.jpg"), count, "scenes")]
