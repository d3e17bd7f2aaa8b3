"""Baseline drivers for the simulator: a privileged autopilot (knows the route, the lights and every actor) and the
trivial policies that bound the scale of the scores; the autopilot with human-like noise drives the bot players.

The autopilot steers by pure pursuit on the route's lane centre line and sets its speed with the Intelligent Driver
Model (scalediffusion/sim/traffic.py) towards the nearest obstacle on its route: a vehicle, a pedestrian on the
carriageway, a red (or still-stoppable yellow) light, or a stop sign until it has stood still there.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.lanes import same_lane_threshold
from scalediffusion.sim.traffic import IdmParams, idm_accel, must_stop
from scalediffusion.v1 import world_pb2

if TYPE_CHECKING:  # episode.py imports this module
    import numpy as np

    from scalediffusion.sim.episode import Episode


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
    image: np.ndarray | None  # RGB uint8 [H, W, 3]; None when not rendering
    ego: vm.VehicleState
    route_s: float  # the ego's arc length along the route path
    episode: Episode  # privileged access: path, traffic, lights
    # The front range sensor (radar) for drivers that ask: metres to the nearest obstacle ahead, read on demand
    # (a callable: the sweep costs, and a driver needs it only while stuck).
    front_range_m: float | Callable[[], float] = math.inf
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
    # A driver standing at a light that turns green waits this long (drawn per stop, seconds) before it goes, as a
    # person does. Without it no recorded frame shows a car standing at a green, and a light head learns "standing
    # in front of a junction" instead of the lamp (services/trainer/results/value). (0, 0): go at once.
    green_reaction_s: tuple[float, float] = (0.0, 0.0)
    green_zone_m: float = 8.0  # "at the light": the front within this distance of the stop line


class Autopilot:
    name = "autopilot"

    def __init__(self, params: AutopilotParams = AutopilotParams(), vehicle: vm.VehicleParams = vm.DEFAULT_PARAMS) -> None:
        self.p, self.vehicle = params, vehicle
        self._stood: dict[str, float] = {}
        self._last_t: float | None = None
        # Per light the car stood at when it turned green: the time it goes. Its own generator, so drivers without a
        # reaction draw nothing and drive exactly as before.
        self._green_go: dict[str, float] = {}
        self._reaction_rng = random.Random(0)

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
            if must_stop(stop, obs.t, dt, speed, front, self._stood, ep.lights, self.p.idm.comfortable_decel, zone_m=6.0) \
                    or self._reacting_to_green(stop, obs.t, speed, front):
                consider(stop.s - front - 1.0, 0.0)
                break
        return gap, closing

    def _reacting_to_green(self, stop, t: float, speed: float, front: float) -> bool:
        """Whether the car still stands at a light that has turned green because its driver has not reacted yet."""
        lo, hi = self.p.green_reaction_s
        if hi <= 0 or stop.control != world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT:
            return False
        key = stop.intersection_id
        if key not in self._green_go:
            if speed >= 0.3 or stop.s - front > self.p.green_zone_m:
                return False  # arrived at a green, or not at the line: nothing to react to
            self._green_go[key] = t + self._reaction_rng.uniform(lo, hi)
        if t < self._green_go[key]:
            return True
        if speed >= 0.3:
            del self._green_go[key]  # gone: the next visit to this junction reacts afresh
        return False

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


@dataclass(frozen=True)
class TurnLapseParams:
    """A driver's lapse inside a turn: now and then the steering is held short of what the turn needs (or, less
    often, past it) for a moment, so the car ends up late and wide (or cutting in) and the autopilot has to recover.
    Codevilla et al.'s noise injection, placed where a policy fails: without it a policy never sees a turn it has
    fallen behind in. The clean action stays the expert label (TelemetryTick.expert_controls)."""

    probability: float = 0.0  # chance that a turn gets a lapse; 0 = never
    turn_heading_rad: float = 0.3  # the route's heading changes this much over the next turn_ahead_m: "in a turn"
    turn_ahead_m: float = 8.0
    delay_s: tuple[float, float] = (0.0, 0.8)  # from the turn's start to the lapse
    duration_s: tuple[float, float] = (0.4, 1.2)
    under_factor: tuple[float, float] = (0.0, 0.3)  # the clean steer is scaled by this while the lapse lasts
    over_factor: tuple[float, float] = (1.4, 1.8)
    over_share: float = 0.2  # share of lapses that oversteer
    # A lapse moves the steer at least this far from the clean one, so the processor (its off_expert_steer, 0.35)
    # tells a lapse from the steering wander (stationary sigma 0.08, rarely past 0.3) in every turn, gentle ones too.
    min_gap: float = 0.5
    cooldown_s: float = 3.0  # a new turn counts only this long after the last lapse ended

    def validate(self) -> TurnLapseParams:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"turn lapse probability must be within [0, 1], not {self.probability}")
        return self


class TurnLapse:
    """When the lapses of TurnLapseParams happen and what they do to the steer. Pure and seeded."""

    def __init__(self, params: TurnLapseParams, rng: random.Random) -> None:
        self.p, self.rng = params.validate(), rng
        self._in_turn = False
        self._start = self._end = -math.inf
        self._factor = 1.0
        self._quiet_until = -math.inf

    def steer(self, t: float, turning: bool, clean: float) -> float:
        """The steer applied at time t, given whether the route turns here and the expert's clean steer."""
        if turning and not self._in_turn and t >= self._quiet_until and self.p.probability > 0:
            if self.rng.random() < self.p.probability:
                self._start = t + self.rng.uniform(*self.p.delay_s)
                self._end = self._start + self.rng.uniform(*self.p.duration_s)
                over = self.rng.random() < self.p.over_share
                self._factor = self.rng.uniform(*(self.p.over_factor if over else self.p.under_factor))
                self._quiet_until = self._end + self.p.cooldown_s
        self._in_turn = turning
        if not self._start <= t < self._end:
            return clean
        direction = 1.0 if clean >= 0 else -1.0
        gap = max(abs(clean * (self._factor - 1.0)), self.p.min_gap)
        return clean + (gap if self._factor > 1.0 else -gap) * direction


class NoisyAutopilot(Autopilot):
    """The autopilot driving like a person: steering wanders (an Ornstein-Uhlenbeck process) and is corrected,
    the cruise speed differs per driver, reactions to the throttle lag a little. Seeded: the same seed drives the
    same way."""

    name = "noisy-autopilot"

    def __init__(self, seed: int, steer_noise: float = 0.08, params: AutopilotParams | None = None,
                 lapses: TurnLapseParams = TurnLapseParams(), green_reaction_s: tuple[float, float] = (0.0, 0.0)) -> None:
        rng = random.Random(seed)
        base = params or AutopilotParams()
        cruise = base.cruise_speed * rng.uniform(0.8, 1.15)
        super().__init__(AutopilotParams(cruise_speed=cruise, lateral_accel=base.lateral_accel * rng.uniform(0.8, 1.2),
                                         lookahead_min_m=base.lookahead_min_m, lookahead_time_s=base.lookahead_time_s * rng.uniform(0.8, 1.3),
                                         idm=IdmParams(desired_speed=cruise, time_headway=base.idm.time_headway * rng.uniform(0.9, 1.4),
                                                       min_gap=base.idm.min_gap, max_accel=base.idm.max_accel, comfortable_decel=base.idm.comfortable_decel),
                                         green_reaction_s=green_reaction_s))
        self.rng = rng
        self.steer_noise = steer_noise
        self._wander = 0.0
        self._throttle = 0.0
        # The clean action of the last call (what the autopilot itself would have applied): recorded beside the
        # applied, noisy controls so training can use noise injection with expert labels (Codevilla et al.).
        self.last_expert: Control | None = None
        # Its own generator: a fleet recorded without lapses drives exactly as before they existed.
        self.lapses = TurnLapse(lapses, random.Random(f"lapse-{seed}"))
        self._reaction_rng = random.Random(f"green-{seed}")

    def __call__(self, obs: Observation) -> Control:
        control = super().__call__(obs)
        self.last_expert = control
        self._wander += -0.5 * self._wander * 0.05 + self.steer_noise * math.sqrt(0.05) * self.rng.gauss(0, 1)
        self._throttle += 0.3 * (control.throttle - self._throttle)
        steer = self.lapses.steer(obs.t, self._route_turns(obs), control.steer) if self.lapses.p.probability > 0 else control.steer
        return Control(max(-1.0, min(1.0, steer + self._wander)), self._throttle if control.brake == 0 else 0.0, control.brake)

    def _route_turns(self, obs: Observation) -> bool:
        line = obs.episode.path.line
        _, _, h0 = line.point_at(obs.route_s)
        _, _, h1 = line.point_at(obs.route_s + self.lapses.p.turn_ahead_m)
        return abs(math.atan2(math.sin(h1 - h0), math.cos(h1 - h0))) > self.lapses.p.turn_heading_rad
