import torch

from neural_patch_synth.losses import content_loss, texture_loss, tv_loss


def test_content_loss_counts_hole_only():
    x = torch.zeros(1, 3, 4, 4)
    ref = torch.ones(1, 3, 4, 4)
    hole = torch.zeros(1, 1, 4, 4)
    hole[..., :2, :2] = 1
    assert content_loss(x, ref, hole).item() == 1.0
    x[..., 2:, 2:] = 1  # outside the hole: no effect
    assert content_loss(x, ref, hole).item() == 1.0


def test_content_loss_pooled_ignores_fine_detail():
    ref = torch.full((1, 3, 4, 4), 0.5)
    x = ref.clone()
    x[..., ::2, ::2] += 0.25
    x[..., 1::2, 1::2] -= 0.25  # zero mean in every 2×2 cell
    hole = torch.ones(1, 1, 4, 4)
    assert content_loss(x, ref, hole, pool=2).item() < 1e-12
    assert content_loss(x, ref, hole).item() > 0


def test_texture_loss_scale_invariant():
    p, t = torch.randn(10, 18), torch.randn(10, 18)
    energy = t.pow(2).mean()
    a = texture_loss(p, t, energy)
    b = texture_loss(7 * p, 7 * t, 49 * energy)
    assert torch.allclose(a, b)
    assert torch.allclose(a, ((p - t) ** 2).mean(dim=1).sum() / energy)


def test_tv_loss_by_hand():
    x = torch.tensor([[0.0, 1.0], [0.0, 0.0]])[None, None]
    region = torch.ones(1, 1, 2, 2)
    # pairs: vertical (0,0),(1,0) and horizontal (1,0),(0,1): squared diffs 0,1,1,0 → mean 0.5
    assert tv_loss(x, region).item() == 0.5
    assert tv_loss(torch.zeros(1, 3, 5, 5), region.new_ones(1, 1, 5, 5)).item() == 0


def test_content_loss_pooled_still_holds_colour():
    ref = torch.full((1, 3, 4, 4), 0.5)
    x = ref.clone()
    x[:, 0, ::2] += 0.2  # red up on even rows, down on odd: zero mean per cell, but colour noise
    x[:, 0, 1::2] -= 0.2
    hole = torch.ones(1, 1, 4, 4)
    assert content_loss(x, ref, hole, pool=2).item() > 1e-3
