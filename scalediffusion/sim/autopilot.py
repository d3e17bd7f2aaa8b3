"""Baseline drivers for the simulator: a privileged autopilot (knows the route, the lights and every actor) and the
trivial policies that bound the scale of the scores; the autopilot with human-like noise drives the bot players.

The autopilot steers by pure pursuit on the route's lane centre line and sets its speed with the Intelligent Driver
Model (scalediffusion/sim/traffic.py) towards the nearest obstacle on its route: a vehicle, a pedestrian on the
carriageway, a red (or still-stoppable yellow) light, or a stop sign until it has stood still there.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.lanes import same_lane_threshold
from scalediffusion.sim.traffic import IdmParams, idm_accel, must_stop
from scalediffusion.v1 import world_pb2


@dataclass(frozen=True)
class Control:
    steer: float
    throttle: float
    brake: float
    reverse: bool = False  # the game's reverse gear: throttle drives backwards


@dataclass(frozen=True)
class Observation:
    """What a driver gets each step. Learned policies use image, speed and command; the autopilot is privileged
    and also reads the ground truth (ego pose, route progress, actors, lights)."""

    t: float
    speed: float
    command: int
    image: object  # RGB uint8 [H, W, 3] or None when not rendering
    ego: object  # vm.VehicleState
    route_s: float  # the ego's arc length along the route path
    episode: object  # the Episode (privileged access: path, traffic, lights)
    # The front range sensor (radar) for drivers that ask: metres to the nearest obstacle ahead, read on demand
    # (a callable: the sweep costs, and a driver needs it only while stuck).
    front_range_m: object = math.inf
    # The route's target point in the ego frame (x forward, y right, metres): what the game records per tick.
    target_point: tuple[float, float] | None = None


class StandStill:
    name = "stand-still"

    def __call__(self, obs: Observation) -> Control:
        return Control(0.0, 0.0, 1.0)


class ConstantThrottle:
    name = "constant-throttle"

    def __init__(self, throttle: float = 0.6) -> None:
        self.throttle = throttle

    def __call__(self, obs: Observation) -> Control:
        return Control(0.0, self.throttle, 0.0)


@dataclass(frozen=True)
class AutopilotParams:
    cruise_speed: float = 9.0  # m/s
    lateral_accel: float = 2.0  # m/s^2 in turns
    lookahead_min_m: float = 4.0
    lookahead_time_s: float = 0.7
    idm: IdmParams = IdmParams(desired_speed=9.0, time_headway=1.4, min_gap=3.0, max_accel=2.0, comfortable_decel=3.0)


class Autopilot:
    name = "autopilot"

    def __init__(self, params: AutopilotParams = AutopilotParams(), vehicle: vm.VehicleParams = vm.DEFAULT_PARAMS) -> None:
        self.p, self.vehicle = params, vehicle
        self._stood: dict[str, float] = {}
        self._last_t: float | None = None

    def __call__(self, obs: Observation) -> Control:
        ep = obs.episode
        line = ep.path.line
        ego = obs.ego
        speed = max(obs.speed, 0.0)
        dt = 0.0 if self._last_t is None else obs.t - self._last_t
        self._last_t = obs.t

        # Lateral: pure pursuit.
        lookahead = self.p.lookahead_min_m + self.p.lookahead_time_s * speed
        tx, ty, _ = line.point_at(obs.route_s + lookahead)
        alpha = math.atan2(ty - ego.y, tx - ego.x) - ego.theta
        alpha = math.atan2(math.sin(alpha), math.cos(alpha))
        delta = math.atan(2 * self.vehicle.wheelbase_m * math.sin(alpha) / max(lookahead, 1e-3))
        steer = max(-1.0, min(1.0, -delta / vm.max_steer_angle(speed, self.vehicle)))

        # Longitudinal: the speed the curve ahead allows, then IDM towards the nearest obstacle.
        desired = min(self.p.cruise_speed, self._curve_speed(line, obs.route_s, speed))
        gap, closing = self._nearest_obstacle(obs, ep, speed, dt)
        accel = idm_accel(speed, gap, closing, self.p.idm, desired)
        return self._pedals(accel, speed, steer)

    def _curve_speed(self, line, s: float, speed: float) -> float:
        """The fastest speed at which the heading change over the next stretch stays within the lateral limit."""
        horizon = max(15.0, speed * 3.0)
        limit = self.p.cruise_speed
        for ahead in (5.0, 10.0, horizon):
            _, _, h0 = line.point_at(s + ahead - 5.0)
            _, _, h1 = line.point_at(s + ahead + 5.0)
            turn = abs(math.atan2(math.sin(h1 - h0), math.cos(h1 - h0)))
            if turn > 0.05:
                radius = 10.0 / turn
                # Allow braking down to the curve speed over the distance to it.
                curve_v = math.sqrt(self.p.lateral_accel * radius)
                limit = min(limit, math.sqrt(curve_v**2 + 2 * self.p.idm.comfortable_decel * max(ahead - 5.0, 0.0)))
        return max(limit, 3.0)

    def _nearest_obstacle(self, obs: Observation, ep, speed: float, dt: float) -> tuple[float | None, float]:
        line = ep.path.line
        ego = obs.ego
        front = obs.route_s + self.vehicle.length_m / 2
        gap, closing = None, 0.0

        def consider(g: float, other_speed: float) -> None:
            nonlocal gap, closing
            if g >= -1.0 and (gap is None or g < gap):
                gap, closing = max(g, 0.0), speed - other_speed

        hx, hy = math.cos(ego.theta), math.sin(ego.theta)
        for actor in ep.traffic.actors(obs.t):
            dx, dy = actor.x - ego.x, actor.y - ego.y
            dist2 = dx * dx + dy * dy
            if dx * hx + dy * hy <= 0 or dist2 > 60.0**2:
                continue
            s_actor, lateral = line.project(actor.x, actor.y, max(0, ep.monitor._segment_hint - 2), ep.monitor._segment_hint + 40)
            if s_actor < obs.route_s:
                continue
            if actor.kind == world_pb2.ACTOR_KIND_PEDESTRIAN:
                if abs(lateral) < 3.5 and dist2 < 35.0**2:
                    consider(s_actor - front - 2.0, 0.0)
            elif abs(lateral) < same_lane_threshold(ep.path.lane_width_at(s_actor), self.vehicle.width_m, actor.width):
                along = actor.speed * math.cos(actor.heading - ego.theta)
                consider(s_actor - actor.length / 2 - front, along)
        for stop in ep.path.stop_lines:
            if stop.s < front - 0.5 or stop.s - front > 60.0:
                continue
            if must_stop(stop, obs.t, dt, speed, front, self._stood, ep.lights, self.p.idm.comfortable_decel, zone_m=6.0):
                consider(stop.s - front - 1.0, 0.0)
                break
        return gap, closing

    def _pedals(self, accel: float, speed: float, steer: float) -> Control:
        v = self.vehicle
        resist = v.rolling + v.aero * speed * speed
        if accel > 0:
            full = vm.drive_accel(speed, vm.DriveInput(steer=0.0, throttle=1.0, brake=0.0), v)
            return Control(steer, max(0.0, min(1.0, (accel + resist) / max(full, 1e-3))), 0.0)
        needed = -accel - resist
        if needed <= 0:
            return Control(steer, 0.0, 0.0)
        brake = min(1.0, needed / v.max_brake)
        if speed < 0.3:
            brake = 1.0  # hold the car still
        return Control(steer, 0.0, brake)


class NoisyAutopilot(Autopilot):
    """The autopilot driving like a person: steering wanders (an Ornstein-Uhlenbeck process) and is corrected,
    the cruise speed differs per driver, reactions to the throttle lag a little. Seeded: the same seed drives the
    same way."""

    name = "noisy-autopilot"

    def __init__(self, seed: int, steer_noise: float = 0.08, params: AutopilotParams | None = None) -> None:
        rng = random.Random(seed)
        base = params or AutopilotParams()
        cruise = base.cruise_speed * rng.uniform(0.8, 1.15)
        super().__init__(AutopilotParams(cruise_speed=cruise, lateral_accel=base.lateral_accel * rng.uniform(0.8, 1.2),
                                         lookahead_min_m=base.lookahead_min_m, lookahead_time_s=base.lookahead_time_s * rng.uniform(0.8, 1.3),
                                         idm=IdmParams(desired_speed=cruise, time_headway=base.idm.time_headway * rng.uniform(0.9, 1.4),
                                                       min_gap=base.idm.min_gap, max_accel=base.idm.max_accel, comfortable_decel=base.idm.comfortable_decel)))
        self.rng = rng
        self.steer_noise = steer_noise
        self._wander = 0.0
        self._throttle = 0.0
        # The clean action of the last call (what the autopilot itself would have applied): recorded beside the
        # applied, noisy controls so training can use noise injection with expert labels (Codevilla et al.).
        self.last_expert: Control | None = None

    def __call__(self, obs: Observation) -> Control:
        control = super().__call__(obs)
        self.last_expert = control
        self._wander += -0.5 * self._wander * 0.05 + self.steer_noise * math.sqrt(0.05) * self.rng.gauss(0, 1)
        self._throttle += 0.3 * (control.throttle - self._throttle)
        return Control(max(-1.0, min(1.0, control.steer + self._wander)), self._throttle if control.brake == 0 else 0.0, control.brake)
