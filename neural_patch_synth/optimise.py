"""The paper's method (``method="optimise"``): a pyramid of L-BFGS optimisations of
``content + neural-patch texture + TV`` over the hole pixels.

Each level starts from the previous result upsampled (the coarsest from the content prior) and
pulls every VGG-19 feature patch overlapping the hole towards its most similar known patch
(normalised cross-correlation, FAISS or torch search, :mod:`patches`). VGG features are computed
in tiles around the hole (bounding box plus receptive-field margin), each tile's backward pass
run on its own, so cost grows with the hole and memory stays bounded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .config import InpaintConfig
from .features import VGGFeatures, layer_stride, load_vgg, pool_mask, receptive_field
from .losses import content_loss, luma, texture_loss, tv_loss
from .patches import PatchIndex, extract_patches, patch_centres, search_vectors
from .pyramid import downsample, pyramid_sizes, resize

TILE = 384
"""Side in pixels of the hole area whose features are computed in one piece."""
HISTORY_BYTES = 2 * 2**30
"""Memory bound for the L-BFGS history; the history shrinks for very large holes."""
FEATURE_PATCH = 3
"""Side of a feature patch (3 in the paper)."""


@dataclass
class Tile:
    """A region whose features are computed in one pass, and the patches it owns per layer."""

    y0: int
    y1: int
    x0: int
    x1: int
    owned: dict[str, torch.Tensor]   # layer → indices into that layer's centre list
    local: dict[str, torch.Tensor]   # layer → (n, 2) centres relative to the tile's origin


def make_tiles(centres: dict[str, torch.Tensor], shape: tuple[int, int], patch: int,
               tile: int = TILE) -> list[Tile]:
    """Split feature-patch centres into tiles of about ``tile`` px whose features are exact.

    ``centres``: layer → ``(N, 2)`` feature coordinates; ``shape``: the image's ``(H, W)``.
    Each tile's region is padded by the patch extent and the receptive field, and aligned to
    the largest stride, so its features equal those of the whole image where they are used.
    """
    strides = {name: layer_stride(name) for name in centres}
    big = max(strides.values())
    pad = (patch // 2 + 1) * big + max(receptive_field(n) for n in centres)
    pad = -(-pad // big) * big
    anchors = {n: c * strides[n] for n, c in centres.items()}
    every = torch.cat(list(anchors.values()))
    if len(every) == 0:
        return []
    lo = every.min(dim=0).values // big * big
    hi = every.max(dim=0).values + 1
    cuts = []
    for d in range(2):
        count = max(1, math.ceil(int(hi[d] - lo[d]) / tile))
        step = -(-math.ceil(int(hi[d] - lo[d]) / count) // big) * big
        cuts.append([int(lo[d]) + i * step for i in range(count)] + [int(hi[d])])
    tiles = []
    for ya, yb in zip(cuts[0][:-1], cuts[0][1:], strict=True):
        for xa, xb in zip(cuts[1][:-1], cuts[1][1:], strict=True):
            y0, x0 = max(0, ya - pad), max(0, xa - pad)
            owned, local = {}, {}
            for name, a in anchors.items():
                inside = (a[:, 0] >= ya) & (a[:, 0] < yb) & (a[:, 1] >= xa) & (a[:, 1] < xb)
                owned[name] = torch.nonzero(inside)[:, 0]
                s = strides[name]
                origin = torch.tensor([y0 // s, x0 // s], device=a.device)
                local[name] = centres[name][owned[name]] - origin
            if any(len(v) for v in owned.values()):
                tiles.append(Tile(y0, min(shape[0], yb + pad), x0, min(shape[1], xb + pad),
                                  owned, local))
    return tiles


@dataclass
class LayerMatches:
    """Texture state of one VGG layer at one level: known patches, hole centres, matches."""

    hole_centres: torch.Tensor   # (N, 2) feature coordinates of patches overlapping the hole
    keys: torch.Tensor           # (M, D) raw known patches
    energy: torch.Tensor         # mean squared value of the known patches
    index: PatchIndex
    targets: torch.Tensor | None = None  # (N, D) matched known patch per hole patch


class NeuralOptimiser:
    """Holds the VGG network; :meth:`fill` runs the L-BFGS pyramid on one context window."""

    def __init__(self, config: InpaintConfig, device: torch.device) -> None:
        self.config = config
        self.vgg: VGGFeatures | None = None
        if config.texture_weight > 0:
            self.vgg = load_vgg(config.layers, config.vgg_weights, device)

    def fill(self, image: torch.Tensor, hole: torch.Tensor, prior, label: str = ""
             ) -> torch.Tensor:
        """Fill one window: ``image`` ``(1, 3, h, w)``, ``hole`` ``(1, 1, h, w)`` 0/1,
        ``prior(known, hole)`` the content prior's fill at any size → ``(1, 3, h, w)``."""
        sizes = pyramid_sizes(*image.shape[-2:], self.config.coarse_size)
        known0, hole0 = downsample(image, hole, sizes[0])
        x = prior(known0, hole0)
        for level, size in enumerate(sizes):
            known, level_hole = downsample(image, hole, size)
            if level > 0:
                x = resize(x, size)
            x = torch.where(level_hole > 0.5, x, known)
            desc = f"{label}level {level + 1}/{len(sizes)} {size[1]}x{size[0]}"
            x = self.optimise_level(x, level_hole, pool=1 if level == 0 else 2, level=level,
                                    desc=desc)
        return x

    def optimise_level(self, x: torch.Tensor, hole: torch.Tensor, pool: int, level: int,
                       desc: str) -> torch.Tensor:
        """L-BFGS on the hole pixels of ``x`` ``(1, 3, h, w)``; ``x`` is also the content
        reference (compared after ``pool × pool`` averaging). Returns the optimised image."""
        iterations = self.config.level_iterations(level)
        if iterations == 0:
            return x
        problem = LevelProblem(self, x, hole, pool)
        with tqdm(total=iterations, desc=desc, disable=not self.config.progress, unit="it",
                  dynamic_ncols=True) as bar:
            done = 0
            while done < iterations:
                steps = min(self.config.match_every, iterations - done)
                problem.update_matches()
                loss = problem.step(steps)
                done += steps
                bar.set_postfix(loss=f"{loss:.4g}")
                bar.update(steps)
        return problem.image().detach()

    def prepare_texture(self, x: torch.Tensor, hole: torch.Tensor) -> dict[str, LayerMatches]:
        """Known patches (features untouched by the hole) and hole-patch centres per layer."""
        cfg = self.config
        size, r = FEATURE_PATCH, FEATURE_PATCH // 2
        known_centres, hole_centres = {}, {}
        for name in cfg.layers:
            s, rf = layer_stride(name), receptive_field(name)
            fh, fw = x.shape[-2] // s, x.shape[-1] // s
            if fh < size or fw < size:
                continue
            # a feature is dominated by the centre of its receptive field: one whose central
            # half misses the hole counts as known (the full field would leave small holes
            # no known patch at all)
            reach = F.max_pool2d(hole, 2 * (rf // 4) + 1, 1, rf // 4)
            dirty = pool_mask(reach, s)[0, 0, :fh, :fw] > 0.5
            stride = cfg.known_stride
            known = patch_centres(~dirty, size, stride)
            while len(known) > cfg.max_known_patches:
                stride += 1
                known = patch_centres(~dirty, size, stride)
            cells = pool_mask(hole, s)[0, 0, :fh, :fw]
            touch = F.max_pool2d(cells[None, None], size, 1, r)[0, 0] > 0.5
            inner = torch.zeros_like(touch)
            inner[r:fh - r, r:fw - r] = True
            centres = torch.nonzero(touch & inner)
            if len(known) and len(centres):
                known_centres[name], hole_centres[name] = known, centres
        if not known_centres:
            return {}
        keys = self.gather_patches(x, known_centres, make_tiles(known_centres, x.shape[-2:],
                                                                size))
        return {
            name: LayerMatches(hole_centres[name], keys[name], keys[name].pow(2).mean(),
                               PatchIndex(search_vectors(keys[name], cfg.similarity, keys=True),
                                          cfg.search, cfg.pca_dim))
            for name in known_centres
        }

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """VGG features of ``x`` ``(1, 3, h, w)`` for the texture term (of its brightness only
        when ``config.texture_colour`` is off)."""
        return self.vgg(x if self.config.texture_colour else luma(x))

    @torch.no_grad()
    def gather_patches(self, x: torch.Tensor, centres: dict[str, torch.Tensor],
                       tiles: list[Tile]) -> dict[str, torch.Tensor]:
        """Raw feature patches at ``centres`` (layer → ``(N, 2)``) of image ``x``, tile by tile."""
        out: dict[str, torch.Tensor] = {}
        for tile in tiles:
            feats = self.features(x[:, :, tile.y0:tile.y1, tile.x0:tile.x1])
            for name in centres:
                if name not in out:
                    dim = feats[name].shape[1] * FEATURE_PATCH ** 2
                    out[name] = torch.empty(len(centres[name]), dim, device=x.device)
                if len(tile.owned[name]):
                    out[name][tile.owned[name]] = extract_patches(
                        feats[name], tile.local[name], FEATURE_PATCH)
        return out


class LevelProblem:
    """The joint loss at one pyramid level, as a function of the hole pixels.

    ``x``: ``(1, 3, h, w)`` start image, also the content reference; ``hole``: ``(1, 1, h, w)``
    0/1. The variables are the hole pixels only, so known pixels cannot move.
    """

    def __init__(self, synth: NeuralOptimiser, x: torch.Tensor, hole: torch.Tensor, pool: int):
        cfg = synth.config
        self.synth, self.config, self.pool = synth, cfg, pool
        self.ref, self.hole = x.detach(), hole
        self.select = (hole > 0.5).expand_as(x)
        self.v = x[self.select].clone().requires_grad_(True)
        self.layers = synth.prepare_texture(x, hole) if synth.vgg is not None else {}
        self.patch_count = sum(len(m.hole_centres) for m in self.layers.values())
        self.tiles = make_tiles({n: m.hole_centres for n, m in self.layers.items()},
                                x.shape[-2:], FEATURE_PATCH) if self.layers else []
        self.tv_scale = tv_loss(x, 1 - hole).detach().clamp_min(1e-4)
        history = max(3, min(cfg.lbfgs_history, HISTORY_BYTES // (8 * self.v.numel())))
        self.optimiser = torch.optim.LBFGS(
            [self.v], lr=1.0, max_iter=cfg.match_every, history_size=history,
            line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12)

    def image(self) -> torch.Tensor:
        """The current image ``(1, 3, h, w)``: reference outside the hole, variables inside."""
        return self.ref.masked_scatter(self.select, self.v)

    def update_matches(self) -> None:
        """Re-match every hole patch to its most similar known patch."""
        if not self.layers:
            return
        centres = {n: m.hole_centres for n, m in self.layers.items()}
        patches = self.synth.gather_patches(self.image().detach(), centres, self.tiles)
        for name, m in self.layers.items():
            queries = search_vectors(patches[name], self.config.similarity, keys=False)
            m.targets = m.keys[m.index.search(queries)]

    def loss(self) -> torch.Tensor:
        """Evaluate the loss and accumulate its gradient into the variables (tile by tile)."""
        cfg = self.config
        img = self.image()
        total = cfg.content_weight * content_loss(img, self.ref, self.hole, self.pool)
        total = total + cfg.tv_weight * tv_loss(img, self.hole) / self.tv_scale
        total.backward()
        value = total.detach()
        for tile in self.tiles:
            feats = self.synth.features(self.image()[:, :, tile.y0:tile.y1, tile.x0:tile.x1])
            part = img.new_zeros(())
            for name, m in self.layers.items():
                if len(tile.owned[name]):
                    patches = extract_patches(feats[name], tile.local[name], FEATURE_PATCH)
                    part = part + texture_loss(patches, m.targets[tile.owned[name]], m.energy)
            part = cfg.texture_weight * part / self.patch_count
            part.backward()
            value = value + part.detach()
        return value

    def step(self, iterations: int) -> float:
        """Run ``iterations`` L-BFGS iterations; returns the loss before them."""
        def closure() -> torch.Tensor:
            self.optimiser.zero_grad()
            return self.loss()

        self.optimiser.param_groups[0]["max_iter"] = iterations
        loss = self.optimiser.step(closure)
        with torch.no_grad():
            self.v.clamp_(0, 1)
        return float(loss)
