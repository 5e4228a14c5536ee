"""The speed section: end-to-end time against image size, and the patch-search backends.

Every size uses the same photo (a Kodak picture, centre square resized to the size) with a
centred square hole of a quarter of the area, as the paper's 512² demo. The search benchmark
times :class:`neural_patch_synth.patches.PatchIndex` backends on VGG relu3_1 patches of that
photo (random vectors of the same shape when no VGG weights are found), against the exact
torch search as reference.
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
LAYER = "relu3_1"


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


def _patch_sets(image: np.ndarray, mask: np.ndarray, config: Any,
                device: torch.device) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Normalised hole (query) and known (key) relu3_1 patches, sampled as the engine does:
    queries touch the hole, keys lie outside every hole pixel's receptive field."""
    from neural_patch_synth.features import layer_stride, load_vgg, pool_mask, receptive_field
    from neural_patch_synth.patches import extract_patches, normalise, patch_centres

    size, stride = config.patch_size, layer_stride(LAYER)
    hole = torch.from_numpy(mask)[None, None].float().to(device)
    rf = receptive_field(LAYER)
    dirty = pool_mask(F.max_pool2d(hole, 2 * (rf // 2) + 1, 1, rf // 2), stride)[0, 0] > 0.5
    step = config.known_stride
    known = patch_centres(~dirty, size, step)
    while len(known) > config.max_known_patches:
        step += 1
        known = patch_centres(~dirty, size, step)
    cells = pool_mask(hole, stride)[0, 0]
    fh, fw = cells.shape
    touch = F.max_pool2d(cells[None, None], size, 1, size // 2)[0, 0] > 0.5
    inner = torch.zeros_like(touch)
    inner[size // 2:fh - size // 2, size // 2:fw - size // 2] = True
    queries = torch.nonzero(touch & inner)
    try:
        vgg = load_vgg((LAYER,), config.vgg_weights, device)
    except NPSError:
        dim = 256 * size * size
        gen = torch.Generator().manual_seed(0)
        return (normalise(torch.randn(len(queries), dim, generator=gen)).to(device),
                normalise(torch.randn(len(known), dim, generator=gen)).to(device), "random")
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)
    with torch.no_grad():
        feat = vgg(x)[LAYER]
    return (normalise(extract_patches(feat, queries, size)),
            normalise(extract_patches(feat, known, size)), f"vgg {LAYER}")


def search_backends(image: np.ndarray, mask: np.ndarray, config: Any,
                    device: torch.device) -> list[dict[str, Any]]:
    """One row per backend: index build and search seconds, agreement with the exact search.

    ``agreement``: fraction of queries given the same key as the exact search;
    ``similarity``: mean similarity of the keys found over that of the exact matches.
    """
    from neural_patch_synth.patches import PatchIndex, faiss_available

    queries, keys, source = _patch_sets(image, mask, config, device)
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
