"""Dominant shifts: the offsets at which a photo repeats itself (He & Sun, ECCV 2012).

Every :data:`STRIDE`-th known patch (per axis) of the context window, reduced to
:data:`SIDE` pixels, is matched to its most similar known patch at least ``1/15`` of the window
away; the offsets of those matches are counted in a 2-D histogram, smoothed, and its highest
peaks are the shifts. Copying a whole region by one of them continues the photo's regular
structure (a horizon, rows of windows, brick courses) instead of assembling it from unrelated
pieces: :mod:`voting` lays out the coarsest level with these shifts, unless a free match is
much closer (:meth:`~neural_patch_synth.voting.Voter.search_layout`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .pyramid import downsample

SIDE = 128
"""Longer side (pixels) of the window the statistics are taken at."""
PATCH = 7
"""Side of the patches that are matched."""
STRIDE = 2
"""Every this many known patches (per axis) is matched to all the others: a quarter of the
matches makes the same peaks."""
MIN_SHIFT = 1 / 15
"""Shortest shift counted, as a fraction of the window's longer side (He & Sun's τ)."""
PEAK_SIGMA = 2 ** 0.5
"""Gaussian σ (pixels at :data:`SIDE`) that smooths the histogram before peaks are taken."""
CHUNK = 2048
"""Query patches matched in one block (bounds memory to ``CHUNK ×`` known patches floats)."""


def dominant_shifts(image: torch.Tensor, hole: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` most frequent offsets between similar known patches.

    ``image``: ``(1, 3, H, W)`` in ``[0, 1]``; ``hole``: ``(1, 1, H, W)`` 0/1. Returns
    ``(k, 2)`` float ``(dy, dx)`` in pixels of ``image``, most frequent first; ``k ≤ count``
    (fewer when the histogram has fewer peaks, none when under ``2 · STRIDE²`` known patches
    exist).
    """
    h, w = image.shape[-2:]
    scale = min(1.0, SIDE / max(h, w))
    sh, sw = max(PATCH, round(h * scale)), max(PATCH, round(w * scale))
    small, small_hole = downsample(image.float(), hole.float(), (sh, sw))
    pw = sw - PATCH + 1
    known = F.max_pool2d(small_hole, PATCH, 1)[0, 0].reshape(-1) < 0.5
    index = torch.nonzero(known)[:, 0]
    if len(index) < 2 * STRIDE * STRIDE:
        return torch.zeros(0, 2)
    vectors = F.unfold(small, PATCH)[0][:, index].T.cpu()  # (n, 3·P²)
    y, x = (index // pw).cpu(), (index % pw).cpu()
    query = torch.nonzero((y % STRIDE == 0) & (x % STRIDE == 0))[:, 0]
    norms = (vectors * vectors).sum(1)[None]
    position = torch.stack([y, x], 1).float()
    best = torch.empty(len(query), dtype=torch.long)
    for s in range(0, len(query), CHUNK):
        q = query[s:s + CHUNK]
        d = torch.addmm(norms, vectors[q], vectors.T, alpha=-2)  # SSD less |query|², per row
        near = torch.cdist(position[q], position) < MIN_SHIFT * max(sh, sw)
        best[s:s + CHUNK] = d.masked_fill_(near, float("inf")).argmin(1)
    dy, dx = (y[best] - y[query]).numpy(), (x[best] - x[query]).numpy()
    hist = np.zeros((2 * sh - 1, 2 * sw - 1))
    np.add.at(hist, (dy + sh - 1, dx + sw - 1), 1.0)
    hist = ndimage.gaussian_filter(hist, PEAK_SIGMA, mode="constant")
    peak = (hist == ndimage.maximum_filter(hist, 5, mode="constant")) & (hist > 0)
    py, px = np.nonzero(peak)
    order = np.argsort(-hist[py, px], kind="stable")[:count]
    shifts = np.stack([py[order] - (sh - 1), px[order] - (sw - 1)], 1) / scale
    return torch.from_numpy(shifts).float()


def level_shifts(shifts: torch.Tensor, full: tuple[int, int], size: tuple[int, int]
                 ) -> torch.Tensor:
    """``shifts`` ``(k, 2)`` in pixels of a ``full`` ``(H, W)`` window, rounded to a level
    of ``size`` ``(h, w)`` → ``(m, 2)`` long, without duplicates or the zero shift, in order."""
    scale = torch.tensor([size[0] / full[0], size[1] / full[1]])
    rounded = (shifts * scale).round().long()
    out: list[tuple[int, int]] = []
    for dy, dx in rounded.tolist():
        if (dy, dx) != (0, 0) and (dy, dx) not in out:
            out.append((dy, dx))
    return torch.tensor(out, dtype=torch.long).reshape(-1, 2)
