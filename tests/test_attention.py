"""Contextual attention: shapes, borrowing distant known content, propagation, the generator."""

from __future__ import annotations

import torch

from neural_patch_synth.prior.attention import AttentionNet, _propagate, contextual_attention


def test_shapes_and_no_usable_key() -> None:
    features = torch.randn(2, 6, 16, 12)
    mask = torch.zeros(2, 1, 16, 12)
    mask[0, :, 4:10, 2:8] = 1
    mask[1] = 1  # nothing known: nothing to borrow
    out = contextual_attention(features, mask)
    assert out.shape == features.shape
    assert not out[1].any()


def test_borrows_distant_known_content() -> None:
    """The hole's features equal a far-away known region's; a sharp softmax copies it back."""
    torch.manual_seed(0)
    features = torch.randn(1, 8, 32, 32)
    features[..., 4:12, 4:12] = features[..., 20:28, 20:28]  # the hole is a copy of this
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 4:12, 4:12] = 1
    out = contextual_attention(features, mask, scale=200.0, propagate=1)
    inner = (..., slice(6, 9), slice(6, 9))  # rebuilt from patches whose windows are copies
    assert torch.allclose(out[inner], features[inner], atol=1e-3)


def test_propagation_sums_diagonal_neighbours() -> None:
    h, w = 4, 5
    scores = torch.eye(h * w)[None]
    out = _propagate(scores, (h, w), 3)
    centre = 1 * w + 2  # an interior position: three neighbours each way
    assert out[0, centre, centre] == 9
    assert out[0, centre, centre + 1] == 0
    assert out.shape == scores.shape


def test_generator_stages_and_hole_values_ignored() -> None:
    torch.manual_seed(0)
    net = AttentionNet(width=8).eval()
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 32:96, 32:96] = 1
    image = torch.rand(1, 3, 128, 128)
    other = torch.where(mask > 0, torch.rand_like(image), image)
    with torch.no_grad():
        coarse, refined = net.stages(image, mask)
        assert torch.allclose(net(other, mask), refined, atol=1e-6)
    assert coarse.shape == refined.shape == (1, 3, 128, 128)
