"""CLEAN: the quality filter over spliced segments. Pure: frames and measurements in, metrics and failures out.

Two levels:
- per frame, `frame_metrics` measures sharpness, brightness, saturation and change from the previous frame, and
  `frame_flags` says which frame-level reasons (BLUR, FROZEN, BLACK, BLOWN_OUT, FLICKER) a frame fails;
- per segment, `evaluate_segment` turns those into failures by bad-frame fraction, and adds the driving checks
  (NO_INPUT for AFK play, IMPLAUSIBLE_MOTION for speeds, accelerations and position steps no car makes).

Every failure is machine-readable: the reason, the failing metric, its value, the threshold it crossed and the frame
span it is about. A segment with no failures is accepted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

import cv2
import numpy as np

# Reasons in the order evaluate_segment reports them.
REASONS = ("BLUR", "FROZEN", "BLACK", "BLOWN_OUT", "FLICKER", "NO_INPUT", "IMPLAUSIBLE_MOTION")
FRAME_REASONS = REASONS[:5]

SATURATED_LEVEL = 250  # gray level counted as saturated (blown highlights)
IDLE_INPUT = 0.02  # |steer|, |throttle|, |brake| below this is "no input"
IDLE_SPEED_MPS = 0.3  # |speed| below this is standing still
# Acceleration and position steps are measured between a frame and the first frame at least this much later, not
# between neighbours: each frame holds the latest telemetry tick at or before it, and frame times jitter, so one
# 33 ms frame step can carry a whole tick's change of speed (a real 8 m/s^2 brake reads 24 m/s^2 frame to frame with
# 10 Hz ticks). Over a window W a held tick of period T inflates dv/dt by at most (1 + T/W): 1.13x at the game's
# 30 Hz, 1.4x at 10 Hz. A one-frame speed glitch of d m/s still reads as d/W (a 20 m/s glitch is 80 m/s^2).
MOTION_WINDOW_S = 0.25

_FRACTION_FIELDS = ("blown_max_saturated", "max_bad_fraction", "afk_max_fraction")
_LUMA_FIELDS = ("black_max_luma", "blown_min_luma")


@dataclass(frozen=True)
class CleanThresholds:
    """Where CLEAN draws its lines. Image values are on 0-255 gray of the dataset frames (256 wide); motion is SI."""

    min_blur: float = 60.0  # variance of the Laplacian of the gray frame; below = blurry (synthetic VP8 frames: ~130-190)
    frozen_max_diff: float = 0.6  # mean |frame - previous| in gray levels; below = frozen/duplicate frame
    black_max_luma: float = 18.0  # mean gray level; below = black frame
    blown_min_luma: float = 235.0  # mean gray level; above = blown out ...
    blown_max_saturated: float = 0.6  # ... or more than this fraction (0-1) of pixels at gray >= 250
    flicker_max_jump: float = 35.0  # |mean gray - previous mean gray|; above = flicker / diffusion artifact
    max_bad_fraction: float = 0.2  # (0-1) a segment fails a frame reason when more than this fraction of frames fail it
    afk_max_fraction: float = 0.8  # (0-1) a segment is AFK when more than this fraction of frames are idle
    max_speed_mps: float = 60.0  # m/s (216 km/h); faster is not driving
    max_accel_mps2: float = 15.0  # m/s^2, |dv/dt| over MOTION_WINDOW_S (a car brakes at ~10)
    max_position_slack_m: float = 3.0  # m a step may move beyond max speed * dt (teleports are cut before CLEAN)

    @classmethod
    def from_json(cls, text: str) -> CleanThresholds:
        """Defaults with the overrides in a JSON object, e.g. '{"min_blur": 30}'.

        Raises:
            ValueError: not a JSON object, an unknown key, a value that is not a finite number, or (from validate)
                an out-of-range value; the message names the key.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"clean thresholds are not JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError("clean thresholds must be a JSON object")
        known = {f.name for f in fields(cls)}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"unknown clean threshold {key!r} (known: {', '.join(sorted(known))})")
            # bool is an int in Python, but "true" is not a threshold; a huge int overflows float.
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(_to_float(value)):
                raise ValueError(f"clean threshold {key!r} must be a finite number, got {value!r}")
        thresholds = cls(**{k: float(v) for k, v in data.items()})
        thresholds.validate()
        return thresholds

    def validate(self) -> None:
        """Raises ValueError naming the field when a value is negative, not finite, out of its range or inverted."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(_to_float(value)):
                raise ValueError(f"clean threshold {f.name} must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"clean threshold {f.name} must not be negative, got {value}")
        for name in _FRACTION_FIELDS:
            if getattr(self, name) > 1:
                raise ValueError(f"clean threshold {name} is a fraction and must be at most 1, got {getattr(self, name)}")
        for name in _LUMA_FIELDS:
            if getattr(self, name) > 255:
                raise ValueError(f"clean threshold {name} is a gray level and must be at most 255, got {getattr(self, name)}")
        if self.black_max_luma >= self.blown_min_luma:
            raise ValueError(
                f"clean thresholds black_max_luma ({self.black_max_luma}) and blown_min_luma ({self.blown_min_luma}) "
                "are inverted: black must be below blown out"
            )


def _to_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class FrameMetrics:
    """What CLEAN measures on one frame (gray levels 0-255)."""

    blur: float  # variance of the Laplacian (cv2.Laplacian CV_64F on gray); low = blurry or flat
    luma: float  # mean gray
    saturated: float  # fraction (0-1) of gray >= SATURATED_LEVEL
    diff_prev: float  # mean |gray - previous gray|; nan for the first frame of a session
    luma_jump: float  # |luma - previous luma|; nan for the first frame of a session


@dataclass(frozen=True)
class Failure:
    """One reason a segment is rejected, machine-readable."""

    reason: str  # one of REASONS
    metric: str  # e.g. "blur_bad_fraction", "max_speed_mps", "max_accel_mps2", "position_jump_m", "afk_fraction"
    value: float
    threshold: float
    start_frame: int  # frame span within the segment the failure is about: inclusive start ...
    end_frame: int  # ... exclusive end
    detail: str  # one human sentence


def to_gray(frame_bgr: np.ndarray) -> np.ndarray:
    """The frame as 2-D uint8 gray. Accepts BGR, BGRA, single-channel (H, W, 1) and already-gray (H, W) frames;
    non-uint8 input is taken as 0-255 values, rounded and clipped.

    Raises:
        ValueError: an empty frame or an unsupported shape.
    """
    frame = np.asarray(frame_bgr)
    if frame.size == 0:
        raise ValueError("empty frame")
    if frame.dtype != np.uint8:
        frame = np.clip(np.rint(np.nan_to_num(frame.astype(np.float64))), 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3:
        channels = frame.shape[2]
        if channels == 1:
            return frame[:, :, 0]
        if channels == 3:
            return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if channels == 4:
            return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"cannot make gray from a frame of shape {frame.shape}")


def frame_metrics(gray: np.ndarray, prev_gray: np.ndarray | None) -> FrameMetrics:
    """Metrics of one gray frame against the previous gray frame of the session (None for the first).

    OpenCV does the per-pixel work, so a 256-wide frame takes well under a millisecond.

    Raises:
        ValueError: the frame is not 2-D or is empty, or prev_gray has a different shape.
    """
    gray = _as_gray_u8(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"frame_metrics needs a non-empty 2-D gray frame, got shape {gray.shape}")
    _, std = cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_64F))
    blur = float(std[0, 0]) ** 2
    luma = float(cv2.mean(gray)[0])
    saturated = float(np.count_nonzero(gray >= SATURATED_LEVEL)) / gray.size
    if prev_gray is None:
        return FrameMetrics(blur=blur, luma=luma, saturated=saturated, diff_prev=math.nan, luma_jump=math.nan)
    prev = _as_gray_u8(prev_gray)
    if prev.shape != gray.shape:
        raise ValueError(f"previous frame shape {prev.shape} differs from frame shape {gray.shape}")
    diff_prev = float(cv2.mean(cv2.absdiff(gray, prev))[0])
    luma_jump = abs(luma - float(cv2.mean(prev)[0]))
    return FrameMetrics(blur=blur, luma=luma, saturated=saturated, diff_prev=diff_prev, luma_jump=luma_jump)


def _as_gray_u8(gray: np.ndarray) -> np.ndarray:
    gray = np.asarray(gray)
    if gray.dtype != np.uint8:
        gray = np.clip(np.rint(np.nan_to_num(gray.astype(np.float64))), 0, 255).astype(np.uint8)
    return gray


def frame_flags(m: FrameMetrics, t: CleanThresholds) -> set[str]:
    """The frame-level reasons this frame fails. Each reason is judged on its own (a black frame is also flat, so
    it is BLUR too); a NaN metric (first frame) never fails."""
    flags: set[str] = set()
    # Comparisons with NaN are False, so NaN metrics fall through every test below.
    if m.blur < t.min_blur:
        flags.add("BLUR")
    if m.diff_prev < t.frozen_max_diff:
        flags.add("FROZEN")
    if m.luma < t.black_max_luma:
        flags.add("BLACK")
    if m.luma > t.blown_min_luma or m.saturated > t.blown_max_saturated:
        flags.add("BLOWN_OUT")
    if m.luma_jump > t.flicker_max_jump:
        flags.add("FLICKER")
    return flags


FROZEN_MIN_SPEED_MPS = 0.5  # below this the car stands still and an unchanged frame is expected

_FRAME_REASON_TEXT = {
    "BLUR": "are blurry (Laplacian variance below min_blur)",
    "FROZEN": "are frozen while the car moves (mean difference to the previous frame below frozen_max_diff)",
    "BLACK": "are black (mean luma below black_max_luma)",
    "BLOWN_OUT": "are blown out (mean luma above blown_min_luma or too many saturated pixels)",
    "FLICKER": "flicker (mean luma jumps more than flicker_max_jump from the previous frame)",
}


def evaluate_segment(metrics: list[FrameMetrics], measurements: list[dict], t: CleanThresholds) -> list[Failure]:
    """The reasons a segment is rejected, in REASONS order ([] for a good segment).

    metrics: one FrameMetrics per frame of the segment. measurements: one dict per frame with timestamp_ms, x, y,
    theta, speed, steer, throttle, brake, command. Frame fractions are over all frames of the segment; an empty
    list contributes no failure.
    """
    failures: list[Failure] = []
    failures.extend(_frame_failures(metrics, t, [abs(_num(m, "speed")) for m in measurements]))
    failures.extend(_idle_failures(measurements, t))
    failures.extend(_motion_failures(measurements, t))
    return failures


def _frame_failures(metrics: Sequence[FrameMetrics], t: CleanThresholds, speeds: Sequence[float] = ()) -> list[Failure]:
    n = len(metrics)
    if n == 0:
        return []
    bad: dict[str, list[int]] = {reason: [] for reason in FRAME_REASONS}
    for i, m in enumerate(metrics):
        for reason in frame_flags(m, t):
            # An unchanged view is what a car waiting at a red light sees: a frame is frozen only while the car
            # moves (the recorder stalled). Waiting is the data a policy most needs to learn.
            if reason == "FROZEN" and i < len(speeds) and not speeds[i] > FROZEN_MIN_SPEED_MPS:
                continue
            bad[reason].append(i)
    failures = []
    for reason in FRAME_REASONS:
        frames = bad[reason]
        fraction = len(frames) / n
        if fraction > t.max_bad_fraction:
            failures.append(
                Failure(
                    reason=reason,
                    metric=f"{reason.lower()}_bad_fraction",
                    value=fraction,
                    threshold=t.max_bad_fraction,
                    start_frame=frames[0],
                    end_frame=frames[-1] + 1,
                    detail=f"{len(frames)} of {n} frames ({fraction:.0%}) {_FRAME_REASON_TEXT[reason]}, "
                    f"more than the {t.max_bad_fraction:.0%} allowed.",
                )
            )
    return failures


def _num(m: dict, key: str) -> float:
    """A measurement value as float; a value that is not a number reads as NaN, which fails no comparison."""
    try:
        return float(m[key])
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _idle_failures(measurements: Sequence[dict], t: CleanThresholds) -> list[Failure]:
    n = len(measurements)
    if n == 0:
        return []
    idle = [
        i
        for i, m in enumerate(measurements)
        if abs(_num(m, "steer")) < IDLE_INPUT
        and abs(_num(m, "throttle")) < IDLE_INPUT
        and abs(_num(m, "brake")) < IDLE_INPUT
        and abs(_num(m, "speed")) < IDLE_SPEED_MPS
    ]
    fraction = len(idle) / n
    if fraction <= t.afk_max_fraction:
        return []
    return [
        Failure(
            reason="NO_INPUT",
            metric="afk_fraction",
            value=fraction,
            threshold=t.afk_max_fraction,
            start_frame=idle[0],
            end_frame=idle[-1] + 1,
            detail=f"{len(idle)} of {n} frames ({fraction:.0%}) have no steering, throttle or brake and the car "
            f"stands still, more than the {t.afk_max_fraction:.0%} allowed for an AFK player.",
        )
    ]


def _motion_pairs(times_s: Sequence[float]) -> list[tuple[int, int]]:
    """(i, j) frame pairs to difference: j is the first frame at least MOTION_WINDOW_S after i. When the whole
    segment is shorter than the window, its first and last frame (if time advances between them)."""
    n = len(times_s)
    pairs: list[tuple[int, int]] = []
    for i in range(n - 1):
        for j in range(i + 1, n):
            # Non-advancing (or NaN) times are skipped, so dt > 0 for every pair.
            if times_s[j] - times_s[i] >= MOTION_WINDOW_S:
                pairs.append((i, j))
                break
        else:
            break  # no later frame is a window away from i; none will be from later frames of ordered times
    if not pairs and n >= 2 and times_s[-1] - times_s[0] > 0:
        pairs.append((0, n - 1))
    return pairs


def _motion_failures(measurements: Sequence[dict], t: CleanThresholds) -> list[Failure]:
    n = len(measurements)
    if n == 0:
        return []
    failures: list[Failure] = []
    speeds = [abs(_num(m, "speed")) for m in measurements]  # reversing counts as speed too

    too_fast = [i for i, v in enumerate(speeds) if v > t.max_speed_mps]
    if too_fast:
        top = max(speeds[i] for i in too_fast)
        failures.append(
            Failure(
                reason="IMPLAUSIBLE_MOTION",
                metric="max_speed_mps",
                value=top,
                threshold=t.max_speed_mps,
                start_frame=too_fast[0],
                end_frame=too_fast[-1] + 1,
                detail=f"{len(too_fast)} frames report a speed above {t.max_speed_mps:g} m/s, up to {top:.1f} m/s.",
            )
        )

    # Poses and speeds are the game state at each picture's render time, so motion is judged on that clock.
    times_s = [_num(m, "render_ms" if "render_ms" in m else "timestamp_ms") / 1000.0 for m in measurements]
    pairs = _motion_pairs(times_s)

    accel_bad: list[tuple[int, int, float]] = []
    for i, j in pairs:
        accel = abs(_num(measurements[j], "speed") - _num(measurements[i], "speed")) / (times_s[j] - times_s[i])
        if accel > t.max_accel_mps2:
            accel_bad.append((i, j, accel))
    if accel_bad:
        i, j, top = max(accel_bad, key=lambda b: b[2])
        failures.append(
            Failure(
                reason="IMPLAUSIBLE_MOTION",
                metric="max_accel_mps2",
                value=top,
                threshold=t.max_accel_mps2,
                start_frame=accel_bad[0][0],
                end_frame=accel_bad[-1][1] + 1,
                detail=f"speed changes at up to {top:.1f} m/s^2 (frames {i}-{j}), above the {t.max_accel_mps2:g} m/s^2 "
                "a car can brake or accelerate.",
            )
        )

    jump_bad: list[tuple[int, int, float, float, float]] = []
    for i, j in pairs:
        dt = times_s[j] - times_s[i]
        dist = math.hypot(_num(measurements[j], "x") - _num(measurements[i], "x"), _num(measurements[j], "y") - _num(measurements[i], "y"))
        # The fastest speed reported anywhere in the window bounds how far the car may have gone.
        vmax = max((v for v in speeds[i : j + 1] if not math.isnan(v)), default=0.0)
        unexplained = dist - vmax * dt
        if unexplained > t.max_position_slack_m:
            jump_bad.append((i, j, unexplained, dist, dt))
    if jump_bad:
        i, j, top, dist, dt = max(jump_bad, key=lambda b: b[2])
        failures.append(
            Failure(
                reason="IMPLAUSIBLE_MOTION",
                metric="position_jump_m",
                value=top,
                threshold=t.max_position_slack_m,
                start_frame=jump_bad[0][0],
                end_frame=jump_bad[-1][1] + 1,
                detail=f"the car moves {dist:.1f} m in {dt * 1000:.0f} ms (frames {i}-{j}), {top:.1f} m more than its "
                f"reported speed explains (slack {t.max_position_slack_m:g} m).",
            )
        )
    return failures
