"""Gradient-domain reconstruction of a hole (Pérez et al. 2003; screened, as in Image Melding).

Find the hole's pixels ``x`` whose neighbour differences follow target differences ``g`` while
the known pixels stay fixed, optionally held near given values ``v``:

    minimise  Σ_(p,q) (x_q - x_p - g_pq)²  +  screen · Σ_(p in hole) (x_p - v_p)²

over the edges ``(p, q)`` (4-neighbours) that touch the hole. With ``g`` the gradients of a fill
and ``screen = 0`` this is seamless cloning: the fill's detail, the boundary's colours. With
``g`` voted from the patches copied into the hole and a small ``screen``, seams between copied
pieces disappear while colours stay where the copy put them.

Solved for the correction ``δ = x - v`` (zero outside the hole) by conjugate gradients on the
normal equations ``(L + screen·I) δ = b``, matrix-free on the hole's bounding box, so the cost
grows with the hole; the preconditioner is the exact inverse of the same operator on the whole
box (a fast sine transform), so a box-shaped hole is solved in one step and others in tens.
"""

from __future__ import annotations

import torch

from .masks import Box, bounding_box

TOLERANCE = 1e-4
"""CG stops when the residual norm falls below this fraction of the right-hand side's."""


def forward_differences(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, H, W)`` → horizontal ``(C, H, W-1)`` and vertical ``(C, H-1, W)`` differences
    ``x[.., j+1] - x[.., j]``."""
    return image[:, :, 1:] - image[:, :, :-1], image[:, 1:] - image[:, :-1]


def _laplacian(d: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor, hole: torch.Tensor,
               screen: float) -> torch.Tensor:
    """``(L + screen·I) d`` on the hole: ``L`` sums ``d_p - d_q`` over the edges (weights
    ``wx``, ``wy``: 1 where the edge touches the hole) at each hole pixel."""
    out = screen * d
    ex = (d[:, :, 1:] - d[:, :, :-1]) * wx
    ey = (d[:, 1:] - d[:, :-1]) * wy
    out[:, :, :-1] -= ex
    out[:, :, 1:] += ex
    out[:, :-1] -= ey
    out[:, 1:] += ey
    return out * hole


def dst(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Type-I discrete sine transform of ``x`` along ``dim`` (its own inverse up to the factor
    ``2 / (n + 1)``), through an FFT of the odd extension."""
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    zero = x.new_zeros(*x.shape[:-1], 1)
    odd = torch.cat([zero, x, zero, -x.flip(-1)], dim=-1)
    y = -torch.fft.rfft(odd, dim=-1).imag[..., 1:n + 1] / 2
    return y.movedim(-1, dim)


class _BoxInverse:
    """``(L_box + screen·I)⁻¹`` for the 5-point Laplacian on a rectangle with zero outside:
    the conjugate-gradient preconditioner (exact when the hole is the whole rectangle)."""

    def __init__(self, height: int, width: int, screen: float, like: torch.Tensor) -> None:
        ky = torch.arange(1, height + 1, dtype=like.dtype, device=like.device)
        kx = torch.arange(1, width + 1, dtype=like.dtype, device=like.device)
        ly = 2 - 2 * torch.cos(torch.pi * ky / (height + 1))
        lx = 2 - 2 * torch.cos(torch.pi * kx / (width + 1))
        scale = 4.0 / ((height + 1) * (width + 1))
        self.gain = scale / (ly[:, None] + lx[None, :] + screen)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        return dst(dst(dst(dst(r, -1), -2) * self.gain, -1), -2)


def _solve(values: torch.Tensor, hole: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor,
           screen: float, iterations: int) -> torch.Tensor:
    """Preconditioned CG for the correction ``δ`` ``(C, H, W)`` (see the module docstring)."""
    h = hole.to(values.dtype)[None]
    wx = torch.maximum(h[:, :, 1:], h[:, :, :-1])
    wy = torch.maximum(h[:, 1:], h[:, :-1])
    vx, vy = forward_differences(values)
    cx, cy = (gx - vx) * wx, (gy - vy) * wy  # what the edges still ask for
    b = torch.zeros_like(values)
    b[:, :, :-1] -= cx
    b[:, :, 1:] += cx
    b[:, :-1] -= cy
    b[:, 1:] += cy
    b = b * h
    inverse = _BoxInverse(hole.shape[0], hole.shape[1], screen, values)
    x = torch.zeros_like(values)
    r = b.clone()
    z = inverse(r) * h
    p = z.clone()
    rz = (r * z).sum()
    stop = (TOLERANCE ** 2) * (b * b).sum()
    for _ in range(iterations):
        if (r * r).sum() <= stop:
            break
        ap = _laplacian(p, wx, wy, h, screen)
        alpha = rz / (p * ap).sum().clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        z = inverse(r) * h
        rz_new = (r * z).sum()
        p = z + (rz_new / rz.clamp_min(1e-30)) * p
        rz = rz_new
    return x


def reconstruct(values: torch.Tensor, hole: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor,
                screen: float = 0.0, iterations: int = 500) -> torch.Tensor:
    """Gradient-domain fill of ``hole``: see the module docstring.

    ``values``: ``(C, H, W)`` image (known pixels are kept, hole pixels are the ``v`` of the
    screening term and the starting point); ``hole``: ``(H, W)`` bool; ``gx`` ``(C, H, W-1)``
    and ``gy`` ``(C, H-1, W)``: target differences (only edges touching the hole count);
    ``screen`` ≥ 0. Returns ``(C, H, W)`` with known pixels bit-identical.
    """
    if not bool(hole.any()):
        return values.clone()
    box = _grown_box(bounding_box(hole.cpu().numpy()), hole.shape)
    ys, xs = slice(box.y0, box.y1), slice(box.x0, box.x1)
    d = _solve(values[:, ys, xs], hole[ys, xs], gx[:, ys, box.x0:box.x1 - 1],
               gy[:, box.y0:box.y1 - 1, xs], screen, iterations)
    out = values.clone()
    out[:, ys, xs] = torch.where(hole[ys, xs], values[:, ys, xs] + d, values[:, ys, xs])
    return out


def _grown_box(box: Box, shape: tuple[int, int]) -> Box:
    """``box`` grown by one pixel (the known ring the edges reach), clipped to ``shape``."""
    return Box(max(0, box.y0 - 1), min(shape[0], box.y1 + 1),
               max(0, box.x0 - 1), min(shape[1], box.x1 + 1))


def seamless_clone(image: torch.Tensor, fill: torch.Tensor, hole: torch.Tensor,
                   iterations: int = 2000) -> torch.Tensor:
    """Pérez et al.'s seamless cloning: the hole of ``image`` takes ``fill``'s gradients and
    meets ``image``'s known pixels without a seam. ``(C, H, W)``, ``(C, H, W)``, ``(H, W)``.

    Only ``fill``'s differences between two hole pixels guide the solve; an edge that crosses
    the hole's boundary asks for no step, so a fill that is off by a level at the boundary
    (a seam) is bent smoothly onto the known pixels instead of keeping the step.
    """
    gx, gy = forward_differences(fill)
    gx = gx * (hole[:, 1:] & hole[:, :-1])
    gy = gy * (hole[1:] & hole[:-1])
    start = torch.where(hole[None], fill, image)
    return reconstruct(start, hole, gx, gy, 0.0, iterations)
