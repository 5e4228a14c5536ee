"""Partial convolutions: hole values ignored, mask update rule, renormalisation, the U-Net."""

from __future__ import annotations

import pytest
import torch

from neural_patch_synth.prior.pconv import PartialConv2d, PConvUNet


def hole_mask(side: int, y: slice, x: slice) -> torch.Tensor:
    """``(1, 1, side, side)`` validity mask (1 = valid) with a hole at ``[y, x]``."""
    valid = torch.ones(1, 1, side, side)
    valid[..., y, x] = 0
    return valid


def test_partial_conv_ignores_hole_values() -> None:
    torch.manual_seed(0)
    layer = PartialConv2d(3, 5, 3)
    valid = hole_mask(12, slice(3, 8), slice(2, 9))
    x = torch.rand(1, 3, 12, 12)
    other = torch.where(valid > 0, x, torch.randn_like(x) * 100)
    a, ma = layer(x, valid)
    b, mb = layer(other, valid)
    assert torch.equal(a, b) and torch.equal(ma, mb)


def test_mask_update_rule() -> None:
    valid = hole_mask(12, slice(3, 8), slice(2, 9))  # 5 × 7 hole
    _, new = PartialConv2d(1, 1, 3)(torch.rand(1, 1, 12, 12), valid)
    expected = hole_mask(12, slice(4, 7), slice(3, 8))  # shrinks by one pixel on every side
    assert torch.equal(new, expected)
    _, new = PartialConv2d(1, 1, 5, stride=2)(torch.rand(1, 1, 12, 12), valid)
    assert new.shape == (1, 1, 6, 6)
    assert new.sum() == 36  # every 5×5 window of this hole sees a valid pixel
    all_hole = torch.zeros(1, 1, 8, 8)
    out, new = PartialConv2d(2, 3, 3)(torch.rand(1, 2, 8, 8), all_hole)
    assert not new.any() and not out.any()


def test_renormalised_by_valid_count() -> None:
    """A constant image gives the full-window response wherever the window saw a valid pixel,
    the image border included (padding counts as invalid)."""
    layer = PartialConv2d(1, 1, 3)
    with torch.no_grad():
        layer.conv.weight.fill_(1.0)
    valid = hole_mask(10, slice(2, 7), slice(2, 7))
    out, new = layer(torch.full((1, 1, 10, 10), 2.0), valid)
    assert torch.allclose(out[new > 0], torch.full_like(out[new > 0], 18.0))


def test_unet_ignores_hole_values_and_handles_border_holes() -> None:
    torch.manual_seed(0)
    net = PConvUNet(width=4).eval()
    mask = torch.zeros(2, 1, 128, 128)
    mask[0, :, 30:90, 40:100] = 1
    mask[1, :, :, :50] = 1  # a band on the left edge
    image = torch.rand(2, 3, 128, 128)
    other = torch.where(mask > 0, torch.rand_like(image), image)
    with torch.no_grad():
        a, b = net(image, mask), net(other, mask)
    assert torch.equal(a, b)
    assert a.shape == (2, 3, 128, 128) and torch.isfinite(a).all()


def test_widened_network_computes_the_same_and_learns_in_its_new_channels() -> None:
    torch.manual_seed(0)
    net = PConvUNet(width=4)
    with torch.no_grad():
        for param in net.parameters():  # biases too, so every layer is tested
            param.add_(0.1 * torch.randn_like(param))
    wide = net.widened(6)
    assert wide.width == 6 and sum(p.numel() for p in wide.parameters()) > sum(
        p.numel() for p in net.parameters())
    image = torch.rand(2, 3, 128, 128)
    mask = (1 - hole_mask(128, slice(30, 90), slice(20, 70))).expand(2, -1, -1, -1).clone()
    mask[1, :, :, :40] = 1
    out = wide(image, mask)
    assert torch.allclose(out, net(image, mask), atol=1e-6)
    out.square().mean().backward()  # the new channels' outgoing weights get a gradient
    assert wide.dec[-1].conv.weight.grad[:, 4:6].abs().sum() > 0
    assert wide.widened(6).width == 6
    with pytest.raises(ValueError, match="cannot narrow"):
        wide.widened(4)
