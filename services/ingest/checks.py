"""What CompleteSession verifies about the uploaded telemetry, and whether telemetry and video can belong
together. Pure: bytes and numbers in, CheckFailed out.

Two kinds of failure:
- CheckFailed from check_telemetry: the request is bad (INVALID_ARGUMENT); the session stays CREATED so a fixed
  client can upload again.
- CheckFailed from check_consistency: the upload cannot be genuine play; the session is REJECTED for good.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalediffusion.v1 import common_pb2, telemetry_pb2
from scalediffusion.webm import WebmInfo
from services.ingest.sessions import CheckFailed

SCHEMA_VERSIONS = frozenset({1})
ROAD_OPTIONS = frozenset(common_pb2.RoadOption.values())


@dataclass(frozen=True)
class TelemetryLimits:
    min_duration_s: float = 1.0  # shorter sessions cannot make a segment
    max_duration_s: float = 300.0  # a session is one minute by default; five is generous
    min_tick_hz: float = 5.0  # the game ticks at 30-120 Hz
    max_tick_hz: float = 1000.0
    max_speed_mps: float = 90.0  # ~320 km/h: faster is not driving
    max_abs_coordinate_m: float = 1e6
    max_rtt_ms: float = 60_000.0
    max_recording_overrun_ms: float = 5_000.0  # the recorder may stop this long after the last tick
    max_video_side_px: int = 4096
    max_video_fps: float = 240.0
    # Consistency between telemetry and video:
    duration_tolerance_s: float = 2.0  # recorder start/stop vs first/last tick
    duration_tolerance_frac: float = 0.1
    min_frame_rate: float = 2.0  # frames per second of telemetry time
    frame_rate_slack: float = 1.25  # frames may not exceed the declared fps by more than this factor


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def check_telemetry(data: bytes, session_id: str, limits: TelemetryLimits) -> telemetry_pb2.Telemetry:
    """Parses and sanity-checks telemetry.pb.

    Raises:
        CheckFailed: check names telemetry_parse, telemetry_schema, telemetry_session, telemetry_geometry,
            telemetry_empty, telemetry_time, telemetry_duration, telemetry_rate, telemetry_controls,
            telemetry_vehicle, telemetry_camera, telemetry_command, telemetry_rtt, telemetry_recording,
            telemetry_frames.
    """
    telemetry = telemetry_pb2.Telemetry()
    try:
        telemetry.ParseFromString(data)
    except Exception as err:  # noqa: BLE001 - DecodeError, and RecursionError/ValueError on hostile input
        raise CheckFailed("telemetry_parse", f"telemetry.pb is not a Telemetry message: {type(err).__name__}") from None
    if telemetry.schema_version not in SCHEMA_VERSIONS:
        raise CheckFailed("telemetry_schema", f"telemetry schema_version {telemetry.schema_version} is not one of {sorted(SCHEMA_VERSIONS)}")
    if telemetry.session_id and telemetry.session_id != session_id:
        raise CheckFailed("telemetry_session", f"telemetry is for session {telemetry.session_id[:40]!r}, not {session_id}")
    w, h, fps = telemetry.video_width, telemetry.video_height, telemetry.video_fps
    if not (0 < w <= limits.max_video_side_px and 0 < h <= limits.max_video_side_px and _finite(fps) and 0 < fps <= limits.max_video_fps):
        raise CheckFailed("telemetry_geometry", f"video geometry {w}x{h} @ {fps} fps is out of range")
    ticks = telemetry.ticks
    if len(ticks) < 2:
        raise CheckFailed("telemetry_empty", f"telemetry needs at least 2 ticks, has {len(ticks)}")
    previous = -math.inf
    for i, tick in enumerate(ticks):
        t = tick.t_ms
        if not _finite(t) or t < 0 or t <= previous:
            raise CheckFailed("telemetry_time", f"tick {i} time {t} is not finite, negative or not after the previous tick")
        previous = t
        c = tick.controls
        if not (_finite(c.steer, c.throttle, c.brake) and -1 <= c.steer <= 1 and 0 <= c.throttle <= 1 and 0 <= c.brake <= 1):
            raise CheckFailed("telemetry_controls", f"tick {i} controls out of range (steer [-1,1], throttle/brake [0,1])")
        v = tick.vehicle
        if not (_finite(v.x, v.y, v.theta, v.speed) and abs(v.x) <= limits.max_abs_coordinate_m and abs(v.y) <= limits.max_abs_coordinate_m):
            raise CheckFailed("telemetry_vehicle", f"tick {i} vehicle position is not finite or out of the world")
        if not 0 <= abs(v.speed) <= limits.max_speed_mps:
            raise CheckFailed("telemetry_vehicle", f"tick {i} speed {v.speed:.1f} m/s is beyond {limits.max_speed_mps} m/s")
        cam = tick.camera
        p = cam.position
        if not (_finite(p.x, p.y, p.z, cam.yaw, cam.pitch, cam.roll, cam.fov_deg) and 0 <= cam.fov_deg < 180):
            raise CheckFailed("telemetry_camera", f"tick {i} camera pose is not finite or its fov is not in [0, 180)")
        if tick.command not in ROAD_OPTIONS:
            raise CheckFailed("telemetry_command", f"tick {i} command {tick.command} is not a RoadOption")
    span_s = (ticks[-1].t_ms - ticks[0].t_ms) / 1000.0
    if not limits.min_duration_s <= span_s <= limits.max_duration_s:
        raise CheckFailed("telemetry_duration", f"telemetry spans {span_s:.1f} s; sessions last {limits.min_duration_s}-{limits.max_duration_s} s")
    rate = (len(ticks) - 1) / span_s
    if not limits.min_tick_hz <= rate <= limits.max_tick_hz:
        raise CheckFailed("telemetry_rate", f"telemetry ticks at {rate:.1f} Hz, outside {limits.min_tick_hz}-{limits.max_tick_hz} Hz")
    previous = -math.inf
    for i, sample in enumerate(telemetry.rtt_samples):
        if not (_finite(sample.t_ms, sample.rtt_ms) and 0 <= sample.rtt_ms <= limits.max_rtt_ms and sample.t_ms >= previous):
            raise CheckFailed("telemetry_rtt", f"rtt sample {i} is not finite, negative, over {limits.max_rtt_ms} ms or out of order")
        previous = sample.t_ms
    # The processor places every video frame from these (align.py): a NaN, a negative time or a stop before the
    # start would lose the whole session downstream, so it is refused here while the client can still fix it.
    start, stop = telemetry.recording_start_t_ms, telemetry.recording_stop_t_ms
    last = ticks[-1].t_ms
    if not (_finite(start, stop) and 0 <= start <= last and (stop == 0 or start < stop <= last + limits.max_recording_overrun_ms)):
        raise CheckFailed("telemetry_recording", f"recording_start_t_ms {start} / recording_stop_t_ms {stop} must be "
                                                 f"finite, start in [0, last tick {last:.0f}] and stop 0 (unknown) or "
                                                 f"after start and no later than {limits.max_recording_overrun_ms:.0f} ms past the last tick")
    # Frame records (WebCodecs clients) place each frame exactly: each must be on screen after the previous one,
    # within the recording, and show a moment no later than when it was shown and no earlier than the ticks.
    previous = -math.inf
    for i, frame in enumerate(telemetry.frames):
        if not (_finite(frame.shown_t_ms, frame.render_t_ms) and previous < frame.shown_t_ms
                and start <= frame.shown_t_ms <= last + limits.max_recording_overrun_ms
                and ticks[0].t_ms <= frame.render_t_ms <= frame.shown_t_ms):
            raise CheckFailed("telemetry_frames", f"frame record {i} (shown {frame.shown_t_ms}, render {frame.render_t_ms}) is not "
                                                  "finite, not after the previous one, outside the recording, or shows a moment "
                                                  "before the first tick or after it was shown")
        previous = frame.shown_t_ms
    return telemetry


def check_consistency(telemetry: telemetry_pb2.Telemetry, video: WebmInfo, limits: TelemetryLimits) -> None:
    """Rejects telemetry that cannot have been recorded with this video.

    Raises:
        CheckFailed: video_empty, video_duration_mismatch, video_frame_rate, video_frame_records.
    """
    if video.frame_count == 0:
        raise CheckFailed("video_empty", "the video holds no frames")
    records = len(telemetry.frames)
    if records and not (video.frame_count == records or (video.truncated and video.frame_count < records)):
        raise CheckFailed("video_frame_records", f"the video holds {video.frame_count} frames but the telemetry describes {records}")
    span_s = (telemetry.ticks[-1].t_ms - telemetry.ticks[0].t_ms) / 1000.0
    video_s = video.duration_ms / 1000.0
    tolerance = limits.duration_tolerance_s + limits.duration_tolerance_frac * span_s
    if abs(video_s - span_s) > tolerance:
        raise CheckFailed("video_duration_mismatch", f"video lasts {video_s:.1f} s but telemetry {span_s:.1f} s (tolerance {tolerance:.1f} s)")
    frame_rate = video.frame_count / max(span_s, 1e-3)
    ceiling = max(telemetry.video_fps, 1.0) * limits.frame_rate_slack
    if not limits.min_frame_rate <= frame_rate <= ceiling:
        raise CheckFailed(
            "video_frame_rate",
            f"{video.frame_count} frames in {span_s:.1f} s is {frame_rate:.1f} fps; expected {limits.min_frame_rate}-{ceiling:.0f} fps for a {telemetry.video_fps:g} fps recording",
        )
