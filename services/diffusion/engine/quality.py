"""Image quality of repainted frames against their targets: PSNR and SSIM on uint8 RGB frames. Pure numpy.

SSIM is Wang et al. 2004 with the paper's settings: an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
data range 255, population (not sample) covariances, computed per channel and averaged over the valid (unpadded)
region and the channels. PSNR is over all pixels and channels of the frame.
"""

from __future__ import annotations

import numpy as np

_K1, _K2, _SIGMA, _RADIUS = 0.01, 0.03, 1.5, 5


def _check(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected two RGB frames of one size [H, W, 3], got {a.shape} and {b.shape}")
    if a.shape[0] <= 2 * _RADIUS or a.shape[1] <= 2 * _RADIUS:
        raise ValueError(f"frames must be larger than the {2 * _RADIUS + 1}-pixel SSIM window, got {a.shape[:2]}")


def psnr(output: np.ndarray, target: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB (data range 255); inf for identical frames."""
    _check(output, target)
    mse = float(np.mean((output.astype(np.float64) - target.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def _gaussian_kernel() -> np.ndarray:
    x = np.arange(-_RADIUS, _RADIUS + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * _SIGMA**2))
    return k / k.sum()


def _filter_valid(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of [H, W, C] with a 1-D kernel along H then W."""
    n = len(kernel)
    rows = sum(kernel[i] * image[i:image.shape[0] - n + 1 + i] for i in range(n))
    return sum(kernel[i] * rows[:, i:rows.shape[1] - n + 1 + i] for i in range(n))


def ssim(output: np.ndarray, target: np.ndarray) -> float:
    """Structural similarity in [-1, 1]; 1 for identical frames."""
    _check(output, target)
    x, y = output.astype(np.float64), target.astype(np.float64)
    kernel = _gaussian_kernel()
    mu_x, mu_y = _filter_valid(x, kernel), _filter_valid(y, kernel)
    var_x = _filter_valid(x * x, kernel) - mu_x**2
    var_y = _filter_valid(y * y, kernel) - mu_y**2
    cov = _filter_valid(x * y, kernel) - mu_x * mu_y
    c1, c2 = (_K1 * 255.0) ** 2, (_K2 * 255.0) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())
