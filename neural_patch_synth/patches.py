"""Feature patches and the nearest-patch search: the engine's hot loop.

Similarity is normalised cross-correlation: the inner product of L2-normalised patch vectors.
Backends: FAISS (``IndexFlatIP``; on the GPU when faiss has GPU support and the vectors live on
CUDA) and an exact chunked torch matmul. An optional PCA-reduced search finds a short list in
a lower-dimensional space and re-ranks it exactly.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F

from .errors import NPSError

CHUNK_BYTES = 256 * 2**20
"""Memory bound for one block of the similarity matrix in the torch backend."""
RERANK = 8
"""Candidates re-ranked exactly after a PCA-reduced search."""

try:
    import faiss
except ImportError:  # pragma: no cover - depends on the installation
    faiss = None


def extract_patches(feat: torch.Tensor, centres: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Flattened ``size × size`` patches of a feature map around given centres.

    ``feat``: ``(1, C, H, W)``; ``centres``: ``(N, 2)`` long ``(y, x)``, distinct, each at least
    ``size // 2`` from the border. Returns ``(N, C * size * size)`` (channel-major, like
    ``F.unfold``). Built on ``F.unfold`` so that the backward pass sums overlapping patches in a
    fixed order (``fold``): gradients, and so ``--seed`` runs, are bit-reproducible on many
    threads, which scatter-adding the overlaps is not.
    """
    r = size // 2
    cols = F.unfold(feat, size)  # (1, C·size², (H - size + 1)·(W - size + 1))
    index = (centres[:, 0] - r) * (feat.shape[-1] - size + 1) + (centres[:, 1] - r)
    return cols[0, :, index].T


def patch_centres(valid: torch.Tensor, size: int = 3, stride: int = 1) -> torch.Tensor:
    """Centres of the patches lying wholly inside ``valid``.

    ``valid``: ``(H, W)`` bool. Only centres on a ``stride`` grid are kept. Returns ``(N, 2)``
    long ``(y, x)`` in row-major order.
    """
    r = size // 2
    if valid.shape[0] < size or valid.shape[1] < size:
        return torch.zeros(0, 2, dtype=torch.long, device=valid.device)
    inside = -F.max_pool2d(-(valid[None, None].float()), size, 1, padding=0)[0, 0] > 0.5
    full = torch.zeros_like(valid)
    full[r: valid.shape[0] - r, r: valid.shape[1] - r] = inside
    grid = torch.zeros_like(valid)
    grid[::stride, ::stride] = True
    return torch.nonzero(full & grid)


def normalise(vectors: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (zero rows stay zero). ``(N, D) → (N, D)``."""
    return F.normalize(vectors, dim=1, eps=1e-8)


def search_vectors(vectors: torch.Tensor, similarity: str, keys: bool) -> torch.Tensor:
    """Vectors whose largest inner product is the best match under ``similarity``.

    ``"ncc"``: L2-normalised (normalised cross-correlation). ``"l2"``: keys ``[2k, -|k|²]`` and
    queries ``[q, 1]``, so the inner product is ``2q·k - |k|²`` and its maximum is the nearest
    key in Euclidean distance. ``(N, D) → (N, D)`` or ``(N, D + 1)``.
    """
    if similarity == "ncc":
        return normalise(vectors)
    if keys:
        return torch.cat([2 * vectors, -vectors.pow(2).sum(1, keepdim=True)], dim=1)
    return torch.cat([vectors, vectors.new_ones(len(vectors), 1)], dim=1)


def faiss_available() -> bool:
    return faiss is not None


def _search_torch(queries: torch.Tensor, keys: torch.Tensor, k: int) -> torch.Tensor:
    rows = max(1, CHUNK_BYTES // (4 * max(1, len(keys))))
    out = []
    for start in range(0, len(queries), rows):
        sims = queries[start: start + rows] @ keys.T
        out.append(sims.topk(k, dim=1).indices if k > 1 else sims.argmax(dim=1, keepdim=True))
    return torch.cat(out)


def _faiss_on_gpu() -> bool:
    """Whether faiss is installed with GPU support and sees a GPU."""
    return (faiss is not None and hasattr(faiss, "StandardGpuResources")
            and faiss.get_num_gpus() > 0)


class _FaissIndex:
    """Exact inner-product faiss index over ``keys`` ``(M, D)``, built once and searched many
    times; on the GPU when the keys live on CUDA and faiss has GPU support."""

    def __init__(self, keys: torch.Tensor) -> None:
        x = keys.detach().float().contiguous()
        self.device = keys.device
        self.gpu = x.is_cuda and _faiss_on_gpu()
        if self.gpu:
            importlib.import_module("faiss.contrib.torch_utils")  # faiss takes CUDA tensors
            self.resources = faiss.StandardGpuResources()
            self.index = faiss.GpuIndexFlatIP(self.resources, x.shape[1])
            self.index.add(x)
        else:
            self.index = faiss.IndexFlatIP(x.shape[1])
            self.index.add(x.cpu().numpy())

    def __call__(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """``queries`` ``(N, D)`` → ``(N, k)`` long indices of the largest inner products."""
        q = queries.detach().float().contiguous()
        if self.gpu:
            return self.index.search(q, k)[1].long()
        _, idx = self.index.search(q.cpu().numpy(), k)
        return torch.from_numpy(idx).long().to(self.device)


def pca_basis(keys: torch.Tensor, dim: int) -> torch.Tensor:
    """Top ``dim`` principal directions of ``keys`` ``(M, D)`` → ``(D, dim)``.

    Uncentred (inner products of normalised vectors are what the search compares), found by a
    randomised low-rank SVD, which costs a few passes over the keys.
    """
    _, _, vecs = torch.svd_lowrank(keys, q=min(dim + 16, *keys.shape), niter=2)
    return vecs[:, :dim]


class PatchIndex:
    """Nearest-patch index over fixed keys, searched many times as the hole changes.

    ``keys``: ``(M, D)`` search vectors (see :func:`search_vectors`; L2-normalised for
    normalised cross-correlation). ``backend``: ``"auto"`` (faiss when importable,
    unless the keys live on CUDA and faiss has no GPU support: then torch, the fast path on a
    GPU), ``"faiss"`` or ``"torch"``. ``pca_dim``: search a short list of
    :data:`RERANK` candidates in that many principal components, then re-rank it exactly.
    """

    def __init__(self, keys: torch.Tensor, backend: str = "auto", pca_dim: int | None = None):
        if len(keys) == 0:
            raise NPSError("no known patches to copy texture from: the hole leaves too little "
                           "context")
        if backend == "auto":
            usable = faiss is not None and (not keys.is_cuda or _faiss_on_gpu())
            backend = "faiss" if usable else "torch"
        if backend == "faiss" and faiss is None:
            raise NPSError("faiss is not installed (pip install faiss-cpu, or faiss-gpu)")
        self.keys = keys
        self.backend = backend
        self.basis = None
        if pca_dim is not None and pca_dim < keys.shape[1]:
            self.basis = pca_basis(keys, pca_dim)
        self._reduced = keys if self.basis is None else keys @ self.basis
        self._faiss = _FaissIndex(self._reduced) if backend == "faiss" else None  # built once

    def search(self, queries: torch.Tensor) -> torch.Tensor:
        """``queries``: ``(N, D)`` search vectors → ``(N,)`` long index of the key with the
        largest inner product."""
        if self.basis is None:
            return self._search(queries, 1)[:, 0]
        k = min(RERANK, len(self.keys))
        short = self._search(queries @ self.basis, k)  # (N, k)
        sims = torch.einsum("nd,nkd->nk", queries, self.keys[short])
        return short.gather(1, sims.argmax(dim=1, keepdim=True))[:, 0]

    def _search(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """Top-``k`` key indices ``(N, k)`` of ``queries`` in the searched (reduced) space."""
        if self._faiss is not None:
            return self._faiss(queries, k)
        return _search_torch(queries, self._reduced, k)


def nearest_patches(queries: torch.Tensor, keys: torch.Tensor, backend: str = "auto",
                    pca_dim: int | None = None) -> torch.Tensor:
    """Index of the most similar key for each query: ``(N, D), (M, D) → (N,)`` long.

    Both sets L2-normalised; ``backend`` and ``pca_dim`` as in :class:`PatchIndex`.
    """
    return PatchIndex(keys, backend, pca_dim).search(queries)
