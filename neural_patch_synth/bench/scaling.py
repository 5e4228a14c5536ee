"""The speed section: end-to-end time against image size, and the patch-search backends.

Every size uses the same photo (a Kodak picture, centre square resized to the size) with a
centred square hole of a quarter of the area, as the paper's 512² demo. The search benchmark
times :class:`neural_patch_synth.patches.PatchIndex` backends on the engine's known and hole
patches of that photo at the first texture layer (relu3_1 by default; random vectors of the
same shape when no VGG weights are found), against the exact torch search as reference.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from neural_patch_synth.errors import NPSError

from .datasets import centre_hole, square_crop
from .meter import measure
from .methods import Fill

PHOTO = "kodim23.png"
"""The photo every size is made from (parrots: smooth background and sharp detail)."""
BACKENDS = (("torch", None), ("faiss", None), ("faiss", 128), ("torch", 128), ("faiss", 64))
"""``(backend, pca_dim)`` pairs timed (128 is the engine's default); the first, exact torch, is
the reference."""


def speed_case(root: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``size``² photo and its centred quarter-area square hole."""
    path = root / "kodak" / PHOTO
    if not path.exists():
        path = sorted((root / "kodak").glob("*.png"))[0]
    img = square_crop(Image.open(path).convert("RGB"), 512)
    if size != 512:
        img = img.resize((size, size), Image.LANCZOS)
    return np.asarray(img).copy(), centre_hole(size, size)


def end_to_end(fn: Fill, image: np.ndarray, mask: np.ndarray, cuda: bool) -> dict[str, Any]:
    """Time one method on one speed case."""
    given = np.where(mask[..., None], 0, image).astype(np.uint8)
    _, seconds, peak = measure(lambda: fn(given, mask), cuda)
    return {"seconds": seconds, "peak_mb": peak}


def texture_centres(mask: np.ndarray, config: Any, layer: str,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature coordinates ``(N, 2)`` of the hole (query) patches and ``(M, 2)`` of the known
    (key) patches of ``layer``, for ``mask`` ``(H, W)`` bool at the finest pyramid level.

    A copy of the selection in ``Synthesizer.prepare_texture``, which exposes no function for
    it: known patches are those whose features' receptive-field central half (``rf // 4`` px)
    misses the hole, on a ``known_stride`` grid widened to stay under ``max_known_patches``;
    queries are the patches touching the hole. ``tests/test_speed.py`` fails when the two drift.
    """
    from neural_patch_synth.features import layer_stride, pool_mask, receptive_field
    from neural_patch_synth.patches import patch_centres

    size, r = config.patch_size, config.patch_size // 2
    s, rf = layer_stride(layer), receptive_field(layer)
    fh, fw = mask.shape[0] // s, mask.shape[1] // s
    hole = torch.from_numpy(mask)[None, None].float().to(device)
    reach = F.max_pool2d(hole, 2 * (rf // 4) + 1, 1, rf // 4)
    dirty = pool_mask(reach, s)[0, 0, :fh, :fw] > 0.5
    step = config.known_stride
    known = patch_centres(~dirty, size, step)
    while len(known) > config.max_known_patches:
        step += 1
        known = patch_centres(~dirty, size, step)
    cells = pool_mask(hole, s)[0, 0, :fh, :fw]
    touch = F.max_pool2d(cells[None, None], size, 1, r)[0, 0] > 0.5
    inner = torch.zeros_like(touch)
    inner[r:fh - r, r:fw - r] = True
    return torch.nonzero(touch & inner), known


def texture_patches(image: np.ndarray, mask: np.ndarray, config: Any,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Raw hole (query) ``(N, D)`` and known (key) ``(M, D)`` feature patches of the first
    texture layer of ``image`` ``(H, W, 3)`` uint8, and where they come from: VGG features of
    the colour image or of its brightness (``config.texture_colour``), as the engine computes
    them; random vectors of relu3_1's width when no VGG weights are found."""
    from neural_patch_synth.features import load_vgg
    from neural_patch_synth.losses import luma
    from neural_patch_synth.patches import extract_patches

    layer = config.layers[0]
    queries, known = texture_centres(mask, config, layer, device)
    try:
        vgg = load_vgg((layer,), config.vgg_weights, device)
    except NPSError:
        dim = 256 * config.patch_size**2
        gen = torch.Generator().manual_seed(0)
        return (torch.randn(len(queries), dim, generator=gen).to(device),
                torch.randn(len(known), dim, generator=gen).to(device), "random")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)
    with torch.no_grad():
        feat = vgg(x if config.texture_colour else luma(x))[layer]
    source = f"vgg {layer}" + ("" if config.texture_colour else " (brightness)")
    return (extract_patches(feat, queries, config.patch_size),
            extract_patches(feat, known, config.patch_size), source)


def search_backends(image: np.ndarray, mask: np.ndarray, config: Any,
                    device: torch.device) -> list[dict[str, Any]]:
    """One row per backend: index build and search seconds, agreement with the exact search.

    The patches are those of :func:`texture_patches`, turned into search vectors for
    ``config.similarity`` as the engine does. ``agreement``: fraction of queries given the same
    key as the exact search; ``similarity``: mean inner product of the search vectors of the
    keys found over that of the exact matches (for ``ncc``, the normalised cross-correlation).
    """
    from neural_patch_synth.patches import PatchIndex, faiss_available, search_vectors

    raw_queries, raw_keys, source = texture_patches(image, mask, config, device)
    queries = search_vectors(raw_queries, config.similarity, keys=False)
    keys = search_vectors(raw_keys, config.similarity, keys=True)
    rows, exact, best = [], None, None
    for backend, pca_dim in BACKENDS:
        row: dict[str, Any] = {"backend": backend, "pca_dim": pca_dim, "queries": len(queries),
                               "keys": len(keys), "dim": keys.shape[1], "features": source}
        if backend == "faiss" and not faiss_available():
            rows.append({**row, "error": "faiss is not installed"})
            continue
        start = time.perf_counter()
        index = PatchIndex(keys, backend, pca_dim)
        built = time.perf_counter()
        found = index.search(queries)
        if device.type == "cuda":
            torch.cuda.synchronize()
        done = time.perf_counter()
        sims = (queries * keys[found]).sum(dim=1)
        if exact is None:
            exact, best = found, sims.mean()
        rows.append({**row, "build_s": built - start, "search_s": done - built,
                     "agreement": float((found == exact).float().mean()),
                     "similarity": float(sims.mean() / best)})
    return rows
