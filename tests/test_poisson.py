"""Gradient-domain reconstruction: exact recovery, boundary, screening, seamless cloning."""

import pytest
import torch

from neural_patch_synth.poisson import dst, forward_differences, reconstruct, seamless_clone


def smooth_image(h: int = 60, w: int = 70) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([torch.sin(6 * xx) * yy, xx * xx, torch.cos(4 * yy + xx)]) * 0.4 + 0.5


def holes(h: int = 60, w: int = 70) -> list[torch.Tensor]:
    box = torch.zeros(h, w, dtype=torch.bool)
    box[10:45, 12:50] = True
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    blob = ((yy - 30) ** 2 + (xx - 30) ** 2 < 15 ** 2) | ((yy - 8).abs() < 3) & (xx > 5)
    return [box, blob]


def test_dst_is_its_own_inverse_up_to_scale():
    x = torch.rand(3, 17, 9)
    assert torch.allclose(dst(dst(x, -1), -1) * 2 / 10, x, atol=1e-5)
    assert torch.allclose(dst(dst(x, -2), -2) * 2 / 18, x, atol=1e-5)


@pytest.mark.parametrize("which", [0, 1])
def test_recovers_an_image_from_its_gradients(which, device):
    img, hole = smooth_image().to(device), holes()[which].to(device)
    gx, gy = forward_differences(img)
    start = torch.where(hole, torch.full_like(img, 0.5), img)
    out = reconstruct(start, hole, gx, gy, screen=0.0)
    assert (out - img).abs().max() < 2e-3
    assert torch.equal(out[:, ~hole], img[:, ~hole])  # known pixels bit-identical


def test_screening_holds_the_values(device):
    img, hole = smooth_image().to(device), holes()[1].to(device)
    gx, gy = forward_differences(img)
    start = torch.where(hole, torch.full_like(img, 0.5), img)
    loose = reconstruct(start, hole, gx, gy, screen=0.01)
    tight = reconstruct(start, hole, gx, gy, screen=100.0)
    assert (tight - start)[:, hole].abs().max() < 0.02
    assert (loose - img)[:, hole].abs().mean() < (tight - img)[:, hole].abs().mean()


def test_seamless_clone_meets_the_boundary(device):
    img, hole = smooth_image().to(device), holes()[0].to(device)
    fill = img + 0.2  # the right detail, the wrong level
    out = seamless_clone(img, fill, hole)
    assert torch.equal(out[:, ~hole], img[:, ~hole])
    # The step is gone; what is left is the photo's own gradient across the boundary edges,
    # which the solve is not told about (a few hundredths on this smooth image).
    assert (out - img).abs().max() < 0.05 and (out - img)[:, hole].abs().mean() < 0.01
    assert torch.equal(reconstruct(img, torch.zeros_like(hole), *forward_differences(img)), img)
