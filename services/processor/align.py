"""ALIGN: which control, pose and command belong to each video frame. Pure.

The model (see README "Alignment"):
- A frame's video timestamp v (ms since the recorder started) maps to the telemetry clock as
  d = start + v * scale, where start = recording_start_t_ms and scale < 1 corrects a recorder clock running fast
  (the last frame would land after recording_stop_t_ms). d is when the frame was on screen ("display time").
- Frame records (clients that encode exactly the frames they draw, WebCodecs) replace both guesses: frame i went on
  screen at frames[i].shown_t_ms and shows the state at frames[i].render_t_ms. Its video timestamp must be
  shown_t_ms - recording_start_t_ms (to the container's millisecond); a video cut short uses the leading records.
- Otherwise, what the frame shows was rendered about one round trip earlier (the diffusion service repaints frames sent to it):
  render time r = d - rtt(d), where rtt(t) interpolates the measured RTT samples linearly in time (clamped at the
  ends; 0 without samples = the raw render was shown).
- The frame's pose, heading and speed are the vehicle state at r (interpolated between ticks): what the image
  depicts. Its controls are the ones the player applied while the frame was on screen: the tick in effect at the
  middle of [d, d_next). Its navigation command is the one displayed at d.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from scalediffusion.v1 import common_pb2, telemetry_pb2

MAX_DRIFT = 0.05  # a recorder clock more than 5% off the telemetry clock is not drift but bad data: no correction
FRAME_RECORD_TOLERANCE_MS = 1.5  # WebM stores millisecond timestamps


class FrameRecordsMismatch(ValueError):
    """The telemetry's frame records do not describe this video (count or timestamps)."""


@dataclass(frozen=True)
class ClockMap:
    """Video time (ms since recording start) -> telemetry time (t_ms)."""

    start_ms: float
    scale: float

    def __call__(self, video_ms: float) -> float:
        return self.start_ms + video_ms * self.scale

    @classmethod
    def from_telemetry(cls, telemetry: telemetry_pb2.Telemetry, last_frame_video_ms: float) -> ClockMap:
        """The recorder's stop time bounds the last frame's display time from above, and nothing more: recorders
        stop some time after their last frame (MediaRecorder in Chromium: up to ~1 s after it, frames still in the
        encoder are dropped). So only a video that runs *past* the recorded span is drift to correct (a recorder
        clock running fast); a shorter video is a late stop, not a slow clock, and keeps scale 1."""
        start, stop = telemetry.recording_start_t_ms, telemetry.recording_stop_t_ms
        scale = 1.0
        if stop > start and last_frame_video_ms > stop - start:
            measured = (stop - start) / last_frame_video_ms
            if abs(measured - 1.0) <= MAX_DRIFT:
                scale = measured
        return cls(start_ms=start, scale=scale)


class RttModel:
    """RTT at any time: linear interpolation between samples, clamped to the first/last sample."""

    def __init__(self, samples: list[tuple[float, float]]) -> None:
        ordered = sorted((t, r) for t, r in samples if math.isfinite(t) and math.isfinite(r) and r >= 0)
        self.times = [t for t, _ in ordered]
        self.values = [r for _, r in ordered]

    def __call__(self, t_ms: float) -> float:
        if not self.times:
            return 0.0
        i = bisect.bisect_right(self.times, t_ms)
        if i == 0:
            return self.values[0]
        if i == len(self.times):
            return self.values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        w = (t_ms - t0) / (t1 - t0) if t1 > t0 else 0.0
        return self.values[i - 1] + w * (self.values[i] - self.values[i - 1])


@dataclass(frozen=True)
class FrameAlignment:
    display_ms: float  # telemetry clock: when the frame was on screen
    render_ms: float  # telemetry clock: the game state the image shows
    rtt_ms: float
    covered: bool  # telemetry covers both the render and the display time
    x: float
    y: float
    theta: float
    speed: float
    steer: float
    throttle: float
    brake: float
    command: int
    control_tick: int  # index of the tick whose controls were taken
    exact: bool = False  # display and render time come from a frame record, not from the clock and RTT model
    # The picture is the game's own render of the world (a frame record says RAW, or the session measured no diffusion
    # round trip), not a repainted one: what the video check can compare with a re-render.
    raw: bool = True

    def measurement(self, frame: int) -> dict:
        return {
            "frame": frame,
            "timestamp_ms": round(self.display_ms, 3),
            "render_ms": round(self.render_ms, 3),
            "rtt_ms": round(self.rtt_ms, 3),
            "x": round(self.x, 4),
            "y": round(self.y, 4),
            "theta": round(self.theta, 6),
            "speed": round(self.speed, 4),
            "steer": round(self.steer, 5),
            "throttle": round(self.throttle, 5),
            "brake": round(self.brake, 5),
            "command": int(self.command),
        }


def _lerp_angle(a: float, b: float, w: float) -> float:
    delta = math.atan2(math.sin(b - a), math.cos(b - a))
    return a + w * delta


class TickTimeline:
    """Fast lookups into the ticks by telemetry time."""

    def __init__(self, telemetry: telemetry_pb2.Telemetry) -> None:
        self.ticks = telemetry.ticks
        self.times = [t.t_ms for t in self.ticks]
        # Times of ticks where driving stops being continuous (paused or reset), for "what happens next" queries.
        self.stop_times = [t.t_ms for t in self.ticks if t.paused or t.reset]
        # Where a contact starts: the instant stop no brakes make. Clients flag every tick in contact (the replay
        # check needs them all); a car that then stands pressed against a wall is not stopped again at each one.
        self.collision_times = [t.t_ms for k, t in enumerate(self.ticks) if t.collision and (k == 0 or not self.ticks[k - 1].collision)]
        self._off_expert: dict[float, list[float]] = {}  # steer gap -> times of ticks off the expert's action

    @property
    def first_ms(self) -> float:
        return self.times[0]

    @property
    def last_ms(self) -> float:
        return self.times[-1]

    def index_at(self, t_ms: float) -> int:
        """The tick in effect at t_ms (the latest at or before it; the first tick before the first)."""
        return max(bisect.bisect_right(self.times, t_ms) - 1, 0)

    def indices_between(self, lo_ms: float, hi_ms: float) -> list[int]:
        """The ticks with lo_ms <= t_ms <= hi_ms, in order."""
        return list(range(bisect.bisect_left(self.times, lo_ms), bisect.bisect_right(self.times, hi_ms)))

    def state_at(self, t_ms: float) -> tuple[float, float, float, float]:
        """(x, y, theta, speed) interpolated between the ticks around t_ms."""
        i = bisect.bisect_right(self.times, t_ms)
        if i == 0:
            v = self.ticks[0].vehicle
            return v.x, v.y, v.theta, v.speed
        if i == len(self.times):
            v = self.ticks[-1].vehicle
            return v.x, v.y, v.theta, v.speed
        a, b = self.ticks[i - 1], self.ticks[i]
        if b.reset:  # never interpolate across a teleport
            v = a.vehicle
            return v.x, v.y, v.theta, v.speed
        w = (t_ms - self.times[i - 1]) / (self.times[i] - self.times[i - 1])
        va, vb = a.vehicle, b.vehicle
        return (
            va.x + w * (vb.x - va.x),
            va.y + w * (vb.y - va.y),
            _lerp_angle(va.theta, vb.theta, w),
            va.speed + w * (vb.speed - va.speed),
        )

    def next_stop_after(self, t_ms: float) -> float:
        """Time of the first paused or reset tick strictly after t_ms (inf when none)."""
        i = bisect.bisect_right(self.stop_times, t_ms)
        return self.stop_times[i] if i < len(self.stop_times) else math.inf

    def next_off_expert_from(self, t_ms: float, steer_gap: float) -> float:
        """Time of the first tick in effect at or after t_ms whose applied steering differs from its recorded expert
        action (TelemetryTick.expert_controls) by more than steer_gap: from there on the poses show the driver's
        lapse, not the expert's path (inf when none; ticks without an expert action never count)."""
        times = self._off_expert.get(steer_gap)
        if times is None:
            times = self._off_expert[steer_gap] = [
                t.t_ms for t in self.ticks if t.HasField("expert_controls") and abs(t.controls.steer - t.expert_controls.steer) > steer_gap]
        if not times:
            return math.inf
        i = bisect.bisect_right(times, t_ms)
        if i > 0 and times[i - 1] == self.times[self.index_at(t_ms)]:
            return t_ms  # the tick in effect at t_ms is itself off the expert's action
        return times[i] if i < len(times) else math.inf

    def collided_between(self, after_ms: float, until_ms: float) -> bool:
        """Whether the car hit something at a tick in (after_ms, until_ms]."""
        i = bisect.bisect_right(self.collision_times, after_ms)
        return i < len(self.collision_times) and self.collision_times[i] <= until_ms

    def flags_between(self, after_ms: float, until_ms: float) -> tuple[bool, bool]:
        """(paused, reset): whether any tick in (after_ms, until_ms], or the tick in effect at until_ms, says so."""
        lo = bisect.bisect_right(self.times, after_ms)
        hi = bisect.bisect_right(self.times, until_ms)
        window = list(self.ticks[lo:hi]) + [self.ticks[self.index_at(until_ms)]]
        return any(t.paused for t in window), any(t.reset for t in self.ticks[lo:hi])


def recorded_times(video_ms: list[float], telemetry: telemetry_pb2.Telemetry) -> list[tuple[float, float]] | None:
    """(display, render) per frame from the telemetry's frame records; None without records. Raises
    FrameRecordsMismatch when the records do not describe this video."""
    records = telemetry.frames
    if not records:
        return None
    if len(video_ms) > len(records):
        raise FrameRecordsMismatch(f"the video has {len(video_ms)} frames but the telemetry describes {len(records)}")
    start = telemetry.recording_start_t_ms
    for i, (v, rec) in enumerate(zip(video_ms, records)):
        expected = rec.shown_t_ms - start
        if not abs(v - expected) <= FRAME_RECORD_TOLERANCE_MS:
            raise FrameRecordsMismatch(f"frame {i} is at {v:.1f} ms in the video but its record says {expected:.1f} ms")
    return [(rec.shown_t_ms, min(rec.render_t_ms, rec.shown_t_ms)) for rec in records[: len(video_ms)]]


def raw_frames(video_ms: list[float], telemetry: telemetry_pb2.Telemetry) -> list[bool]:
    """Per frame, whether it shows the game's own render: its record's source where the client wrote records; else
    whether the session measured no diffusion round trip (a MediaRecorder recording of a repainted drive has RTT
    samples)."""
    if telemetry.frames:
        return [rec.source == telemetry_pb2.FRAME_SOURCE_RAW for rec in telemetry.frames[: len(video_ms)]]
    return [not telemetry.rtt_samples] * len(video_ms)


def align_frames(video_ms: list[float], telemetry: telemetry_pb2.Telemetry, nominal_frame_ms: float = 33.3) -> list[FrameAlignment]:
    """One FrameAlignment per video frame (video_ms strictly increasing). Raises FrameRecordsMismatch when the
    telemetry has frame records that do not describe this video."""
    if not video_ms:
        return []
    timeline = TickTimeline(telemetry)
    exact = recorded_times(video_ms, telemetry)
    if exact is None:
        clock = ClockMap.from_telemetry(telemetry, video_ms[-1])
        rtt = RttModel([(s.t_ms, s.rtt_ms) for s in telemetry.rtt_samples])
        times = [(d, d - rtt(d)) for d in (clock(v) for v in video_ms)]
    else:
        times = exact
    display = [d for d, _ in times]
    raw = raw_frames(video_ms, telemetry)
    out = []
    for i, (d, r) in enumerate(times):
        d_next = display[i + 1] if i + 1 < len(display) else d + nominal_frame_ms
        rtt_ms = d - r
        control_idx = timeline.index_at((d + d_next) / 2)
        tick = timeline.ticks[control_idx]
        x, y, theta, speed = timeline.state_at(r)
        command = timeline.ticks[timeline.index_at(d)].command or common_pb2.ROAD_OPTION_LANEFOLLOW
        out.append(
            FrameAlignment(
                display_ms=d,
                render_ms=r,
                rtt_ms=rtt_ms,
                covered=timeline.first_ms <= r and d <= timeline.last_ms,
                x=x,
                y=y,
                theta=theta,
                speed=speed,
                steer=tick.controls.steer,
                throttle=tick.controls.throttle,
                brake=tick.controls.brake,
                command=int(command),
                control_tick=control_idx,
                exact=exact is not None,
                raw=raw[i],
            )
        )
    return out
