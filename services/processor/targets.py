"""Driving targets per frame: where the car goes next, how fast, and what an expert would have done. Pure.

Computed from the whole telemetry timeline (60 Hz ticks), not from the segment's frames, so the last frames of a
segment still get their future. For a frame whose image shows the game at render time r with pose (x, y, theta):
- waypoint k (k = 1..N) is the vehicle position at r + k * step in the ego frame of that pose, CARLA's vehicle
  convention: x forward, y to the right, metres. The world frame has theta counter-clockwise from +x, so the right
  of heading (cos theta, sin theta) is (sin theta, -cos theta).
- waypoints_valid counts the leading waypoints that are real: one past the end of the telemetry, or with a paused
  or reset tick in (r, its time], is not (nor is any after it). Neither is one after a tick whose applied steering
  left the recorded expert action by more than off_expert_steer (a bot's lapse, autopilot.TurnLapse): those poses
  show the lapse, not the path to learn. Frames taken after the lapse, off the path, keep the recovery as their
  waypoints: the states a policy that falls behind needs (Codevilla et al.'s noise injection). Invalid ones are still written, extrapolated at
  constant velocity from the last valid one (or the pose), so every frame has the same JSON shape.
- target_speed is the recorded speed target_speed_horizon_s after r (clamped at the end of the telemetry).
- target_point is the route's target point recorded on the tick whose command the frame carries (TelemetryTick.target_point), in
  the ego frame of the frame's pose; absent when the session did not record one.
- expert is the scripted expert's action recorded on the tick whose controls the frame got; bot drivers set it,
  human sessions do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalediffusion.sim.geometry_core import ego_frame
from services.processor.align import FrameAlignment, TickTimeline
from services.processor.lights import LightLabeler

EGO_FRAME = "ego: x forward, y right, metres"


@dataclass(frozen=True)
class TargetSettings:
    waypoint_count: int = 4  # future positions per frame
    waypoint_step_s: float = 0.5  # time between them: 4 x 0.5 s looks 2 s ahead, as CILRS-style planners do
    target_speed_horizon_s: float = 1.0  # target_speed is the recorded speed this far after the frame
    # |applied - expert| steering above this ends a frame's real waypoints. The bots' steering wander stays below
    # (stationary sigma 0.08, 4.4 sigma); their turn lapses move the steer 0.5 or more (autopilot.TurnLapseParams).
    off_expert_steer: float = 0.35

    def validate(self) -> None:
        if self.waypoint_count < 1 or not self.waypoint_step_s > 0:
            raise ValueError("SD_WAYPOINTS must be >= 1 and SD_WAYPOINT_STEP_S > 0")
        if not self.target_speed_horizon_s >= 0:
            raise ValueError("target_speed_horizon_s must be >= 0")
        if not self.off_expert_steer > 0:
            raise ValueError("off_expert_steer must be > 0")

    def describe(self) -> dict:
        """What the dataset index records, so readers know how the targets were made."""
        return {
            "waypoint_count": self.waypoint_count,
            "waypoint_step_s": self.waypoint_step_s,
            "target_speed_horizon_s": self.target_speed_horizon_s,
            "off_expert_steer": self.off_expert_steer,
            "frame": EGO_FRAME,
        }


@dataclass(frozen=True)
class FrameTargets:
    waypoints: tuple[tuple[float, float], ...]  # ego frame (forward, right), metres
    waypoints_valid: int
    target_speed: float  # m/s
    expert: tuple[float, float, float] | None  # (steer, throttle, brake); None when no expert was recorded
    target_point: tuple[float, float] | None = None  # ego frame, metres; None when the session recorded none

    def measurement(self) -> dict:
        doc: dict = {
            "waypoints": [[_round(x, 4), _round(y, 4)] for x, y in self.waypoints],
            "waypoints_valid": self.waypoints_valid,
            "target_speed": _round(self.target_speed, 4),
        }
        if self.expert is not None:
            steer, throttle, brake = self.expert
            doc["expert"] = {"steer": _round(steer, 5), "throttle": _round(throttle, 5), "brake": _round(brake, 5)}
        if self.target_point is not None:
            doc["target_point"] = [_round(self.target_point[0], 4), _round(self.target_point[1], 4)]
        return doc


def _round(value: float, digits: int) -> float:
    return round(value, digits) + 0.0  # + 0.0 turns -0.0 into 0.0: "0.0" in the JSON, not "-0.0"


def frame_targets(frame: FrameAlignment, timeline: TickTimeline, s: TargetSettings) -> FrameTargets:
    r = frame.render_ms
    step_ms = s.waypoint_step_s * 1000.0
    # A waypoint is real while its time is within the telemetry and before the next pause or reset.
    next_stop = min(timeline.next_stop_after(r), timeline.next_off_expert_from(r, s.off_expert_steer))
    # The last real state: extrapolation of the points after it starts here (the pose when none is real).
    ax, ay, atheta, aspeed, at = frame.x, frame.y, frame.theta, frame.speed, r
    valid = 0
    points = []
    for k in range(1, s.waypoint_count + 1):
        t = r + k * step_ms
        if valid == k - 1 and t <= timeline.last_ms and t < next_stop:
            x, y, theta, speed = timeline.state_at(t)
            ax, ay, atheta, aspeed, at = x, y, theta, speed, t
            valid = k
        else:
            d = aspeed * (t - at) / 1000.0
            x, y = ax + d * math.cos(atheta), ay + d * math.sin(atheta)
        points.append(ego_frame(frame.x, frame.y, frame.theta, x, y))
    target_speed = timeline.state_at(r + s.target_speed_horizon_s * 1000.0)[3]
    tick = timeline.ticks[frame.control_tick]
    expert = None
    if tick.HasField("expert_controls"):
        e = tick.expert_controls
        expert = (e.steer, e.throttle, e.brake)
    target = None
    shown = timeline.ticks[timeline.index_at(frame.display_ms)]  # the tick whose command the frame carries
    if shown.HasField("target_point"):
        target = ego_frame(frame.x, frame.y, frame.theta, shown.target_point.x, shown.target_point.y)
    return FrameTargets(waypoints=tuple(points), waypoints_valid=valid, target_speed=target_speed, expert=expert,
                        target_point=target)


def measurements(frames: list[int], aligned: list[FrameAlignment], timeline: TickTimeline, s: TargetSettings,
                 lights: LightLabeler | None = None) -> list[dict]:
    """measurements.json entries of a segment: each frame's alignment (numbered from 0) plus its targets, and its
    traffic-light labels when the session has a world clock (lights.py)."""
    out = []
    for k, f in enumerate(frames):
        a = aligned[f]
        doc = {**a.measurement(k), **frame_targets(a, timeline, s).measurement()}
        if lights is not None:
            doc.update(lights.label(a.x, a.y, a.theta, a.render_ms))
        out.append(doc)
    return out
