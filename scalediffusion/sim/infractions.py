"""What the ego did wrong on a route, in CARLA Leaderboard 2.0 terms: the simulator's counterpart of scenario_runner's
atomic criteria, producing the events scalediffusion/leaderboard.py scores. Pure: fed one observation per step.

Applies here: collisions (pedestrians, vehicles incl. parked cars, layout = buildings), red lights (crossing a stop
line on red), stop signs (entering without standing still, < 0.1 m/s, within 8 m before the line), outside route
lanes (distance driven with the car's centre across the centre line or off the carriageway, junctions excepted),
min speed (at 25/50/75/100 % of the route, mean ego speed vs mean speed of traffic within 50 m), route deviation
(> 30 m off the route), agent blocked (180 s standing) and route timeout (these three end the route).
Does not apply (no such scenarios in the simulator): scenario timeouts, yielding to emergency vehicles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from scalediffusion import leaderboard
from scalediffusion.leaderboard import Infraction
from scalediffusion.sim.lanes import LanePath
from scalediffusion.v1 import world_pb2

# The game's collision kinds (scalediffusion/sim/vehicle.py) -> Leaderboard infraction kinds. "bounds" is the edge
# of the world: static layout, like a building.
COLLISION_KIND = {"building": "collisions_layout", "bounds": "collisions_layout", "parked": "collisions_vehicle",
                  "vehicle": "collisions_vehicle", "pedestrian": "collisions_pedestrian"}


@dataclass(frozen=True)
class MonitorParams:
    deviation_m: float = 30.0
    blocked_s: float = 180.0
    stopped_speed: float = 0.1  # m/s: "stood still" for stop signs and blocking
    stop_zone_m: float = 8.0
    surroundings_m: float = 50.0
    # Contact with the same object counts again only after this long and this far from the last one (upstream
    # CollisionTest: MAX_ID_TIME 5 s, MIN_AREA_OF_COLLISION 3 m), so pushing against a wall is one collision.
    recollide_after_s: float = 5.0
    recollide_beyond_m: float = 3.0
    seconds_per_meter: float = 0.8  # route timeout = 30 s + this x route length (upstream gives 0.8 s per metre)
    ego_length_m: float = 4.6


@dataclass
class _Checkpoint:
    ego_speeds: list[float] = field(default_factory=list)
    traffic_speeds: list[float] = field(default_factory=list)


class RouteMonitor:
    def __init__(self, route_id: str, path: LanePath, light_color, params: MonitorParams = MonitorParams()) -> None:
        """light_color(intersection_id, axis, t) -> "green" | "yellow" | "red"."""
        self.route_id, self.path, self.light_color, self.p = route_id, path, light_color, params
        self.length = path.line.length
        self.timeout_s = 30.0 + params.seconds_per_meter * self.length
        self.events: list[Infraction] = []
        self.status = ""  # set when the route ends
        self.progress_s = 0.0
        self.current_s = 0.0  # the ego's arc length along the route now (progress_s is the furthest reached)
        self._front_s = 0.0
        self._segment_hint = 0
        self._last_contact: dict[tuple[str, str], tuple[float, float, float]] = {}
        self._stop_min_speed: dict[int, float] = {}
        self._outside_m = 0.0
        self._driven_m = 0.0
        self._standing_since: float | None = None
        self._checkpoints = [_Checkpoint() for _ in range(4)]
        self._next_checkpoint = 0
        self.trajectory: list[tuple[float, float]] = []
        self.event_positions: list[tuple[str, float, float]] = []

    @property
    def ended(self) -> bool:
        return bool(self.status)

    @property
    def completion_percent(self) -> float:
        return min(100.0, 100.0 * self.progress_s / self.length) if self.length > 0 else 100.0

    def _event(self, kind: str, x: float, y: float, message: str, **extra) -> None:
        self.events.append(Infraction(kind=kind, location=(x, y, 0.0), message=message, **extra))
        self.event_positions.append((kind, x, y))

    def observe(self, t: float, dt: float, x: float, y: float, speed: float, collision: tuple[str, str] | None,
                traffic: list[tuple[float, float, float]]) -> None:
        """One step: ego centre (x, y), its speed, what it touches now ((kind, object id) with kind building |
        parked | vehicle | pedestrian), and traffic as (x, y, speed) of NPC vehicles."""
        if self.ended:
            return
        self.trajectory.append((x, y))
        line = self.path.line
        n = len(line.points)
        lo = max(0, self._segment_hint - 4)
        s, lateral = line.project(x, y, lo, min(n - 1, self._segment_hint + 30))
        self._segment_hint = max(self._segment_hint, int(line.cum.searchsorted(s)) - 1)
        self.current_s = s
        front = s + self.p.ego_length_m / 2
        step_m = abs(speed) * dt
        self._driven_m += step_m

        if abs(lateral) > self.p.deviation_m:
            self._event("route_dev", x, y, f"Agent deviated from the route at (x={x:.1f}, y={y:.1f}, z=0.0)")
            self.status = "Failed - Agent deviated from the route"
            return
        self._collisions(t, x, y, collision)
        self._stop_lines(t, x, y, speed, front)
        if self._outside_lanes(s, lateral):
            self._outside_m += step_m
        self._min_speed(x, y, speed, traffic, s)
        self.progress_s = max(self.progress_s, min(s, self.length))
        self._front_s = front

        if abs(speed) < self.p.stopped_speed:
            self._standing_since = t if self._standing_since is None else self._standing_since
            if t - self._standing_since >= self.p.blocked_s:
                self._event("vehicle_blocked", x, y, f"Agent got blocked at (x={x:.1f}, y={y:.1f}, z=0.0)")
                self.status = "Failed - Agent got blocked"
                return
        else:
            self._standing_since = None
        if self.progress_s >= self.length - 1.0:
            self.progress_s = self.length
            self.status = "Completed"
        elif t >= self.timeout_s:
            self._event("route_timeout", x, y, "Agent timed out")
            self.status = "Failed - Agent timed out"

    def _collisions(self, t: float, x: float, y: float, collision: tuple[str, str] | None) -> None:
        if collision is None:
            return
        kind, object_id = collision
        last = self._last_contact.get(collision)
        if last is not None:
            last_t, last_x, last_y = last
            if t - last_t < self.p.recollide_after_s or math.hypot(x - last_x, y - last_y) < self.p.recollide_beyond_m:
                self._last_contact[collision] = (t, last_x, last_y)
                return
        self._last_contact[collision] = (t, x, y)
        self._event(COLLISION_KIND[kind], x, y, f"Agent collided against object with type={kind} and id={object_id} "
                                                 f"at (x={x:.1f}, y={y:.1f}, z=0.0)")

    def _stop_lines(self, t: float, x: float, y: float, speed: float, front: float) -> None:
        for k, stop in enumerate(self.path.stop_lines):
            if stop.s >= self.length - 1.0:
                continue  # the route ends at this line: what comes after is not part of it
            if stop.control == world_pb2.INTERSECTION_CONTROL_STOP_SIGN and stop.s - self.p.stop_zone_m <= front <= stop.s:
                self._stop_min_speed[k] = min(self._stop_min_speed.get(k, math.inf), abs(speed))
            crossed = self._front_s < stop.s <= front
            if not crossed:
                continue
            if stop.control == world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT:
                if self.light_color(stop.intersection_id, stop.axis, t) == "red":
                    self._event("red_light", x, y, f"Agent ran a red light {stop.intersection_id} at (x={x:.1f}, y={y:.1f}, z=0.0)")
            elif self._stop_min_speed.get(k, math.inf) >= self.p.stopped_speed:
                self._event("stop_infraction", x, y, f"Agent ran a stop sign {stop.intersection_id} at (x={x:.1f}, y={y:.1f}, z=0.0)")

    def _outside_lanes(self, s: float, lateral: float) -> bool:
        """The centre is outside the lanes of the route's direction: across the centre line or off the kerb side.
        Junctions (between road stretches) never count, as upstream."""
        for s0, s1, seg in self.path.stretches:
            if s0 <= s <= s1:
                # The route follows lane `seg.lane` (lateral 0); lanes 0..lane-1, nearer the centre line, are on its left.
                left_edge = (seg.lane + 0.5) * seg.lane_width
                right_edge = -(seg.lanes - seg.lane - 0.5) * seg.lane_width
                return not (right_edge - 0.2 <= lateral <= left_edge + 0.2)
        return False

    def _min_speed(self, x: float, y: float, speed: float, traffic: list[tuple[float, float, float]], s: float) -> None:
        if self._next_checkpoint >= 4:
            return
        checkpoint = self._checkpoints[self._next_checkpoint]
        checkpoint.ego_speeds.append(abs(speed))
        near = [v for tx, ty, v in traffic if math.hypot(tx - x, ty - y) <= self.p.surroundings_m]
        if near:
            checkpoint.traffic_speeds.append(sum(near) / len(near))
        while self._next_checkpoint < 4 and s >= self.length * (self._next_checkpoint + 1) / 4 - 1.0:
            done = self._checkpoints[self._next_checkpoint]
            self._next_checkpoint += 1
            if done.traffic_speeds and done.ego_speeds:
                traffic_mean = sum(done.traffic_speeds) / len(done.traffic_speeds)
                ego_mean = sum(done.ego_speeds) / len(done.ego_speeds)
                if traffic_mean > 0.5:
                    percent = 100.0 * ego_mean / traffic_mean
                    if percent < 100.0:
                        self._event("min_speed_infractions", x, y,
                                    f"Average speed is {percent:.2f}% of the surrounding traffic's one", percent=percent)

    def finish(self, t: float, duration_s: float | None = None) -> leaderboard.RouteRun:
        """The RouteRun of this route (closes the outside-lanes total); the route ends here if it had not."""
        if not self.status:
            self.status = "Failed - Agent timed out" if t >= self.timeout_s else "Failed - Simulation stopped"
        events = list(self.events)
        if self._outside_m > 0:
            driven = max(self.progress_s, 1.0)
            percent = min(100.0, 100.0 * self._outside_m / driven)
            events.append(Infraction(kind="outside_route_lanes", percent=percent, distance_m=self._outside_m,
                                     message=f"Agent went outside its route lanes for about {self._outside_m:.3f} meters "
                                             f"({percent:.2f}% of the completed route)"))
        status = self.status
        if status == "Completed" and not events:
            status = "Perfect"
        return leaderboard.RouteRun(self.route_id, self.length, self.completion_percent, tuple(events), status,
                                    duration_s if duration_s is not None else t)
