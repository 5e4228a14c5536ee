import pytest
import torch
import torch.nn.functional as F

from neural_patch_synth import NPSError, patches
from neural_patch_synth.patches import (
    PatchIndex,
    extract_patches,
    faiss_available,
    nearest_patches,
    normalise,
    patch_centres,
)


def test_extract_patches_matches_unfold():
    feat = torch.randn(1, 5, 9, 11)
    centres = torch.tensor([[1, 1], [4, 7], [7, 9], [3, 2]])
    unfolded = F.unfold(feat, 3)  # (1, C*9, 7*9), column = top-left corner
    expected = torch.stack([unfolded[0, :, (y - 1) * 9 + (x - 1)] for y, x in centres.tolist()])
    assert torch.equal(extract_patches(feat, centres, 3), expected)


def test_extract_patches_brute_force_5x5():
    feat = torch.randn(1, 2, 8, 8)
    got = extract_patches(feat, torch.tensor([[3, 4]]), 5)
    assert torch.equal(got[0], feat[0, :, 1:6, 2:7].reshape(-1))


def test_patch_centres_inside_valid_region_only():
    valid = torch.ones(8, 8, dtype=torch.bool)
    valid[4, 4] = False
    centres = patch_centres(valid, 3, 1)
    brute = {(y, x) for y in range(1, 7) for x in range(1, 7)
             if valid[y - 1:y + 2, x - 1:x + 2].all()}
    assert {tuple(c) for c in centres.tolist()} == brute
    strided = patch_centres(valid, 3, 2)
    assert all(y % 2 == 0 and x % 2 == 0 for y, x in strided.tolist())


def brute_nearest(q, k):
    best = []
    for row in q:
        sims = [(float(row @ key), j) for j, key in enumerate(k)]
        best.append(max(sims)[1])
    return torch.tensor(best)


@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_nearest_is_exact(backend, device):
    if backend == "faiss" and not faiss_available():
        pytest.skip("faiss is not installed")
    gen = torch.Generator().manual_seed(1)
    keys = normalise(torch.randn(300, 27, generator=gen))
    queries = normalise(torch.randn(50, 27, generator=gen))
    found = nearest_patches(queries.to(device), keys.to(device), backend)
    assert found.device.type == device.type
    assert torch.equal(found.cpu(), brute_nearest(queries, keys))


def test_faiss_and_torch_agree_on_feature_like_vectors():
    if not faiss_available():
        pytest.skip("faiss is not installed")
    gen = torch.Generator().manual_seed(2)
    keys = normalise(torch.relu(torch.randn(5000, 576, generator=gen)))
    queries = normalise(keys[:400] + 0.3 * torch.randn(400, 576, generator=gen))
    assert torch.equal(nearest_patches(queries, keys, "faiss"),
                       nearest_patches(queries, keys, "torch"))


def test_torch_search_is_chunked(monkeypatch):
    import neural_patch_synth.patches as patches

    monkeypatch.setattr(patches, "CHUNK_BYTES", 4 * 64 * 7)  # 7 query rows per chunk
    keys = normalise(torch.randn(64, 8))
    queries = normalise(torch.randn(30, 8))
    assert torch.equal(nearest_patches(queries, keys, "torch"), brute_nearest(queries, keys))


def test_pca_search_recovers_planted_neighbours():
    gen = torch.Generator().manual_seed(3)
    basis = torch.randn(16, 256, generator=gen)
    keys = normalise(torch.randn(2000, 16, generator=gen) @ basis)
    queries = normalise(keys[:200] + 0.05 * torch.randn(200, 256, generator=gen))
    got = PatchIndex(keys, "torch", pca_dim=16).search(queries)
    assert (got == torch.arange(200)).float().mean() > 0.98


def test_faiss_index_is_built_once_and_searched_many_times(monkeypatch):
    if not faiss_available():
        pytest.skip("faiss is not installed")
    built = []
    real = patches.faiss.IndexFlatIP
    monkeypatch.setattr(patches.faiss, "IndexFlatIP", lambda dim: built.append(dim) or real(dim))
    gen = torch.Generator().manual_seed(4)
    keys = normalise(torch.randn(500, 64, generator=gen))
    index = PatchIndex(keys, "faiss")
    for _ in range(3):  # as the hole changes between L-BFGS rounds
        queries = normalise(torch.randn(40, 64, generator=gen))
        assert torch.equal(index.search(queries), brute_nearest(queries, keys))
    assert built == [64]


def test_empty_keys_is_a_clear_error():
    with pytest.raises(NPSError, match="known patches"):
        PatchIndex(torch.zeros(0, 4))


def test_l2_search_vectors_find_the_euclidean_nearest():
    from neural_patch_synth.patches import search_vectors

    gen = torch.Generator().manual_seed(4)
    keys = torch.randn(500, 12, generator=gen) * torch.rand(500, 1, generator=gen) * 3
    queries = torch.randn(40, 12, generator=gen)
    got = nearest_patches(search_vectors(queries, "l2", keys=False),
                          search_vectors(keys, "l2", keys=True), "torch")
    assert torch.equal(got, torch.cdist(queries, keys).argmin(dim=1))
