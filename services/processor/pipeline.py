"""The processing steps as pure functions over decoded frames and telemetry (no I/O).

Walking-skeleton depth: each frame takes the latest telemetry tick at or before its timestamp, and the session is
cut into fixed-length segments. RTT-aware alignment, gap-aware splicing and quality cleaning replace these with
the processor issue; the signatures stay.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from scalediffusion.v1 import common_pb2, telemetry_pb2

FRAME_SIZE = 256
JPEG_QUALITY = 90
SPEED_BIN_EDGES = (0.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 1e9)  # m/s
TELEMETRY_SCHEMA_VERSIONS = frozenset({1})


class InputRejected(ValueError):
    """The session's inputs cannot produce any segment; `reason` is a processor_pb2.RejectionReason value."""

    def __init__(self, reason: int, metric: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.metric = metric
        self.detail = detail


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


def resize_and_encode(frame_bgr: np.ndarray, size: int = FRAME_SIZE, quality: int = JPEG_QUALITY) -> bytes:
    """Resizes a decoded frame to size x size (area interpolation) and encodes it as JPEG (deterministic)."""
    small = cv2.resize(frame_bgr, (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def tick_at(ticks: list[telemetry_pb2.TelemetryTick], tick_times: list[float], t_ms: float) -> telemetry_pb2.TelemetryTick:
    """The latest tick at or before t_ms (the first tick for frames before it)."""
    i = bisect.bisect_right(tick_times, t_ms) - 1
    return ticks[max(i, 0)]


def frame_measurement(frame_index: int, t_ms: float, tick: telemetry_pb2.TelemetryTick) -> dict:
    command = tick.command or common_pb2.ROAD_OPTION_LANEFOLLOW
    return {
        "frame": frame_index,
        "timestamp_ms": round(t_ms, 3),
        "x": round(tick.vehicle.x, 4),
        "y": round(tick.vehicle.y, 4),
        "theta": round(tick.vehicle.theta, 6),
        "speed": round(tick.vehicle.speed, 4),
        "steer": round(tick.controls.steer, 5),
        "throttle": round(tick.controls.throttle, 5),
        "brake": round(tick.controls.brake, 5),
        "command": int(command),
    }


def split_fixed(timestamps_ms: list[float], segment_s: float, min_segment_s: float) -> list[tuple[int, int]]:
    """[start, end) frame ranges of consecutive segment_s windows; a tail shorter than min_segment_s is dropped."""
    if not timestamps_ms:
        return []
    ranges: list[tuple[int, int]] = []
    start = 0
    for i, t in enumerate(timestamps_ms):
        if t - timestamps_ms[start] >= segment_s * 1000.0:
            ranges.append((start, i))
            start = i
    tail_s = (timestamps_ms[-1] - timestamps_ms[start]) / 1000.0
    if tail_s >= min_segment_s:
        ranges.append((start, len(timestamps_ms)))
    return ranges


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
