"""Hole geometry: bounding boxes, groups of holes, context windows; random training holes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from .errors import NPSError


@dataclass(frozen=True)
class Box:
    """Half-open pixel box ``[y0, y1) × [x0, x1)``."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    def intersects(self, other: Box) -> bool:
        return (self.y0 < other.y1 and other.y0 < self.y1
                and self.x0 < other.x1 and other.x0 < self.x1)

    def union(self, other: Box) -> Box:
        return Box(min(self.y0, other.y0), max(self.y1, other.y1),
                   min(self.x0, other.x0), max(self.x1, other.x1))

    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)


def bounding_box(mask: np.ndarray) -> Box:
    """Tight box around the non-zero pixels of an ``(H, W)`` mask (which must have some)."""
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return Box(int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1)


def context_windows(boxes: np.ndarray, shape: tuple[int, int], context: float,
                    min_side: int = 0) -> np.ndarray:
    """:func:`context_window` of many boxes at once: ``(n, 4)`` int arrays ``[y0, y1, x0, x1]``."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    y0, y1, x0, x1 = boxes.T
    side = np.maximum(min_side, np.round(context * np.maximum(y1 - y0, x1 - x0)).astype(np.int64))

    def span(lo: np.ndarray, hi: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
        size = np.minimum(np.maximum(side, hi - lo), limit)
        start = np.clip((lo + hi - size) // 2, 0, limit - size)
        return start, start + size

    height, width = shape
    return np.stack([*span(y0, y1, height), *span(x0, x1, width)], axis=1)


def context_window(box: Box, shape: tuple[int, int], context: float, min_side: int = 0) -> Box:
    """Square window of side ``context × max(box side)`` (at least ``min_side``) centred on
    ``box``.

    Shifted to stay inside an image of ``shape = (H, W)``, and clipped where the image is
    smaller than the window.
    """
    window = context_windows(np.array([[box.y0, box.y1, box.x0, box.x1]]), shape, context,
                             min_side)[0]
    return Box(*(int(v) for v in window))


@dataclass(frozen=True)
class HoleGroup:
    """Holes filled together: ``window`` is their context, ``mask`` their pixels in it."""

    window: Box
    mask: np.ndarray  # (h, w) bool, True = hole, over ``window``


def _grid_cells(rects: np.ndarray, cell: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """``(rect index, cell id)`` for every ``cell``-pixel grid cell each rect touches."""
    cy0, cx0 = rects[:, 0] // cell, rects[:, 2] // cell
    rows, cols = (rects[:, 1] - 1) // cell + 1 - cy0, (rects[:, 3] - 1) // cell + 1 - cx0
    count = rows * cols
    owner = np.repeat(np.arange(len(rects)), count)
    k = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    cols = np.repeat(cols, count)
    return owner, (cy0[owner] + k // cols) * columns + cx0[owner] + k % cols


def _overlaps(windows: np.ndarray, boxes: np.ndarray,
              chunk: int = 1 << 18) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(i, j)``, ``i != j``, where ``windows[i]`` intersects ``boxes[j]``, in batches.

    Candidates come from a grid of about one window per cell, so the cost grows with the
    number of true neighbours rather than with the square of the number of boxes; at most
    about ``chunk`` candidates are held at a time.
    """
    cell = max(1, int(np.median(np.maximum(windows[:, 1] - windows[:, 0],
                                           windows[:, 3] - windows[:, 2]))))
    columns = int(max(windows[:, 3].max(), boxes[:, 3].max())) // cell + 1
    w_owner, w_cell = _grid_cells(windows, cell, columns)
    b_owner, b_cell = _grid_cells(boxes, cell, columns)
    order = np.argsort(b_cell, kind="stable")
    b_owner, b_cell = b_owner[order], b_cell[order]
    lo, hi = np.searchsorted(b_cell, w_cell, "left"), np.searchsorted(b_cell, w_cell, "right")
    ends = np.cumsum(hi - lo)
    start = 0
    while start < len(ends):
        done = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, done + chunk, "right")))
        count = (hi - lo)[start:stop]
        i = np.repeat(w_owner[start:stop], count)
        j = b_owner[np.repeat(lo[start:stop], count) + np.arange(count.sum())
                    - np.repeat(np.cumsum(count) - count, count)]
        win, box = windows[i], boxes[j]
        hit = ((i != j) & (win[:, 0] < box[:, 1]) & (box[:, 0] < win[:, 1])
               & (win[:, 2] < box[:, 3]) & (box[:, 2] < win[:, 3]))
        yield i[hit], j[hit]
        start = stop


def _merge(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray | None:
    """For each box, the smallest index of the boxes it joins through window/box overlaps
    (found batch by batch, so memory stays bounded); None when no window overlaps another
    box."""
    count = len(boxes)
    first = np.arange(count)
    merged = False
    for i, j in _overlaps(windows, boxes):
        if len(i) == 0:
            continue
        merged = True
        rows, cols = np.concatenate([np.arange(count), i]), np.concatenate([first, j])
        graph = sparse.coo_matrix((np.ones(len(rows), bool), (rows, cols)), shape=(count, count))
        component = csgraph.connected_components(graph, directed=False)[1]
        smallest = np.full(component.max() + 1, count)
        np.minimum.at(smallest, component, np.arange(count))
        first = smallest[component]
    return first if merged else None


def hole_groups(mask: np.ndarray, context: float, min_side: int = 0) -> list[HoleGroup]:
    """Split an ``(H, W)`` bool hole mask into groups processed independently.

    Each connected hole gets a context window (:func:`context_window`); groups whose window
    overlaps another group's bounding box are merged (all such pairs at once, then again with
    the merged boxes' larger windows) until no window holds another group's holes. Far-apart
    holes thus cost only their own neighbourhood. Groups come in the raster order of their
    first pixel; the cost is about linear in the number of holes (20,000 specks: about a
    second).
    """
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
    if count == 0:
        return []
    boxes = np.array([[s[0].start, s[0].stop, s[1].start, s[1].stop]
                      for s in ndimage.find_objects(labels)], dtype=np.int64)
    group_of = np.arange(count)  # label - 1 -> group, groups numbered by their first label
    while True:
        windows = context_windows(boxes, mask.shape, context, min_side)
        first = _merge(windows, boxes)
        if first is None:
            break
        representatives, component = np.unique(first, return_inverse=True)
        group_of = component[group_of]
        grown = np.empty((len(representatives), 4), np.int64)
        for k, reduce in enumerate((np.minimum, np.maximum, np.minimum, np.maximum)):
            grown[:, k] = boxes[:, k].max() if reduce is np.minimum else boxes[:, k].min()
            reduce.at(grown[:, k], component, boxes[:, k])
        boxes = grown
    lookup = np.concatenate([[-1], group_of])  # label -> group; 0 (not a hole) -> -1
    groups = []
    for g, window in enumerate(windows):
        window = Box(*(int(v) for v in window))
        groups.append(HoleGroup(window, lookup[labels[window.slices()]] == g))
    return groups


# --- random training holes ------------------------------------------------------------------


def centre_square_mask(size: int = 128, hole: int = 64) -> np.ndarray:
    """``(size, size)`` bool mask, True on the centred ``hole × hole`` square."""
    mask = np.zeros((size, size), bool)
    start = (size - hole) // 2
    mask[start:start + hole, start:start + hole] = True
    return mask


def random_block_mask(rng: np.random.Generator, size: int = 128,
                      max_blocks: int = 3) -> np.ndarray:
    """``(size, size)`` bool mask: 1…``max_blocks`` axis-aligned rectangles anywhere.

    Each side is uniform in ``[size / 8, size / 2]``.
    """
    mask = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(1, max_blocks + 1))):
        h, w = rng.integers(size // 8, size // 2 + 1, size=2)
        y, x = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        mask[y:y + h, x:x + w] = True
    return mask


# --- irregular masks by hole-area category (partial-convolution paper) ----------------------

MASK_CATEGORIES = ((0.01, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
"""Hole-area ranges (fractions of the image) of categories 0…5, as in Liu et al. 2018."""


def _start_point(rng: np.random.Generator, canvas: Image.Image, size: int,
                 border: bool) -> tuple[float, float]:
    """``(x, y)`` of a stroke's first vertex: on the image edge when ``border``, else a pixel
    not yet in the hole (so every stroke adds at least one pixel)."""
    if border:
        side, t = int(rng.integers(4)), float(rng.uniform(0, size - 1))
        return ((0.0, t), (size - 1.0, t), (t, 0.0), (t, size - 1.0))[side]
    for _ in range(8):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        if canvas.getpixel((x, y)) == 0:
            return float(x), float(y)
    free = np.flatnonzero(np.asarray(canvas) == 0)
    y, x = divmod(int(free[rng.integers(len(free))]), size)
    return float(x), float(y)


def _stroke(draw: ImageDraw.ImageDraw, rng: np.random.Generator, start: tuple[float, float],
            size: int, scale: float) -> None:
    """One free-form brush stroke (DeepFill v2 style): a random walk of 4…12 thick segments
    with round joints and ends; ``scale`` shrinks its width and segment lengths."""
    width = max(1, round(scale * rng.uniform(size / 40, size / 10)))
    vertices = int(rng.integers(4, 13))
    angles = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.uniform(-np.pi / 3, np.pi / 3,
                                                               vertices - 1))
    lengths = scale * rng.uniform(size / 32, size / 6, vertices - 1)
    points = np.cumsum(np.vstack([start, np.c_[np.cos(angles), np.sin(angles)]
                                  * lengths[:, None]]), axis=0)
    points = np.clip(points, 0, size - 1)
    draw.line([tuple(p) for p in points], fill=255, width=width)
    r = width / 2
    for x, y in points:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)


def check_mask_request(size: int, category: int) -> None:
    """NPSError unless :func:`random_mask` can draw a ``size`` × ``size`` mask of ``category``."""
    if not 0 <= category < len(MASK_CATEGORIES):
        raise NPSError(f"mask category must be 0…{len(MASK_CATEGORIES) - 1}, got {category}")
    if size < 16:
        raise NPSError(f"mask size must be at least 16 pixels, got {size}")


def random_mask(size: int, category: int, rng: np.random.Generator, *,
                border: bool = False) -> np.ndarray:
    """Irregular ``(size, size)`` bool hole mask (True = hole) of hole-area ``category``.

    ``category`` 0…5 puts the hole fraction in ``MASK_CATEGORIES[category]`` (1–10 %, 10–20 %,
    …, 50–60 %, bounds included); ``size`` ≥ 16. The hole is free-form brush strokes (random
    walks of thick segments with round joints) added while the area is below a target drawn
    uniformly in the range. A stroke that overshoots the range is redrawn at half the width
    and length, and after a few tries a square dot of side ``size / 4`` (at most 6.25 % of the
    image, less than any range's width) is tried instead; when even that overshoots, the area
    is already in the range and drawing stops, so it always ends. ``border``: the first stroke
    starts on the image edge (outpainting-style holes). The same ``rng`` state gives the same
    mask; at most about 10 ms at 512².
    """
    check_mask_request(size, category)
    total = size * size
    lo, hi = MASK_CATEGORIES[category]
    low, high = int(np.ceil(lo * total - 1e-9)), int(np.floor(hi * total + 1e-9))
    target = max(low, min(high, int(np.ceil(rng.uniform(lo, hi) * total))))
    canvas = Image.new("L", (size, size), 0)
    holes = 0
    while holes < target:
        start = _start_point(rng, canvas, size, border and holes == 0)
        for attempt in range(5):
            trial = canvas.copy()
            draw = ImageDraw.Draw(trial)
            if attempt < 4:
                _stroke(draw, rng, start, size, 0.5 ** attempt)
            else:
                r = max(1, size // 4) / 2
                x, y = start
                draw.rectangle((x - r, y - r, x + r - 1, y + r - 1), fill=255)
            count = total - trial.histogram()[0]
            if count <= high:
                canvas, holes = trial, count
                break
        else:  # nothing fits: only possible above ``low``, as the dot fits below it
            break
    return np.asarray(canvas) > 0


# --- the training mix -----------------------------------------------------------------------


def edge_band_mask(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """``(size, size)`` bool mask of bands along one or two random image edges (the holes of
    outpainting), each ``size / 8``…``size / 2`` deep."""
    mask = np.zeros((size, size), bool)
    for side in rng.choice(4, int(rng.integers(1, 3)), replace=False):
        depth = int(rng.integers(size // 8, size // 2 + 1))
        band = (slice(None, depth), slice(size - depth, None))[side % 2]
        mask[(band, slice(None)) if side < 2 else (slice(None), band)] = True
    return mask


TRAINING_HOLES = {"centre": 0.3, "blocks": 0.15, "irregular": 0.35, "border": 0.2}
"""Mix of :func:`random_training_mask`: hole kind → probability."""


def random_training_mask(rng: np.random.Generator, size: int = 128) -> np.ndarray:
    """One ``(size, size)`` bool training hole, of a kind drawn from :data:`TRAINING_HOLES`:
    the centre square of side ``size / 2``; random blocks; an irregular mask of a uniformly
    drawn area category; or a hole touching the border (an edge band, or an irregular mask
    whose first stroke starts on the edge, half each)."""
    kinds = list(TRAINING_HOLES)
    kind = kinds[rng.choice(len(kinds), p=list(TRAINING_HOLES.values()))]
    if kind == "centre":
        return centre_square_mask(size, size // 2)
    if kind == "blocks":
        return random_block_mask(rng, size)
    category = int(rng.integers(len(MASK_CATEGORIES)))
    if kind == "border" and rng.random() < 0.5:
        return edge_band_mask(rng, size)
    return random_mask(size, category, rng, border=kind == "border")
