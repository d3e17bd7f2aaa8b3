"""Where the rendering camera sits relative to the car: a port of clients/web/src/sim/camera.ts (cameraPose,
lerpAngle) with the same numbers, golden-tested through tools/gen_render_golden.py. Pure. The pose is what the
game's telemetry records and what scalediffusion/sim/render.py draws from (vertical field of view, like Three.js's
PerspectiveCamera)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scalediffusion.sim.geometry_core import js_hypot

CameraMode = Literal["chase", "dash"]


@dataclass(frozen=True, slots=True)
class Vec3:
    x: float
    y: float
    z: float


@dataclass(frozen=True, slots=True)
class CameraPose:
    x: float  # city frame, metres (z up)
    y: float
    z: float
    yaw: float  # radians: counter-clockwise from +x (like the car's theta)
    pitch: float  # up-positive
    roll: float
    fov_deg: float  # vertical
    target: Vec3  # the point the camera looks at (city frame)


@dataclass(frozen=True)
class _Chase:
    back: float = 7.5
    height: float = 3.0
    look_ahead: float = 8.0
    look_height: float = 1.2


@dataclass(frozen=True)
class _Dash:
    forward: float = 0.2
    height: float = 1.3
    look_ahead: float = 30.0
    look_height: float = 1.0


CHASE = _Chase()
DASH = _Dash()


def camera_pose(state, mode: CameraMode, fov_deg: float, yaw: float | None = None) -> CameraPose:
    """The camera pose for a car state (anything with x, y, theta). `yaw` (default the car's heading) lets the caller
    lag the chase camera behind quick heading changes for a smoother view."""
    if yaw is None:
        yaw = state.theta
    c = math.cos(yaw)
    s = math.sin(yaw)
    if mode == "dash":
        x = state.x + math.cos(state.theta) * DASH.forward
        y = state.y + math.sin(state.theta) * DASH.forward
        z = DASH.height
        target = Vec3(x + c * DASH.look_ahead, y + s * DASH.look_ahead, DASH.look_height)
    else:
        x = state.x - c * CHASE.back
        y = state.y - s * CHASE.back
        z = CHASE.height
        target = Vec3(state.x + c * CHASE.look_ahead, state.y + s * CHASE.look_ahead, CHASE.look_height)
    horizontal = js_hypot(target.x - x, target.y - y)
    return CameraPose(x, y, z, yaw, math.atan2(target.z - z, horizontal), 0.0, fov_deg, target)


def lerp_angle(start: float, to: float, t: float) -> float:
    """Moves an angle towards a target along the shorter way, by a fraction in [0, 1]."""
    d = math.fmod(to - start, 2 * math.pi)  # JavaScript's %
    if d > math.pi:
        d -= 2 * math.pi
    if d < -math.pi:
        d += 2 * math.pi
    return start + d * min(1.0, max(0.0, t))


def recorded_pose(camera) -> CameraPose:
    """The pose a telemetry tick recorded (telemetry_pb2.CameraPose: position, yaw, pitch, roll, fov_deg), with the
    point it looks at one metre along yaw and pitch: what the renderer draws the frame the player saw from."""
    p = camera.position
    cp = math.cos(camera.pitch)
    target = Vec3(p.x + math.cos(camera.yaw) * cp, p.y + math.sin(camera.yaw) * cp, p.z + math.sin(camera.pitch))
    return CameraPose(p.x, p.y, p.z, camera.yaw, camera.pitch, camera.roll, camera.fov_deg, target)
