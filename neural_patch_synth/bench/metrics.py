"""Hole metrics in plain numpy, on pixel values scaled to ``[0, 1]``.

L1 % and L2 % follow the Context Encoders table: mean absolute and mean squared error over the
hole pixels (all channels), times 100. PSNR is over the hole pixels too (capped at 100 dB for a
perfect fill). SSIM is the standard Gaussian-window SSIM (Wang et al. 2004: σ = 1.5, 11×11
window, K1 = 0.01, K2 = 0.03, averaged over the window positions inside the region and over
channels) on the hole's bounding box, grown to at least the window size.

PSNR rewards blur, so three measures that see texture stand next to it:

- *sharpness ratio*: RMS of the band-pass (gray image minus its Gaussian blur, σ = 1 px) inside
  the hole eroded by 3 px, fill over truth (1 = as sharp as the photo, < 1 blurred, > 1 noisy);
- *patch SWD*: sliced Wasserstein distance between the 7×7 RGB patches (each patch's mean
  removed) lying wholly inside the hole, fill against truth (≤ 4,000 patches, 256 random unit
  projections, mean absolute difference of the sorted projections, × 100), at full and at half
  resolution;
- *saturation ratio*: mean HSV saturation of the fill over the truth's, in the hole (a grey
  fill scores well below 1).

And one that sees the seam: *seam error*, the mean absolute gradient error across the hole's
boundary: for every 4-neighbour edge between a known and a filled pixel, |step in the result −
step in the truth|, averaged over edges and channels, × 100 (0 = the fill meets the photo as
the truth does).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

SIGMA = 1.5
RADIUS = 5  # int(3.5 * SIGMA + 0.5): the window skimage uses for gaussian_weights=True
WINDOW = 2 * RADIUS + 1
MAX_PSNR = 100.0
BAND_SIGMA = 1.0
"""σ (px) of the Gaussian blur whose residual is the band-pass of the sharpness ratio."""
ERODE = 3
"""Pixels eroded off the hole before the sharpness ratio (the seam is not texture)."""
SWD_PATCH, SWD_PATCHES, SWD_PROJECTIONS = 7, 4000, 256


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


def _gray(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` → ``(H, W)`` Rec. 601 luma in [0, 1]."""
    return _unit(image) @ np.array([0.299, 0.587, 0.114])


def band_pass_rms(image: np.ndarray, region: np.ndarray) -> float:
    """RMS of gray minus its Gaussian blur (σ = :data:`BAND_SIGMA`) over ``region`` ``(H, W)``."""
    gray = _gray(image)
    band = gray - ndimage.gaussian_filter(gray, BAND_SIGMA, mode="reflect")
    return float(np.sqrt(np.mean(np.square(band[region]))))


def sharpness_ratio(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Band-pass RMS of the fill over the truth's, inside the hole eroded by :data:`ERODE` px
    (the whole hole if erosion leaves nothing). 1 = as sharp as the photo, < 1 blurred."""
    region = ndimage.binary_erosion(mask, np.ones((2 * ERODE + 1,) * 2, bool))
    region = region if region.any() else mask
    truth_rms = band_pass_rms(truth, region)
    return band_pass_rms(result, region) / max(truth_rms, 1e-8)


def _inner_patches(image: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``(N, 7·7·3)`` patches with top-left corners ``positions`` ``(N, 2)``, means removed."""
    win = sliding_window_view(image, (SWD_PATCH, SWD_PATCH), axis=(0, 1))  # (h, w, 3, 7, 7)
    patches = win[positions[:, 0], positions[:, 1]].reshape(len(positions), -1)
    return patches - patches.mean(axis=1, keepdims=True)


def patch_swd(result: np.ndarray, truth: np.ndarray, mask: np.ndarray, half: bool = False,
              seed: int = 0) -> float:
    """Sliced Wasserstein distance (× 100) between the fill's and the truth's 7×7 RGB patches
    lying wholly inside the hole; ``half``: at half resolution (2×2 means; a half-size pixel
    is a hole when its four pixels are). NaN when no patch fits in the hole."""
    a, b, m = _unit(result), _unit(truth), np.asarray(mask, bool)
    if half:
        h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
        a = a[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
        b = b[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
        m = m[:h, :w].reshape(h // 2, 2, w // 2, 2).all(axis=(1, 3))
    inside = sliding_window_view(m, (SWD_PATCH, SWD_PATCH)).all(axis=(2, 3))
    positions = np.argwhere(inside)
    if len(positions) == 0:
        return float("nan")
    rng = np.random.default_rng(seed)
    if len(positions) > SWD_PATCHES:
        positions = positions[rng.choice(len(positions), SWD_PATCHES, replace=False)]
    pa, pb = _inner_patches(a, positions), _inner_patches(b, positions)
    directions = rng.normal(size=(pa.shape[1], SWD_PROJECTIONS))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    proj_a, proj_b = np.sort(pa @ directions, axis=0), np.sort(pb @ directions, axis=0)
    return float(np.abs(proj_a - proj_b).mean() * 100)


def _saturation(image: np.ndarray, region: np.ndarray) -> float:
    px = _unit(image)[region]
    top = px.max(axis=1)
    return float(np.mean((top - px.min(axis=1)) / np.maximum(top, 1e-8)))


def saturation_ratio(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean HSV saturation of the fill over the truth's, in the hole (1 = as colourful)."""
    return _saturation(result, mask) / max(_saturation(truth, mask), 1e-8)


def seam_error(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean |step in ``result`` − step in ``truth``| over the edges between a known and a hole
    pixel of ``mask`` ``(H, W)`` (all channels), × 100; NaN when the hole has no known
    neighbour."""
    a, b, m = _unit(result), _unit(truth), np.asarray(mask, bool)
    errors = []
    for axis in (0, 1):
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        crossing = m[lo] != m[hi]
        step = (a[hi] - a[lo]) - (b[hi] - b[lo])
        errors.append(np.abs(step[crossing]).ravel())
    err = np.concatenate(errors)
    return float(err.mean() * 100) if len(err) else float("nan")


def hole_metrics(result: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """``l1``, ``l2`` (%), ``psnr`` (dB), ``ssim``, ``sharpness``, ``swd``, ``swd_half``,
    ``saturation`` and ``seam`` of a filled image against the truth (see the module
    docstring)."""
    return {"l1": hole_l1(result, truth, mask), "l2": hole_l2(result, truth, mask),
            "psnr": hole_psnr(result, truth, mask), "ssim": hole_ssim(result, truth, mask),
            "sharpness": sharpness_ratio(result, truth, mask),
            "swd": patch_swd(result, truth, mask), "swd_half": patch_swd(result, truth, mask, True),
            "saturation": saturation_ratio(result, truth, mask),
            "seam": seam_error(result, truth, mask)}
