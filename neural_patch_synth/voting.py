"""Patch voting: copy real pixels into the hole, guided by the current estimate.

Expectation-maximisation over patches (Wexler et al. 2007; Newson et al. 2014): every patch
that overlaps the hole is matched to its nearest *known* patch (a randomised, PatchMatch-style
search: propagation from neighbours plus random search), then every hole pixel becomes the
weighted mean of the pixels the overlapping matches put there (:meth:`Voter.vote`), or, for the
final result, the pixel of the single best-matching patch that covers it
(:meth:`Voter.best_patch`), so nothing is averaged into blur. Colours and texture thus come from
the photo itself; the estimate the search starts from, and a blurred *layout guide* made from
the content prior's fill, decide *where* they come from.

Images are ``(C, H, W)`` float tensors. Positions are flat indices ``y * W + x``. The distance
between two patches is the weighted sum of squared differences over ``size × size`` pixels and
all channels; channels past ``voted`` (e.g. a structure guide) enter the distance but are not
rewritten by voting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy import ndimage
from tqdm.auto import tqdm

from .config import InpaintConfig
from .poisson import reconstruct
from .prior.smooth import smooth_fill
from .pyramid import downsample, level_count, level_sizes, resize
from .shifts import dominant_shifts, level_shifts

CHUNK = {"cpu": 32768, "cuda": 262144}
"""Target patches handled in one block, per device type (bounds memory to
``CHUNK × C × size²`` floats): small blocks stay in a CPU's caches; on a GPU few large blocks
mean few kernel launches."""
FIXED_POINT = 2.0 ** 40
"""Votes on CUDA are summed as integers in units of ``1 / FIXED_POINT``: float atomics add in
a different order on every run, integers do not, so seeded runs stay identical there."""
PCA_SAMPLE = 20000
"""Source patches sampled to find the descriptor basis."""
MIN_SOURCES = 16
"""A level with fewer known patches than this is not voted (its estimate is carried up)."""
FEATURE_RADIUS = 2
"""Texture features are averaged over ``2 · FEATURE_RADIUS + 1`` pixels."""
SEAM_SCREEN = 0.05
"""Screening weight of the seam-hiding gradient-domain pass (small: colours stay put)."""
SEAM_KEEP_STEP = 0.12
"""A step between two copied pieces that differs from the texture beside the sources by more
than this (in some channel, colours in ``[0, 1]``) is an object's edge, kept as it is; smaller
steps are tone steps, spread out by the seam pass. Spreading the big ones made colour glows
and haze around pasted objects (measured on 14 Kodak cases: sharpness 0.716 → 0.747 on centre
holes, 0.732 → 0.781 on irregular ones, lower patch SWD, the same seam error at the hole's
border; thresholds 0.08 to 0.25 tried)."""
GUIDE_SIDE = 128
"""Longer side (pixels) at which the layout guide is computed (the content prior's own)."""
SHIFT_MARGIN = 0.5
"""At the coarsest level a free match replaces the best dominant shift's only where its
distance is under this fraction of the shift's (:meth:`Voter.search_layout`). On the Kodak
sets, shifts alone (0) continued horizons and rows of windows but also cut unique structures
(a mast, a window's frame) into shifted copies; 0.5 kept the horizons and the mast
(``benchmarks/results/LOG.md``)."""
PERCENTILE = 0.75
"""Voting weights are ``exp(-d / 2σ²)`` with ``σ²`` this quantile of the match distances."""
LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 weights of the brightness whose fine detail :func:`sharpen` amplifies."""
DETAIL_SIGMA = 1.0
"""Gaussian σ (pixels) that separates the fine detail :func:`sharpen` amplifies."""
DETAIL_FADE = 3.0
""":func:`sharpen`'s gain rises from 0 to full over this many pixels into the hole, so the
steps at the hole's border stay as the seam pass left them."""


def patch_offsets(size: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Flat offsets ``(size², )`` of a ``size × size`` patch's pixels from its centre."""
    r = torch.arange(size, device=device) - size // 2
    return (r[:, None] * width + r[None, :]).reshape(-1)


def gather(image: torch.Tensor, centres: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Patches of ``image`` ``(C, H·W)`` at flat ``centres`` ``(N,)`` → ``(N, C, P)``."""
    return image[:, centres[:, None] + offsets[None, :]].permute(1, 0, 2)


def texture_features(gray: torch.Tensor, radius: int) -> torch.Tensor:
    """Newson et al.'s texture features of ``gray`` ``(H, W)``: absolute horizontal and vertical
    differences, box-averaged over ``2·radius + 1`` pixels → ``(2, H, W)``."""
    g = F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    dx = (g[1:-1, 2:] - g[1:-1, :-2]).abs() / 2
    dy = (g[2:, 1:-1] - g[:-2, 1:-1]).abs() / 2
    feats = torch.stack([dx, dy])[None]
    k = 2 * radius + 1
    return F.avg_pool2d(F.pad(feats, (radius,) * 4, mode="replicate"), k, 1)[0]


@dataclass
class Match:
    """Nearest-neighbour field of a level: source centre and distances per target patch."""

    source: torch.Tensor    # (N,) long flat centres of known patches
    score: torch.Tensor     # (N,) descriptor distance the search minimised
    distance: torch.Tensor  # (N,) exact weighted SSD


class Voter:
    """Geometry of one pyramid level: target patches, valid source patches, and the search.

    ``hole``: ``(H, W)`` bool (True = hole); ``size``: odd patch side. Targets are the patch
    centres (at least ``size // 2`` from the border) whose patch overlaps the hole; sources are
    those whose patch lies wholly in the known region.
    """

    def __init__(self, hole: torch.Tensor, size: int, weights: torch.Tensor,
                 voted: int, generator: torch.Generator, dims: int = 24,
                 locality: float = 0.0, jump: int = 1, guide: torch.Tensor | None = None,
                 guide_weight: torch.Tensor | None = None) -> None:
        self.height, self.width = hole.shape
        self.size, self.r = size, size // 2
        self.device = hole.device
        self.chunk = CHUNK.get(self.device.type, CHUNK["cpu"])
        self.weights = weights.to(self.device).float()  # (C,) per-channel distance weights
        self.voted = voted
        self.generator = generator
        self.offsets = patch_offsets(size, self.width, self.device)
        inner = torch.zeros_like(hole)
        inner[self.r:self.height - self.r, self.r:self.width - self.r] = True
        h = hole[None, None].float()
        touches = F.max_pool2d(h, size, 1, self.r)[0, 0] > 0.5
        self.valid = (~touches & inner).reshape(-1)
        # one False past the end: a candidate -1 ("none") reads it
        self.valid_or_none = torch.cat([self.valid, self.valid.new_zeros(1)])
        self.sources = torch.nonzero(self.valid)[:, 0]
        self.targets = torch.nonzero((touches & inner).reshape(-1))[:, 0]
        self.ty, self.tx = self.targets // self.width, self.targets % self.width
        self.slot = torch.full((self.height * self.width,), -1, dtype=torch.long,
                               device=self.device)
        self.slot[self.targets] = torch.arange(len(self.targets), device=self.device)
        self.hole = hole.reshape(-1)
        self.dims = dims
        self.jump = jump
        self.locality = locality / float(max(self.height, self.width)) ** 2
        self.guide, self.guide_weight = guide, guide_weight
        if guide is not None and guide_weight is not None:  # their values at the targets
            self.guide_t, self.guide_weight_t = guide[:, self.targets], guide_weight[self.targets]
        self.basis: torch.Tensor | None = None
        self.mean = torch.zeros(0, device=self.device)

    # --- distances ----------------------------------------------------------------------

    def exact(self, image: torch.Tensor, targets: torch.Tensor,
              sources: torch.Tensor) -> torch.Tensor:
        """Weighted SSD between the patches of ``image`` ``(C, H·W)`` at ``targets`` and at
        valid ``sources`` (both ``(n,)`` flat) → ``(n,)``."""
        a = gather(image, targets, self.offsets)
        b = gather(image, sources, self.offsets)
        return ((a - b) ** 2).sum(dim=2) @ self.weights

    def describe(self, image: torch.Tensor) -> torch.Tensor:
        """Short descriptors of every patch of ``image`` ``(C, H, W)`` → ``(H·W, K)``.

        The weighted patch vectors projected on their top ``K`` principal directions (found
        on the source patches), so that squared descriptor distances approximate the weighted
        SSD at a fraction of its cost. Rows of positions too close to the border are zero.
        """
        c = image.shape[0]
        scaled = image * self.weights.sqrt()[:, None, None]
        flat = scaled.reshape(c, -1)
        if self.basis is None:
            pick = self.sources
            if len(pick) > PCA_SAMPLE:
                pick = pick[torch.randperm(len(pick), generator=self.generator,
                                           device=self.device)[:PCA_SAMPLE]]
            sample = gather(flat, pick, self.offsets).reshape(len(pick), -1)
            self.mean = sample.mean(dim=0)
            cov = (sample - self.mean).T @ (sample - self.mean) / max(1, len(pick) - 1)
            _, vecs = torch.linalg.eigh(cov.double())
            k = min(self.dims, vecs.shape[1])
            self.basis = vecs[:, -k:].flip(1).float()  # (C·P, K), largest first
        k = self.basis.shape[1]
        kernel = self.basis.T.reshape(k, c, self.size, self.size)
        bias = -(self.mean @ self.basis)
        out = F.conv2d(scaled[None], kernel, bias, padding=self.r)[0]  # (K, H, W)
        return out.reshape(k, -1).T.contiguous()

    def penalty(self, sources: torch.Tensor, block: slice | torch.Tensor = slice(None)
                ) -> torch.Tensor:
        """What is added to the patch distance of copying from ``sources`` ``(n,)`` flat to
        the targets in ``block`` (a slice or ``(n,)`` target indices) → ``(n,)``:
        ``locality · (distance / side)²``, so nearby content is preferred, plus
        ``guide_weight[target] · |guide[target] − guide[source]|²``, so copies keep the layout
        guide's colour where it is trusted."""
        if self.locality:
            w = self.width
            dy, dx = self.ty[block] - sources // w, self.tx[block] - sources % w
            cost = self.locality * (dy * dy + dx * dx).float()
        else:
            cost = torch.zeros(len(sources), device=self.device)
        if self.guide is not None and self.guide_weight is not None:
            diff = self.guide_t[:, block] - self.guide[:, sources]
            cost = cost + self.guide_weight_t[block] * diff.pow(2).sum(dim=0)
        return cost

    def propagated(self, match: Match, block: slice, dy: int, dx: int) -> torch.Tensor:
        """Candidates for the targets in ``block``: the source of the target ``(dy, dx)``
        before each, shifted by ``(dy, dx)`` (``-1`` where there is none)."""
        w = self.width
        y, x = self.ty[block] - dy, self.tx[block] - dx
        inside = (y >= 0) & (y < self.height) & (x >= 0) & (x < w)
        neighbour = self.slot[torch.where(inside, y * w + x, 0)]
        src = match.source[neighbour.clamp_min(0)]
        sy, sx = src // w + dy, src % w + dx
        ok = inside & (neighbour >= 0) & (sy >= 0) & (sy < self.height) & (sx >= 0) & (sx < w)
        return torch.where(ok, sy * w + sx, -1)

    def _improve(self, desc: torch.Tensor, desc_t: torch.Tensor, match: Match, block: slice,
                 candidates: torch.Tensor) -> None:
        """Keep each candidate source ``(n,)`` of the targets in ``block`` whose descriptor is
        closer; invalid candidates (``-1``, off the source set) are ignored. ``desc_t``: the
        descriptors of all targets. (Few kernels per call: on a GPU their launches, not their
        arithmetic, bound the search.)"""
        ok = self.valid_or_none[candidates]
        source, score = match.source[block], match.score[block]
        safe = torch.where(ok, candidates, source)
        d = (desc_t[block] - desc[safe]).pow(2).sum(dim=1) + self.penalty(safe, block)
        better = ok & (d < score)
        torch.where(better, candidates, source, out=source)
        torch.where(better, d, score, out=score)

    # --- search -------------------------------------------------------------------------

    def random_sources(self, n: int) -> torch.Tensor:
        """``n`` valid source centres drawn uniformly."""
        pick = torch.randint(len(self.sources), (n,), generator=self.generator,
                             device=self.device)
        return self.sources[pick]

    def blocks(self) -> list[slice]:
        return [slice(s, s + self.chunk) for s in range(0, len(self.targets), self.chunk)]

    def search(self, image: torch.Tensor, iterations: int,
               start: torch.Tensor | None = None) -> Match:
        """PatchMatch for the patches of ``image`` ``(C, H, W)``: returns the field and the
        exact distances.

        ``start``: ``(N,)`` source guesses (e.g. carried from a coarser level; ``-1`` or
        invalid entries are drawn at random). Each iteration tries, for every target, its four
        neighbours' sources shifted back (propagation, all targets at once) and random sources
        around its own at radii halving from the image size to one pixel, plus one anywhere.
        """
        desc = self.describe(image)
        n = len(self.targets)
        source = self.random_sources(n)
        if start is not None:
            source = torch.where(self.valid_or_none[start], start, source)
        desc_t = desc[self.targets]
        score = (desc_t - desc[source]).pow(2).sum(dim=1)
        score = score + self.penalty(source)
        match = Match(source, score, score)
        w = self.width
        radii = [max(self.height, w) >> k for k in range(max(self.height, w).bit_length())]
        steps = [s for s in (16, 8, 4, 2) if s < self.jump] + [1]
        for _ in range(iterations):
            for step in steps:
                for dy, dx in ((0, step), (0, -step), (step, 0), (-step, 0)):
                    for b in self.blocks():
                        self._improve(desc, desc_t, match, b,
                                      self.propagated(match, b, dy, dx))
            for b in self.blocks():
                self._improve(desc, desc_t, match, b,
                              self.random_sources(len(self.targets[b])))
                for rad in radii:
                    s = match.source[b]
                    jump = torch.randint(-rad, rad + 1, (2, len(s)), generator=self.generator,
                                         device=self.device)
                    y = s // w + jump[0]
                    x = s % w + jump[1]
                    inside = (y >= 0) & (y < self.height) & (x >= 0) & (x < w)
                    self._improve(desc, desc_t, match, b, torch.where(inside, y * w + x, -1))
        return self.measured(image, match)

    def search_shifts(self, image: torch.Tensor, shifts: torch.Tensor,
                      iterations: int) -> Match:
        """Every target's best source among ``target + shift`` for ``shifts`` ``(k, 2)`` long
        ``(dy, dx)`` (all of them tried: He & Sun's labels, :mod:`~neural_patch_synth.shifts`),
        so whole regions are copied by the photo's own repeat offsets. Targets none of whose
        shifts lands on a source take :meth:`search`'s match (``iterations``)."""
        desc = self.describe(image)
        desc_t = desc[self.targets]
        n = len(self.targets)
        none = torch.full((n,), math.inf, device=self.device)
        match = Match(torch.full((n,), -1, dtype=torch.long, device=self.device), none,
                      none.clone())
        shifts = shifts.to(self.device)
        every = torch.arange(n, device=self.device)
        group = max(1, self.chunk // max(1, n))  # shifts tried at once: memory ≤ a block's
        for k in range(0, len(shifts), group):
            dy, dx = shifts[k:k + group, :1], shifts[k:k + group, 1:]
            sy, sx = self.ty[None] + dy, self.tx[None] + dx  # (g, n)
            inside = (sy >= 0) & (sy < self.height) & (sx >= 0) & (sx < self.width)
            candidates = torch.where(inside, sy * self.width + sx, -1)
            ok = self.valid_or_none[candidates]
            safe = torch.where(ok, candidates, 0)
            d = (desc_t[None] - desc[safe]).pow(2).sum(dim=2)
            d = d + self.penalty(safe.reshape(-1), every.repeat(len(dy))).reshape(d.shape)
            d = torch.where(ok, d, math.inf)
            score, pick = d.min(dim=0)
            better = score < match.score
            match.source = torch.where(better, candidates.gather(0, pick[None])[0],
                                       match.source)
            match.score = torch.where(better, score, match.score)
        lost = match.source < 0
        if lost.any():
            match.source[lost] = self.search(image, iterations).source[lost]
        return self.measured(image, match)

    def search_layout(self, image: torch.Tensor, shifts: torch.Tensor, iterations: int,
                      start: torch.Tensor | None = None) -> Match:
        """:meth:`search_shifts`, except where :meth:`search` (from ``start``) finds a match
        at least ``1 / SHIFT_MARGIN`` times closer: a structure that no shift repeats (a
        mast, a roof's end) is still continued."""
        shifted = self.search_shifts(image, shifts, iterations)
        free = self.search(image, iterations, start)
        use = free.score < SHIFT_MARGIN * shifted.score
        return Match(torch.where(use, free.source, shifted.source),
                     torch.where(use, free.score, shifted.score),
                     torch.where(use, free.distance, shifted.distance))

    def measured(self, image: torch.Tensor, match: Match) -> Match:
        """``match`` with its exact distances (plus :meth:`penalty`) on ``image``."""
        flat = image.reshape(image.shape[0], -1)
        exact = [self.exact(flat, self.targets[b], match.source[b]) for b in self.blocks()]
        match.distance = torch.cat(exact) + self.penalty(match.source)
        return match

    # --- reconstruction -----------------------------------------------------------------

    def vote(self, image: torch.Tensor, match: Match) -> torch.Tensor:
        """Weighted mean of the matched patches' pixels at every hole pixel.

        ``image`` ``(C, H, W)``; returns a copy whose first ``voted`` channels are rewritten
        in the hole. Weights ``exp(-d / 2σ²)``, ``σ²`` the :data:`PERCENTILE` of the distances.
        """
        flat = image.reshape(image.shape[0], -1)
        c = self.voted
        finite = match.distance[torch.isfinite(match.distance)]
        sigma2 = torch.quantile(finite, PERCENTILE).clamp_min(1e-12) if len(finite) else 1.0
        both = torch.zeros(c + 1, flat.shape[1], device=flat.device, dtype=flat.dtype)
        exact = flat.is_cuda
        if exact:
            both = both.long()
        for b in self.blocks():
            weight = torch.exp(-match.distance[b] / (2 * sigma2))  # (n,)
            dest = (self.targets[b][:, None] + self.offsets[None, :]).reshape(-1)
            src = (match.source[b][:, None] + self.offsets[None, :]).reshape(-1)
            w = weight[:, None].expand(-1, len(self.offsets)).reshape(-1)
            votes = torch.cat([flat[:c, src] * w, w[None]])  # (c + 1, n · size²)
            if exact:
                votes = (votes * FIXED_POINT).round().long()
            both.index_add_(1, dest, votes)
        num, den = both[:c], both[c]
        out = flat.clone()
        fill = self.hole & (den > 0)
        out[:c, fill] = (num[:, fill].double() / den[fill].double()).to(flat.dtype)
        return out.reshape(image.shape)

    def best_patch(self, image: torch.Tensor, match: Match
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every hole pixel from the single closest match that covers it (no averaging).

        Returns a copy of ``image`` ``(C, H, W)`` with the first ``voted`` channels rewritten
        in the hole, and the flat source pixel of every pixel ``(H·W,)`` (``-1`` outside the
        hole). Ties go to the later target in raster order.
        """
        flat = image.reshape(image.shape[0], -1)
        p = len(self.offsets)
        dest = (self.targets[:, None] + self.offsets[None, :]).reshape(-1)
        dist = match.distance[:, None].expand(-1, p).reshape(-1)
        best = torch.full((flat.shape[1],), math.inf, device=flat.device, dtype=dist.dtype)
        best.scatter_reduce_(0, dest, dist, reduce="amin")
        winner = torch.full((flat.shape[1],), -1, dtype=torch.long, device=flat.device)
        pair = torch.arange(len(dest), device=flat.device)
        winner.scatter_reduce_(0, dest, torch.where(dist <= best[dest], pair, -1), reduce="amax")
        fill = self.hole & (winner >= 0)
        pairs = winner[fill]
        source = torch.full_like(winner, -1)
        source[fill] = match.source[pairs // p] + self.offsets[pairs % p]
        out = flat.clone()
        out[:self.voted, fill] = flat[:self.voted, source[fill]]
        return out.reshape(image.shape), source


def source_gradients(image: torch.Tensor, source: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Target differences for :func:`~neural_patch_synth.poisson.reconstruct` taken from the
    copied pixels' own neighbourhoods.

    ``image``: ``(C, H, W)``; ``source``: ``(H·W,)`` flat source pixel per pixel, ``-1`` where
    the pixel was not copied. The edge from a copied pixel ``p`` to ``p + e`` asks for the
    difference beside ``p``'s source, ``I(src(p) + e) - I(src(p))`` (an edge whose first pixel
    was not copied, the one beside its second pixel's source), so a seam between two copied
    pieces asks for the texture inside a piece, not the jump between them, unless the jump is
    an object's edge (:data:`SEAM_KEEP_STEP`): then, as on edges with no copied end, the image's
    own difference is kept. Returns ``(C, H, W-1)`` and ``(C, H-1, W)``.
    """
    c, h, w = image.shape
    flat = image.reshape(c, -1)
    src = source.reshape(h, w)

    def beside(s: torch.Tensor, oy: int, ox: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``I(s + o) - I(s)`` per pixel of ``s`` and whether it exists."""
        sy, sx = s.clamp_min(0) // w, s.clamp_min(0) % w
        ny, nx = sy + oy, sx + ox
        ok = (s >= 0) & (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        there = flat[:, (ny.clamp(0, h - 1) * w + nx.clamp(0, w - 1)).reshape(-1)]
        return (there - flat[:, s.clamp_min(0).reshape(-1)]).reshape(c, *s.shape), ok

    def along(dy: int, dx: int) -> torch.Tensor:
        own = image[:, dy:, dx:] - image[:, : h - dy, : w - dx]
        first, ok_first = beside(src[: h - dy, : w - dx], dy, dx)
        second, ok_second = beside(src[dy:, dx:], -dy, -dx)
        asked = torch.where(ok_first, first, torch.where(ok_second, -second, own))
        both = (src[: h - dy, : w - dx] >= 0) & (src[dy:, dx:] >= 0)
        edge = both & ((asked - own).abs().amax(0) > SEAM_KEEP_STEP)
        return torch.where(edge, own, asked)

    return along(0, 1), along(1, 0)


def upsample_sources(source: torch.Tensor, targets: torch.Tensor, coarse: tuple[int, int],
                     fine_targets: torch.Tensor, fine: tuple[int, int]) -> torch.Tensor:
    """Carry a coarse field to the next finer level (×2): each fine target takes the source of
    the coarse target under it, scaled ×2 plus its own offset in the 2×2 cell.

    ``source``/``targets``: ``(N,)`` flat at ``coarse`` ``(h, w)``; ``fine_targets``: ``(M,)``
    flat at ``fine`` ``(H, W)``. Fine targets with no coarse target under them get ``-1``.
    """
    ch, cw = coarse
    fh, fw = fine
    slot = torch.full((ch * cw,), -1, dtype=torch.long, device=source.device)
    slot[targets] = torch.arange(len(targets), device=source.device)
    fy, fx = fine_targets // fw, fine_targets % fw
    cy = (fy * ch // fh).clamp(0, ch - 1)
    cx = (fx * cw // fw).clamp(0, cw - 1)
    under = slot[cy * cw + cx]
    s = source[under.clamp_min(0)]
    sy = (s // cw) * fh // ch + (fy - cy * fh // ch)
    sx = (s % cw) * fw // cw + (fx - cx * fw // cw)
    ok = (under >= 0) & (sy >= 0) & (sy < fh) & (sx >= 0) & (sx < fw)
    return torch.where(ok, sy * fw + sx, torch.full_like(sy, -1))


Level = tuple[torch.Tensor, torch.Tensor, tuple[int, int]]
"""What a level hands to the next: its field's sources and targets, and its size."""


def layout_guide(start: torch.Tensor, sigma: float) -> torch.Tensor:
    """``start`` ``(1, 3, H, W)`` (the prior's fill with the photo around it), reduced to
    :data:`GUIDE_SIDE` pixels on its longer side and Gaussian-blurred by ``sigma`` there, so
    known pixels and the prior's fill are compared at the detail the prior predicts."""
    h, w = start.shape[-2:]
    scale = min(1.0, GUIDE_SIDE / max(h, w))
    small = resize(start, (max(1, round(h * scale)), max(1, round(w * scale))))
    blurred = ndimage.gaussian_filter(small[0].cpu().numpy(), (0, sigma, sigma), mode="nearest")
    return torch.from_numpy(blurred)[None].to(start)


def guide_trust(hole: torch.Tensor, reach: float) -> torch.Tensor:
    """How far the layout guide is trusted at each pixel of ``hole`` ``(H, W)`` bool →
    ``(H·W,)`` in ``(0, 1]``: ``exp(−depth / (reach · max(H, W)))``, depth the distance in
    pixels to the nearest known pixel (1 on known pixels)."""
    depth = ndimage.distance_transform_edt(hole.cpu().numpy())
    trust = torch.from_numpy(depth).float().to(hole.device) / (reach * max(hole.shape))
    return torch.exp(-trust).reshape(-1)


def sharpen(x: torch.Tensor, hole: torch.Tensor, amount: float) -> torch.Tensor:
    """Unsharp mask of the hole's brightness: ``x`` ``(1, 3, H, W)`` in ``[0, 1]``, ``hole``
    ``(H, W)`` bool. Adds ``amount`` × (luma − its Gaussian blur, σ :data:`DETAIL_SIGMA`) to
    every channel of the hole's pixels (so hues stay), with the gain faded in over
    :data:`DETAIL_FADE` pixels from the nearest known one; clamped to ``[0, 1]``. Known
    pixels are returned unchanged. Returns ``(1, 3, H, W)``."""
    luma = torch.einsum("c,chw->hw", torch.tensor(LUMA).to(x), x[0]).cpu().numpy()
    band = luma - ndimage.gaussian_filter(luma, DETAIL_SIGMA, mode="nearest")
    depth = ndimage.distance_transform_edt(hole.cpu().numpy())
    gain = amount * ((depth - 0.5) / DETAIL_FADE).clip(0, 1)
    lift = torch.from_numpy(gain * band).to(x)
    return torch.where(hole, (x + lift).clamp(0, 1), x)


def vote_fill(image: torch.Tensor, hole: torch.Tensor, start: torch.Tensor,
              config: InpaintConfig, generator: torch.Generator, label: str = ""
              ) -> torch.Tensor:
    """Fill one context window by patch voting, coarse to fine.

    ``image``: ``(1, 3, h, w)`` in ``[0, 1]``; ``hole``: ``(1, 1, h, w)`` 0/1; ``start``:
    ``(1, 3, h, w)`` the content prior's fill, which the coarsest level starts from. The
    pyramid is as deep as :func:`~neural_patch_synth.pyramid.level_count` says; each finer
    level starts from the coarser level's field carried up (so its pixels are copied from the
    start, not blurred by upsampling). Every level's patch distance also compares the
    layout guide (:func:`layout_guide` of ``start``), weighted by ``config.guide_weight`` and
    :func:`guide_trust`. The finished fill is sharpened by ``config.detail``
    (:func:`sharpen`; 0: not). ``config`` is resolved for its command
    (:meth:`~neural_patch_synth.config.InpaintConfig.for_command`; else ValueError). Returns
    ``(1, 3, h, w)``.
    """
    if unset := config.unresolved():
        raise ValueError(f"vote_fill: {', '.join(unset)} unset; pass config.for_command(...)")
    holed = hole[0, 0] > 0.5
    levels = level_count(holed.cpu().numpy(), config.coarse_reach, config.min_level_side)
    sizes = level_sizes(*image.shape[-2:], levels)
    plan = [config.level_em(len(sizes) - 1 - k) for k in range(len(sizes))]
    x, prev = start, None
    layout = layout_guide(start, config.guide_sigma) if config.guide_weight else None
    shifts = dominant_shifts(image, hole, config.shifts) if config.shifts else None
    with tqdm(total=sum(plan), desc=f"{label}voting", unit="it", dynamic_ncols=True,
              disable=not config.progress) as bar:
        for level, size in enumerate(sizes):
            finest = level == len(sizes) - 1
            known, level_hole = downsample(image, hole, size, majority=not finest)
            x = torch.where(level_hole > 0.5, resize(x, size), known)
            guide = None if layout is None else resize(layout, size)
            level_shift = (None if shifts is None
                           else level_shifts(shifts, image.shape[-2:], size))
            x, prev = vote_level(x, level_hole, guide, prev, plan[level], finest, config,
                                 generator, bar, level_shift)
    return sharpen(x, holed, config.detail) if config.detail else x


def vote_level(x: torch.Tensor, hole: torch.Tensor, guide: torch.Tensor | None,
               prev: Level | None, iterations: int, final: bool, config: InpaintConfig,
               generator: torch.Generator, bar: tqdm, shifts: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, Level | None]:
    """EM iterations at one level: ``x`` ``(1, 3, h, w)`` the estimate, ``hole``
    ``(1, 1, h, w)``, ``guide`` ``(1, 3, h, w)`` the layout guide at this level (None: off);
    ``prev`` the coarser level's field (None at the first voted level, which alone copies
    by ``shifts`` ``(k, 2)``, :meth:`Voter.search_layout`, when given and not empty). The last
    iteration of the ``final`` level copies the best patch per pixel (and hides the seams
    between copied pieces when ``config.seams``)."""
    size = tuple(x.shape[-2:])
    holed = hole[0, 0] > 0.5
    feats = texture_features(x[0].mean(0), FEATURE_RADIUS)
    if prev is None:  # the hole's texture level comes from its surroundings, not the prior
        feats = smooth_fill(feats[None], hole)[0]
    img = torch.cat([x[0], feats])
    g = config.gradient_weight
    weights = torch.tensor([1.0, 1.0, 1.0, g, g])
    guide_weight = None
    if guide is not None:
        trust = guide_trust(holed, config.guide_reach)
        guide_weight = config.guide_weight * config.patch_size ** 2 * trust
        guide = guide[0].reshape(3, -1)
    voter = Voter(holed, config.patch_size, weights, 5, generator, locality=config.locality,
                  jump=config.search_jump, guide=guide, guide_weight=guide_weight)
    if len(voter.targets) == 0 or len(voter.sources) < MIN_SOURCES:
        bar.update(iterations)
        return x, None
    start, match = None, None
    if prev is not None:
        match = voter.search(img, 0, upsample_sources(*prev, voter.targets, size))
        img = voter.vote(img, match)
        start = match.source
    by_shifts = prev is None and shifts is not None and len(shifts) > 0
    for it in range(iterations):
        if by_shifts:
            match = voter.search_layout(img, shifts, config.search_iterations, start)
        else:
            match = voter.search(img, config.search_iterations, start)
        start = match.source
        if final and it == iterations - 1:
            img, source = voter.best_patch(img, match)
            if config.seams:
                gx, gy = source_gradients(img[:3], source)
                img[:3] = reconstruct(img[:3], holed, gx, gy, SEAM_SCREEN).clamp(0, 1)
        else:
            img = voter.vote(img, match)
        bar.update(1)
    if match is None:
        return x, None
    return img[None, :3], (match.source, voter.targets, size)
