"""The processing steps as pure functions over decoded frames and telemetry (no I/O).

ALIGN, SPLICE and CLEAN live in align.py, splice.py and clean.py; these are the shared bits around them.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from scalediffusion import imaging
from scalediffusion.v1 import processor_pb2, telemetry_pb2

# Dataset frames are FRAME_WIDTH wide and keep the source's aspect (640x360 -> 256x144): squashing a 16:9 frame to a
# square shrank it 2.5x across and erased what a policy needs to see at a distance (a signal's lamp, a kerb's edge).
FRAME_WIDTH = 256
JPEG_QUALITY = 90
SPEED_BIN_EDGES = (0.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 1e9)  # m/s
TELEMETRY_SCHEMA_VERSIONS = frozenset({1})
# The game's dash camera sits 1.3 m above the road, its chase camera 3.0 m (clients/web/src/sim/camera.ts).
DASH_MAX_HEIGHT_M = 2.0


class InputRejected(ValueError):
    """The session's inputs cannot produce any segment; `reason` is a processor_pb2.RejectionReason value."""

    def __init__(self, reason: processor_pb2.RejectionReason, metric: str, detail: str, value: float = 0.0, threshold: float = 0.0) -> None:
        super().__init__(detail)
        self.reason = reason
        self.metric = metric
        self.detail = detail
        self.value, self.threshold = value, threshold


def parse_telemetry(data: bytes) -> telemetry_pb2.Telemetry:
    """Parses telemetry.pb, raising ValueError with the reason when it is unusable."""
    telemetry = telemetry_pb2.Telemetry()
    try:
        telemetry.ParseFromString(data)
    except Exception as err:  # noqa: BLE001 - protobuf raises DecodeError and, for some inputs, others
        raise ValueError(f"telemetry.pb does not parse: {err}") from None
    if telemetry.schema_version not in TELEMETRY_SCHEMA_VERSIONS:
        raise ValueError(f"telemetry schema_version {telemetry.schema_version} is not one of {sorted(TELEMETRY_SCHEMA_VERSIONS)}")
    if not telemetry.ticks:
        raise ValueError("telemetry has no ticks")
    times = [t.t_ms for t in telemetry.ticks]
    if any(b < a for a, b in zip(times, times[1:])):
        raise ValueError("telemetry tick timestamps go backwards")
    return telemetry


def normalize_timestamps(raw_ms: list[float], fps_hint: float) -> list[float]:
    """Frame times in ms, made strictly increasing: a decoder time that does not advance (0, repeated or going
    back, which happens on MediaRecorder webm) is replaced by the previous time plus one nominal frame."""
    step = 1000.0 / fps_hint if fps_hint > 0 else 1000.0 / 30.0
    out: list[float] = []
    for t in raw_ms:
        if out and not (t > out[-1]):
            t = out[-1] + step
        out.append(float(t))
    return out


def encode_jpeg(image_bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes (deterministic for the same pixels)."""
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def frame_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) of the dataset frame for a source frame: FRAME_WIDTH wide, the height keeping the source's
    aspect rounded to an even number of pixels (640x360 -> 256x144, 1280x720 -> 256x144, 512x512 -> 256x256)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size {width}x{height} must be positive")
    return FRAME_WIDTH, max(2, 2 * round(FRAME_WIDTH * height / width / 2))


def downscale(frame_bgr: np.ndarray) -> np.ndarray:
    """The dataset frame (frame_size), anti-aliased (scalediffusion.imaging.downscale: the same resize whatever drives
    a policy applies at run time). It is the largest per-frame cost after decoding, and decoding already uses both
    cores."""
    width, height = frame_size(frame_bgr.shape[1], frame_bgr.shape[0])
    return imaging.downscale(frame_bgr, width, height)


def resize_and_encode(frame_bgr: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """Downscales a decoded frame to its dataset size and encodes it as JPEG (deterministic)."""
    return encode_jpeg(downscale(frame_bgr), quality)


def nearest_index(times: list[float], t: float) -> int:
    """Index of the value in sorted `times` closest to t."""
    i = bisect.bisect_left(times, t)
    if i == 0:
        return 0
    if i == len(times):
        return len(times) - 1
    return i if times[i] - t < t - times[i - 1] else i - 1


@dataclass
class SegmentSummary:
    frame_count: int
    duration_s: float
    distance_m: float
    command_counts: dict[int, int] = field(default_factory=dict)
    speed_hist: list[int] = field(default_factory=list)


def summarize(measurements: list[dict]) -> SegmentSummary:
    distance = 0.0
    for a, b in zip(measurements, measurements[1:]):
        distance += float(np.hypot(b["x"] - a["x"], b["y"] - a["y"]))
    counts = Counter(m["command"] for m in measurements)
    hist, _ = np.histogram([m["speed"] for m in measurements], bins=SPEED_BIN_EDGES)
    duration = (measurements[-1]["timestamp_ms"] - measurements[0]["timestamp_ms"]) / 1000.0 if measurements else 0.0
    return SegmentSummary(
        frame_count=len(measurements),
        duration_s=round(duration, 3),
        distance_m=round(distance, 3),
        command_counts={int(k): int(v) for k, v in sorted(counts.items())},
        speed_hist=[int(c) for c in hist],
    )


def camera_info(ticks: Sequence[telemetry_pb2.TelemetryTick], sizes: Sequence[tuple[int, int]]) -> dict:
    """The source camera of a segment for the dataset index: the decoded frame size (the most common of `sizes`,
    (width, height) per frame), the median vertical FOV of the ticks that set one, dash or chase by the camera's
    height (majority of `ticks`, one per frame: the tick its image was rendered at), and how frames were resized."""
    width, height = Counter(sizes).most_common(1)[0][0] if sizes else (0, 0)
    resize_width, resize_height = frame_size(width, height) if width and height else (FRAME_WIDTH, FRAME_WIDTH)
    fovs = [t.camera.fov_deg for t in ticks if t.camera.fov_deg > 0]
    dash = sum(t.camera.position.z < DASH_MAX_HEIGHT_M for t in ticks)
    return {
        "width": int(width),
        "height": int(height),
        "vertical_fov_deg": round(float(statistics.median(fovs)), 3) if fovs else 0.0,
        "mode": "dash" if 2 * dash >= len(ticks) else "chase",  # a tie (or no ticks) counts as dash
        "resize": {"width": resize_width, "height": resize_height, "keep_aspect": True, "method": "processor.downscale"},
    }
