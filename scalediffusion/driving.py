"""From a policy's outputs to pedals and steering, and the camera a policy expects. Pure: no I/O, no torch.

Shared by everything that drives a trained policy: the embedded evaluator (scalediffusion/sim/evaluate.py) and the
CARLA Leaderboard agent (services/trainer/carla_agent.py). Both read the settings below from the policy file's
metadata (scalediffusion/policy.py), never from constants of their own, so a policy drives the same everywhere.

Waypoint policies (AIM / TransFuser line of work) predict where the car will be at the next few 0.5 s steps, in the
ego frame (x forward, y right, metres, CARLA's vehicle convention). ``WaypointController`` turns them into controls:
pure pursuit on the predicted path with the driven vehicle's geometry (the bots' own steering law; TransFuser's
vehicle-agnostic angle PID is kept as ``lateral="pid"``), TransFuser's longitudinal PID on the speed the waypoints
imply, and carla_garage's stuck detector: after standing still for ``stuck_after_s``
with nothing close ahead it creeps forward for ``creep_s`` (a policy that learnt "stopped stays stopped" otherwise
waits for ever behind a light that turned green long ago). When the policy wants to go but the car is pressed
against something (front range under ``blocked_range_m``, or the throttle pushing without the car moving, for
``unstick_after_s``), it backs off in reverse gear for ``reverse_s``, the wheel turned so that the nose swings toward
the route's target point when that lies off to one side: without that, a car that touched a parked car, or ran wide
onto a sidewalk, stays there until the route times out.

With a front range sensor the controller also brakes automatically (AEB, as production cars do with a forward
radar): when the nearest obstacle straight ahead is closer than ``aeb_gap_m + speed * aeb_time_s`` it brakes
whatever the policy wants. An image policy that learnt to follow the car ahead still misjudges the gap at 128²
pixels; the brake keeps that from becoming a rear-end collision. ``aeb_time_s = 0`` turns it off; without a sensor
(front range inf) it never acts. It is part of the driving stack, not of the learnt policy: evaluation reports say
which controller a score was driven with. On traffic@1 it lifted the 35-minute waypoint policy from DS 21.4 / 24.3
to 26.1 / 27.7 (seeds 1 / 2; services/trainer/results/value/README.md).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class CameraSpec:
    """The camera a dataset was recorded with, and the resize the processor applied before training.

    Whatever drives the policy renders (or mounts) this camera and applies the same resize, so the policy sees the
    view it was trained on."""

    width: int = 640  # source frame size in pixels, as recorded
    height: int = 360
    vertical_fov_deg: float = 60.0
    mode: str = "dash"  # the game's camera: "dash" (driver's eye) or "chase" (behind the car)
    # The processor's output frame. These defaults describe datasets and policies made before the processor kept the
    # aspect (a 640x360 frame squashed to 256x256); today's record the real resize (256x144).
    resize_width: int = 256
    resize_height: int = 256

    @classmethod
    def from_dict(cls, doc: dict) -> CameraSpec:
        """From a dataset index record's ``camera`` ({width, height, vertical_fov_deg, mode, resize: {...}}) or from
        this class's own ``to_dict``; unknown keys are ignored, missing ones keep the defaults."""
        resize = doc.get("resize") or {}
        flat = {**doc, "resize_width": doc.get("resize_width", resize.get("width", cls.resize_width)),
                "resize_height": doc.get("resize_height", resize.get("height", cls.resize_height))}
        names = {f.name for f in fields(cls)}
        spec = cls(**{k: type(getattr(cls(), k))(v) for k, v in flat.items() if k in names})
        spec.validate()
        return spec

    def validate(self) -> None:
        if not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"camera size {self.width}x{self.height} is out of range")
        if not 1.0 <= self.vertical_fov_deg <= 170.0:
            raise ValueError(f"camera vertical FOV {self.vertical_fov_deg} must be in [1, 170] degrees")
        if self.mode not in ("dash", "chase"):
            raise ValueError(f"camera mode {self.mode!r} must be 'dash' or 'chase'")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def horizontal_fov_deg(self) -> float:
        half = math.radians(self.vertical_fov_deg) / 2
        return math.degrees(2 * math.atan(math.tan(half) * self.width / self.height))


class Pid:
    """A PID controller over a window of recent errors (TransFuser's PIDController): the integral is the window's
    mean, the derivative the last difference, which keeps a long stop from winding the integral up."""

    def __init__(self, k_p: float, k_i: float, k_d: float, window: int) -> None:
        self.k_p, self.k_i, self.k_d = k_p, k_i, k_d
        self.errors: deque[float] = deque([0.0] * window, maxlen=window)

    def step(self, error: float) -> float:
        self.errors.append(error)
        integral = sum(self.errors) / len(self.errors)
        derivative = self.errors[-1] - self.errors[-2] if len(self.errors) >= 2 else 0.0
        return self.k_p * error + self.k_i * integral + self.k_d * derivative


# The traffic-light classes a policy's light head predicts, in this order; the processor labels frames with them
# (services/processor/lights.py) and the trainer reads the label as this index.
LIGHT_CLASSES = ("none", "green", "yellow", "red")


@dataclass(frozen=True)
class ControllerConfig:
    """Waypoints -> controls. Stored in a waypoint policy's metadata; defaults tuned on the embedded simulator's
    vehicle (tests/unit/test_driving.py drives a route on waypoints taken from the route itself)."""

    waypoint_step_s: float = 0.5  # time between predicted waypoints (the dataset's spacing)
    control_hz: float = 20.0  # how often step() is called (sets the PID windows and the stuck clock)
    # Lateral. "pursuit": pure pursuit on the predicted path, the autopilot's own steering law: the point
    # lookahead_min_m + lookahead_s * speed along the waypoints gives the curvature the path asks for, and the
    # vehicle's geometry (wheelbase, steering lock, its speed-dependent limit) turns that into a steer. "pid":
    # TransFuser's PID on the angle to the aim point, vehicle-agnostic; with a 35 degree lock it asked for a radius
    # about twice the predicted path's in tight turns (steer 0.37 where the path needed 0.8), so cars trained on
    # the bots ran wide out of every narrow-street turn onto the far sidewalk.
    lateral: str = "pursuit"
    lookahead_min_m: float = 4.0  # the bots' autopilot's (AutopilotParams)
    lookahead_s: float = 0.7
    wheelbase_m: float = 2.7  # the driven vehicle: the game's car (scalediffusion/sim/vehicle.py VehicleParams)
    max_steer_deg: float = 35.0  # road-wheel angle at full lock (steer 1)
    min_path_m: float = 1.0  # predicted paths shorter than this (the policy wants to stand) steer straight
    max_lateral_accel: float = 7.0  # the vehicle limits the wheel angle to keep v^2 tan(delta) / L under this; 0: no limit
    # "pid": on the angle to the aim point, in units of 90 degrees (positive = right = positive steer).
    turn_kp: float = 1.25
    turn_ki: float = 0.75
    turn_kd: float = 0.3
    turn_window: int = 20
    aim_distance_m: float = 4.0  # the aim point is where the waypoint polyline is this far ahead (TF++: 4 m)
    # Longitudinal: PID on (desired - current) speed, clipped to [0, max_speed_delta].
    speed_kp: float = 5.0
    speed_ki: float = 0.5
    speed_kd: float = 1.0
    speed_window: int = 20
    max_speed_delta: float = 0.25
    max_throttle: float = 0.75
    brake_below_speed: float = 0.4  # desired speed (m/s) under which the car brakes to a stop
    brake_ratio: float = 1.1  # brake when going this much faster than desired
    # The stuck detector (carla_garage): creep after standing still this long, if nothing is close ahead.
    stuck_speed: float = 0.1  # m/s: "standing still"
    # Longer than the city's longest red (30 s of a 60 s cycle): at 25 s a car that stopped correctly at a red crept
    # into the junction while it was still red; 35 s took tp3's model from DS 32.8 to 35.3 on traffic@1.
    stuck_after_s: float = 35.0
    creep_s: float = 1.5
    creep_speed: float = 2.0  # m/s, desired while creeping
    creep_clearance_m: float = 6.0  # nothing within this distance ahead (front range sensor) to creep
    # Backing off: pressed against something (the policy wants to go, the car does not move, an obstacle within
    # blocked_range_m) for unstick_after_s -> reverse for reverse_s, then the policy drives on around it. The game
    # and CARLA both have a reverse gear; without it a car that touched a parked car stays there until the route
    # times out.
    blocked_range_m: float = 1.0
    # ... or the throttle was pushing in the last period and the car still moved slower than pressed_speed: a car
    # grinding along a wall at an angle reads 2 m straight ahead but is stuck all the same.
    pressed_speed: float = 0.3
    pressed_throttle: float = 0.3
    unstick_after_s: float = 2.0
    reverse_s: float = 1.5
    reverse_throttle: float = 0.5
    reverse_steer: float = 0.0  # steering while backing off when the route's direction is unknown (straight back)
    # Backing off toward the route (a three-point turn): with the route's target point known and more than
    # realign_min_deg off the heading, back off with the wheel turned realign_steer away from it, which swings the
    # nose toward it. A car that ran wide out of a turn stands at the far kerb at 20-40 degrees to its new road;
    # straight back and forward again it hits the same kerb until the route times out.
    realign_steer: float = 1.0
    realign_min_deg: float = 8.0
    # Automatic emergency braking on the front range sensor: brake when the way ahead is shorter than
    # aeb_gap_m + speed * aeb_time_s (0 s: off). Pressed against something within aeb_gap_m + 0.25 m counts as
    # blocked, so the back-off above frees a car the brake holds in front of an obstacle it wants to pass.
    aeb_time_s: float = 1.0
    aeb_gap_m: float = 1.5
    # A policy with a traffic-light head (ModelConfig.light_classes): stop while P(red) + P(yellow) is at least
    # this (0: ignore the head). Its waypoints alone did not slow for reds: they stayed evenly spaced at 8.5 m/s
    # to the line. The stuck detector still creeps after stuck_after_s, so a light misread as red cannot hold the
    # car for good.
    light_stop_prob: float = 0.5
    # A light stop holds a standing car at most light_hold_max_s (a red here lasts 30 s after a 3 s yellow); then the
    # head is ignored for the next light_release_m of driving, past the junction. The head trained on lt1's data read
    # "standing in front of a junction" as red and held the car at green until the route timed out.
    light_hold_max_s: float = 33.0
    light_release_m: float = 40.0

    def __post_init__(self) -> None:
        if self.lateral not in ("pursuit", "pid"):
            raise ValueError(f"controller lateral {self.lateral!r} must be 'pursuit' or 'pid'")
        if not (self.wheelbase_m > 0 and 0 < self.max_steer_deg < 90 and self.lookahead_min_m > 0):
            raise ValueError("controller wheelbase_m, max_steer_deg (0-90) and lookahead_min_m must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> ControllerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in doc.items() if k in names})


@dataclass(frozen=True)
class Controls:
    steer: float
    throttle: float
    brake: float
    desired_speed: float = 0.0
    creeping: bool = False
    reverse: bool = False  # reverse gear: throttle drives backwards
    emergency_brake: bool = False  # the front range sensor overrode the policy (AEB)
    light_stop: bool = False  # the policy's light head saw a red or yellow light ahead


def _point_at_distance(waypoints: list[tuple[float, float]], distance: float) -> tuple[float, float]:
    """The point `distance` metres along the polyline from the ego (origin) through the waypoints; the last
    waypoint (extended along the last leg) when the polyline is shorter."""
    px, py, walked = 0.0, 0.0, 0.0
    for x, y in waypoints:
        leg = math.hypot(x - px, y - py)
        if leg > 1e-6 and walked + leg >= distance:
            w = (distance - walked) / leg
            return px + w * (x - px), py + w * (y - py)
        walked += leg
        px, py = x, y
    return px, py


def _path_length(waypoints: list[tuple[float, float]]) -> float:
    total, px, py = 0.0, 0.0, 0.0
    for x, y in waypoints:
        total, px, py = total + math.hypot(x - px, y - py), x, y
    return total


@dataclass
class WaypointController:
    config: ControllerConfig = field(default_factory=ControllerConfig)

    def __post_init__(self) -> None:
        c = self.config
        self.turn = Pid(c.turn_kp, c.turn_ki, c.turn_kd, c.turn_window)
        self.speed = Pid(c.speed_kp, c.speed_ki, c.speed_kd, c.speed_window)
        self.still = 0  # control periods standing still
        self.creep_left = 0  # control periods of creeping left
        self.pressed = 0  # control periods wanting to go while blocked
        self.reverse_left = 0  # control periods of backing off left
        self.last_throttle = 0.0  # the throttle sent in the last period (forward)
        self.light_held = 0  # control periods standing in a light stop
        self.light_ignore_m = 0.0  # metres left during which the light head is ignored (after a release)

    def desired_speed(self, waypoints: list[tuple[float, float]]) -> float:
        """Speed the waypoints imply: the distance between the first two over their spacing (TransFuser)."""
        if len(waypoints) < 2:
            return math.hypot(*waypoints[0]) / self.config.waypoint_step_s if waypoints else 0.0
        (x0, y0), (x1, y1) = waypoints[0], waypoints[1]
        return math.hypot(x1 - x0, y1 - y0) / self.config.waypoint_step_s

    def light_update(self, light: Sequence[float] | None, speed: float) -> bool:
        """Whether the light head stops the car this control period: it says red or yellow, the car has not stood
        in this stop for light_hold_max_s already, and it is not within light_release_m of the last release."""
        c = self.config
        if self.light_ignore_m > 0:
            self.light_ignore_m -= abs(speed) / c.control_hz
            return False
        stop = (light is not None and c.light_stop_prob > 0
                and light[LIGHT_CLASSES.index("red")] + light[LIGHT_CLASSES.index("yellow")] >= c.light_stop_prob)
        if not stop:
            self.light_held = 0
            return False
        if abs(speed) < c.stuck_speed:
            self.light_held += 1
            if self.light_held >= round(c.light_hold_max_s * c.control_hz):
                self.light_held, self.light_ignore_m = 0, c.light_release_m
                return False
        return True

    def stuck_update(self, speed: float, front_range: float | Callable[[], float]) -> bool:
        """Advances the stuck clock by one control period; True while creeping. Creeping starts only when nothing
        is within creep_clearance_m ahead (an obstacle ahead means waiting is right) and stops if one appears.
        Counted in control periods, not summed seconds, so the moment does not depend on float rounding.
        front_range may be a callable: it is read only while the car is stuck or creeping (a sensor sweep costs)."""
        c = self.config

        def clear() -> bool:
            return (front_range() if callable(front_range) else front_range) > c.creep_clearance_m

        if self.creep_left > 0:
            self.creep_left = self.creep_left - 1 if clear() else 0
            self.still = 0
            return self.creep_left > 0
        self.still = self.still + 1 if abs(speed) < c.stuck_speed else 0
        if self.still >= round(c.stuck_after_s * c.control_hz) and clear():
            self.creep_left, self.still = max(1, round(c.creep_s * c.control_hz)), 0
            return True
        return False

    def lateral_steer(self, waypoints: list[tuple[float, float]], speed: float) -> float:
        """The steer that follows the predicted path (unclipped), by the configured lateral law."""
        c = self.config
        if c.lateral == "pid":
            ax, ay = _point_at_distance(waypoints, c.aim_distance_m) if waypoints else (1.0, 0.0)
            return self.turn.step(math.atan2(ay, max(ax, 1e-3)) / (math.pi / 2))  # right positive, in 90s
        lookahead = c.lookahead_min_m + c.lookahead_s * max(speed, 0.0)
        ax, ay = _point_at_distance(waypoints, lookahead) if waypoints else (1.0, 0.0)
        distance = math.hypot(ax, ay)
        if distance < 1e-3 or _path_length(waypoints) < c.min_path_m:
            return 0.0  # a path shorter than this is a stop, not a direction
        alpha = math.atan2(ay, ax)
        delta = math.atan(2 * c.wheelbase_m * math.sin(alpha) / distance)
        return delta / self.steer_lock(speed)

    def steer_lock(self, speed: float) -> float:
        """The road-wheel angle (rad) that steer 1 gives at this speed: full lock, limited at speed by the vehicle's
        lateral acceleration bound (scalediffusion/sim/vehicle.py max_steer_angle)."""
        c = self.config
        lock = math.radians(c.max_steer_deg)
        if c.max_lateral_accel <= 0 or speed * speed < 1e-9:
            return lock
        return min(lock, math.atan(c.max_lateral_accel * c.wheelbase_m / (speed * speed)))

    def reverse_steer(self, target: tuple[float, float] | None) -> float:
        """The wheel while backing off: turned away from the target point's side, so the nose swings toward it."""
        c = self.config
        if target is None or c.realign_steer <= 0:
            return c.reverse_steer
        off = math.degrees(math.atan2(target[1], target[0]))
        if abs(off) < c.realign_min_deg:
            return c.reverse_steer
        return -math.copysign(min(1.0, c.realign_steer), off)

    def unstick_update(self, speed: float, desired: float, front_range: float | Callable[[], float]) -> bool:
        """Advances the backing-off clock; True while reversing away from an obstacle the car is pressed against."""
        c = self.config
        if self.reverse_left > 0:
            self.reverse_left -= 1
            return True
        wants_to_go = desired >= c.brake_below_speed and abs(speed) < c.stuck_speed
        blocked_within = max(c.blocked_range_m, c.aeb_gap_m + 0.25) if c.aeb_time_s > 0 else c.blocked_range_m
        pushing = desired >= c.brake_below_speed and abs(speed) < c.pressed_speed and self.last_throttle >= c.pressed_throttle
        if pushing or (wants_to_go and (front_range() if callable(front_range) else front_range) < blocked_within):
            self.pressed += 1
        else:
            self.pressed = 0
        if self.pressed >= round(c.unstick_after_s * c.control_hz):
            self.pressed, self.reverse_left = 0, max(1, round(c.reverse_s * c.control_hz)) - 1
            return True
        return False

    def step(self, waypoints: list[tuple[float, float]], speed: float,
             front_range_m: float | Callable[[], float] = math.inf,
             target: tuple[float, float] | None = None, light: Sequence[float] | None = None) -> Controls:
        """waypoints: [(x forward, y right), ...] in metres, one per waypoint_step_s; speed in m/s; front_range_m:
        distance to the nearest obstacle straight ahead from a front range sensor (radar), or a callable reading
        it on demand; inf = no sensor, which the stuck detector takes as a clear way; target: the route's target
        point in the same frame, when known (it only steers the backing off); light: the light head's
        probabilities in LIGHT_CLASSES order, when the policy has one."""
        c = self.config
        if callable(front_range_m):  # one sensor read per control period, whoever asks first
            sensor, reading = front_range_m, list[float]()

            def front_range_m() -> float:
                if not reading:
                    reading.append(sensor())
                return reading[0]

        desired = self.desired_speed(waypoints)
        light_stop = self.light_update(light, speed)
        if light_stop:
            desired = 0.0
        if self.unstick_update(speed, desired, front_range_m):
            self.still, self.last_throttle = 0, 0.0
            return Controls(steer=self.reverse_steer(target), throttle=c.reverse_throttle, brake=0.0,
                            desired_speed=desired, reverse=True)
        creeping = self.stuck_update(speed, front_range_m)
        if creeping:
            desired = max(desired, c.creep_speed)
        steer = max(-1.0, min(1.0, self.lateral_steer(waypoints, speed)))
        if desired < 0.1 and speed < 0.5 and not creeping:
            steer = 0.0  # standing: no reason to wind the wheel
        brake = (desired < c.brake_below_speed or speed > desired * c.brake_ratio) and not creeping
        delta = max(0.0, min(c.max_speed_delta, desired - speed))
        throttle = max(0.0, min(c.max_throttle, self.speed.step(delta)))
        emergency = False
        if not brake and c.aeb_time_s > 0:
            ahead = front_range_m() if callable(front_range_m) else front_range_m
            emergency = ahead < c.aeb_gap_m + max(0.0, speed) * c.aeb_time_s
        if brake or emergency:
            throttle = 0.0
        self.last_throttle = throttle
        return Controls(steer=steer, throttle=throttle, brake=1.0 if brake or emergency else 0.0, desired_speed=desired,
                        creeping=creeping, emergency_brake=emergency, light_stop=light_stop and not creeping)


def cilrs_controls(steer: float, throttle: float, brake: float) -> Controls:
    """A control-regressing policy's outputs, clipped, braking only when the brake outweighs the throttle (as the
    Leaderboard CILRS baselines do: a small brake output otherwise holds the car back for ever)."""
    steer = max(-1.0, min(1.0, float(steer)))
    throttle, brake = max(0.0, min(1.0, float(throttle))), max(0.0, min(1.0, float(brake)))
    if brake < 0.05 or throttle > brake:
        brake = 0.0
    else:
        throttle = 0.0
    return Controls(steer=steer, throttle=throttle, brake=brake)
