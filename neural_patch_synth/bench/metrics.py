"""Hole metrics in plain numpy, on pixel values scaled to ``[0, 1]``.

L1 % and L2 % follow the Context Encoders table: mean absolute and mean squared error over the
hole pixels (all channels), times 100. PSNR is over the hole pixels too (capped at 100 dB for a
perfect fill). SSIM is the standard Gaussian-window SSIM (Wang et al. 2004: σ = 1.5, 11×11
window, K1 = 0.01, K2 = 0.03, averaged over the window positions inside the region and over
channels) on the hole's bounding box, grown to at least the window size.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SIGMA = 1.5
RADIUS = 5  # int(3.5 * SIGMA + 0.5): the window skimage uses for gaussian_weights=True
WINDOW = 2 * RADIUS + 1
MAX_PSNR = 100.0


def _unit(image: np.ndarray) -> np.ndarray:
    """uint8 → float64 in [0, 1]; float input is taken as already in [0, 1]."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def _hole_errors(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if result.shape != truth.shape or result.shape[:2] != mask.shape:
        raise ValueError(f"shape mismatch: {result.shape}, {truth.shape}, mask {mask.shape}")
    if not mask.any():
        raise ValueError("the mask has no hole pixels")
    return _unit(result)[mask] - _unit(truth)[mask]


def hole_l1(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute error in the hole, × 100."""
    return float(np.abs(_hole_errors(result, truth, mask)).mean() * 100)


def hole_l2(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error in the hole, × 100."""
    return float(np.square(_hole_errors(result, truth, mask)).mean() * 100)


def hole_psnr(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 1) of the hole pixels, capped at :data:`MAX_PSNR`."""
    mse = float(np.square(_hole_errors(result, truth, mask)).mean())
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else float(-10 * np.log10(mse))


def _gaussian_filter_valid(image: np.ndarray) -> np.ndarray:
    """Normalised Gaussian window over the first two axes, only where it fits ('valid')."""
    x = np.arange(-RADIUS, RADIUS + 1)
    kernel = np.exp(-(x**2) / (2 * SIGMA**2))
    kernel /= kernel.sum()
    rows = sliding_window_view(image, WINDOW, axis=0) @ kernel
    return sliding_window_view(rows, WINDOW, axis=1) @ kernel


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Gaussian-window SSIM of two ``(H, W)`` or ``(H, W, C)`` images (each side ≥ 11).

    Equals ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1, channel_axis=-1)`` on ``[0, 1]`` values.
    """
    a, b = _unit(a), _unit(b)
    if a.shape != b.shape or min(a.shape[:2]) < WINDOW:
        raise ValueError(f"SSIM needs equal shapes with sides >= {WINDOW}, got {a.shape}, "
                         f"{b.shape}")
    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = _gaussian_filter_valid(a), _gaussian_filter_valid(b)
    var_a = _gaussian_filter_valid(a * a) - mu_a**2
    var_b = _gaussian_filter_valid(b * b) - mu_b**2
    cov = _gaussian_filter_valid(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den).mean())


def hole_box(mask: np.ndarray, minimum: int = WINDOW) -> tuple[slice, slice]:
    """Bounding box of the hole, grown around its centre to at least ``minimum`` per side
    (within the image)."""
    spans = []
    for axis, size in enumerate(mask.shape):
        idx = np.nonzero(mask.any(axis=1 - axis))[0]
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        need = min(minimum, size)
        if hi - lo < need:
            lo = min(max(0, (lo + hi - need) // 2), size - need)
            hi = lo + need
        spans.append(slice(lo, hi))
    return spans[0], spans[1]


def hole_ssim(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """SSIM on the hole's bounding box (see :func:`hole_box`)."""
    box = hole_box(mask)
    return ssim(result[box], truth[box])


def hole_metrics(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """``l1``, ``l2`` (%), ``psnr`` (dB) and ``ssim`` of a filled image against the truth."""
    return {"l1": hole_l1(result, truth, mask), "l2": hole_l2(result, truth, mask),
            "psnr": hole_psnr(result, truth, mask), "ssim": hole_ssim(result, truth, mask)}
