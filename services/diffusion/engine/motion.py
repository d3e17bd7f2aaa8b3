"""Motion-aware noise strength (StreamDiffusionV2's idea, our formulation): how strongly each new frame is noised
before denoising. Little motion: keep the strength high (stable, fully restyled frames); fast motion: lower it so the
output follows the input and does not smear or hallucinate. Pure numpy; one instance per stream.

motion_t = mean |frame_t - frame_{t-1}| on a small grey thumbnail, in 0..1
smoothed  = EMA(motion, alpha)                      (one jumpy frame does not flicker the strength)
strength  = clamp(base - sensitivity * smoothed, min_strength, base)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THUMB = 32


def motion_between(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean absolute difference of two frames (H x W x 3 uint8, any equal size) on a 32x32 grey thumbnail, 0..1."""
    if previous.shape != current.shape:
        raise ValueError(f"frames differ in size: {previous.shape} vs {current.shape}")
    return float(np.abs(_thumb(current) - _thumb(previous)).mean())


def _thumb(frame: np.ndarray) -> np.ndarray:
    grey = frame.astype(np.float32).mean(axis=2) / 255.0
    h, w = grey.shape
    ys = (np.arange(THUMB) * h) // THUMB
    xs = (np.arange(THUMB) * w) // THUMB
    return grey[np.ix_(ys, xs)]


@dataclass
class MotionAwareStrength:
    base: float = 0.7
    min_strength: float = 0.3
    sensitivity: float = 4.0  # strength lost per unit of smoothed motion
    alpha: float = 0.3  # EMA weight of the newest frame
    _previous: np.ndarray | None = None
    _smoothed: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_strength <= self.base <= 1.0:
            raise ValueError("need 0 <= min_strength <= base <= 1")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")

    def update(self, frame: np.ndarray) -> float:
        """The strength for this frame (the first frame of a stream gets the base strength)."""
        if self._previous is not None:
            self._smoothed += self.alpha * (motion_between(self._previous, frame) - self._smoothed)
        self._previous = frame
        return float(np.clip(self.base - self.sensitivity * self._smoothed, self.min_strength, self.base))
