"""Traffic for the closed-loop simulator: NPC vehicles that follow lanes, obey lights and stop signs, keep their
distance (the Intelligent Driver Model) and yield to pedestrians; pedestrians crossing at crosswalks. Pure and
deterministic for a seed.

NPCs drive on lanes (scalediffusion/sim/lanes.py): each keeps a short plan of lane segments, picks its next turn at
random (seeded) when it nears an intersection, and moves along the plan's path by arc length, so it never leaves
its lane. Its acceleration is IDM's towards the nearest obstacle ahead on its path: a vehicle (another NPC or the
ego), a pedestrian on the carriageway, or a stop line it must stop at (red light; yellow when it can still stop;
a stop sign until it has stood still there for a moment).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from scalediffusion.city.actors import actor_pose, crossing
from scalediffusion.sim.geometry import LightAxis, LightColor
from scalediffusion.sim.lanes import LaneMap, LanePath, LaneSegment, same_lane_threshold
from scalediffusion.v1 import world_pb2

LOOKAHEAD_M = 60.0
NPC_LENGTH_M, NPC_WIDTH_M = 4.5, 1.9
PEDESTRIAN_SIZE_M = 0.5


@dataclass(frozen=True)
class IdmParams:
    desired_speed: float = 9.0  # m/s (~32 km/h, city traffic)
    time_headway: float = 1.2  # s
    min_gap: float = 2.0  # m, bumper to bumper when stopped
    max_accel: float = 1.5  # m/s^2
    comfortable_decel: float = 2.5  # m/s^2
    max_decel: float = 8.0  # m/s^2: emergency braking limit


def idm_accel(speed: float, gap: float | None, closing_speed: float, p: IdmParams, desired: float | None = None) -> float:
    """IDM acceleration; gap None = free road."""
    v0 = desired or p.desired_speed
    free = 1.0 - (max(speed, 0.0) / v0) ** 4
    if gap is None:
        return p.max_accel * free
    s_star = p.min_gap + max(0.0, speed * p.time_headway + speed * closing_speed / (2 * math.sqrt(p.max_accel * p.comfortable_decel)))
    accel = p.max_accel * (free - (s_star / max(gap, 0.1)) ** 2)
    return max(accel, -p.max_decel)


def must_stop(stop, t: float, dt: float, speed: float, front: float, stood: dict[str, float], lights: LightClock,
              comfortable_decel: float, zone_m: float = 5.0, wait_s: float = 1.0) -> bool:
    """Whether a driver whose front is at `front` along its path must (still) stop at `stop`: a red light; a yellow
    one it can stop for comfortably (else it clears the junction); a stop sign until it has stood still within
    zone_m of the line for wait_s (accumulated in `stood`, per intersection, by this call)."""
    if stop.control == world_pb2.INTERSECTION_CONTROL_STOP_SIGN:
        waited = stood.get(stop.intersection_id, 0.0)
        if front > stop.s - zone_m and speed < 0.1:
            waited += dt
            stood[stop.intersection_id] = waited
        return waited < wait_s
    color = lights.color(stop.intersection_id, stop.axis, t)
    if color == "yellow":
        return speed**2 / (2 * comfortable_decel) <= stop.s - front + 1.0
    return color == "red"


@dataclass(frozen=True)
class Actor:
    """What others see of an actor: the game's ActorPose shape plus speed."""

    id: str
    kind: int  # world_pb2.ACTOR_KIND_VEHICLE / ACTOR_KIND_PEDESTRIAN
    x: float
    y: float
    heading: float
    length: float
    width: float
    speed: float = 0.0


@dataclass
class Npc:
    id: str
    plan: list[LaneSegment]
    path: LanePath
    s: float
    speed: float
    rng: random.Random
    desired_speed: float
    stopped_at: dict[str, float] = field(default_factory=dict)  # stop-sign intersection -> seconds stood still

    def pose(self) -> tuple[float, float, float]:
        return self.path.line.point_at(self.s)


class LightClock:
    """Traffic-light colours: the game's rule (clients/web/src/world/worldGeometry.ts lightColor), in one place."""

    def __init__(self, world: world_pb2.World) -> None:
        from scalediffusion.sim.geometry import light_color

        self.world = world
        self._color = light_color
        self.offsets = {i.id: i.light_offset_s for i in world.intersections}

    def color(self, intersection_id: str, axis: LightAxis, t: float) -> LightColor:
        return self._color(self.world, self.offsets[intersection_id], axis, t)


class Traffic:
    def __init__(self, world: world_pb2.World, lanes: LaneMap, vehicles: int, pedestrians: int, seed: int,
                 keep_clear: Sequence[tuple[float, float]] = (), params: IdmParams = IdmParams()) -> None:
        self.world, self.lanes, self.params = world, lanes, params
        self.lights = LightClock(world)
        self.rng = random.Random(seed)
        self.npcs: list[Npc] = []
        self.pedestrians = self._pedestrian_tracks(pedestrians)
        self._spawn(vehicles, keep_clear)

    # -- set-up -----------------------------------------------------------------------------------------------

    def _pedestrian_tracks(self, count: int) -> list[world_pb2.ActorTrack]:
        """People walking across roads at crosswalks (just outside the intersection boxes), back and forth."""
        if count <= 0:
            return []
        candidates = []
        for road in self.world.roads:
            for node in (road.from_intersection, road.to_intersection):
                if node in self.lanes.intersections:
                    candidates.append((road, node))
        tracks = []
        for n, (road, node) in enumerate(self.rng.sample(candidates, min(count, len(candidates)))):
            c = self.lanes.intersections[node].position
            length = math.hypot(road.end.x - road.start.x, road.end.y - road.start.y)
            ux, uy = (road.end.x - road.start.x) / length, (road.end.y - road.start.y) / length
            out = 1 if road.from_intersection == node else -1
            along = self.lanes.box_half[node] + 1.5
            half = road.width_m / 2 + road.sidewalk_m / 2
            cx, cy = c.x + out * ux * along, c.y + out * uy * along
            a = (cx - uy * half, cy + ux * half)
            b = (cx + uy * half, cy - ux * half)
            track = crossing(f"ped{n}", a, b, speed_mps=1.3 + 0.2 * self.rng.random(), wait_s=3.0 + 6.0 * self.rng.random())
            track.period_s += round(self.rng.random() * 10.0, 3)
            tracks.append(track)
        return tracks

    def _spawn(self, count: int, keep_clear) -> None:
        segments = sorted(self.lanes.segments.values(), key=lambda s: (s.road_id, s.from_node, s.lane))
        taken: list[tuple[float, float]] = list(keep_clear)
        attempts = 0
        while len(self.npcs) < count and attempts < count * 50:
            attempts += 1
            seg = self.rng.choice(segments)
            plan = [seg]
            path = self.lanes.path(plan)
            s = self.rng.uniform(0, path.line.length)
            x, y, _ = path.line.point_at(s)
            clearance = [30.0] * len(keep_clear) + [12.0] * (len(taken) - len(keep_clear))
            if any(math.hypot(x - px, y - py) < c for (px, py), c in zip(taken, clearance)):
                continue
            rng = random.Random(self.rng.getrandbits(32))
            npc = Npc(f"npc{len(self.npcs)}", plan, path, s, 0.0, rng, self.params.desired_speed * rng.uniform(0.8, 1.1))
            self._extend(npc)
            npc.speed = npc.desired_speed * 0.5
            self.npcs.append(npc)
            taken.append((x, y))

    def _extend(self, npc: Npc) -> None:
        """Keeps at least two segments planned ahead (random turns, seeded per NPC)."""
        changed = False
        while len(npc.plan) < 3:
            options = self.lanes.next_segments(npc.plan[-1])
            if not options:
                break
            npc.plan.append(npc.rng.choice(options))
            changed = True
        if changed:
            npc.path = self.lanes.path(npc.plan)

    def _advance_plan(self, npc: Npc) -> None:
        """Drops the segment behind the NPC once it is on the next one, keeping s on the same spot."""
        while len(npc.path.stretches) > 1 and npc.s >= npc.path.stretches[1][0]:
            shift = npc.path.stretches[1][0]
            passed = npc.plan.pop(0)
            npc.stopped_at.pop(passed.to_node, None)  # the next visit to that stop sign stops again
            npc.path = self.lanes.path(npc.plan)
            npc.s -= shift
            self._extend(npc)

    # -- state ------------------------------------------------------------------------------------------------

    def pedestrian_actors(self, t: float) -> list[Actor]:
        out = []
        for track in self.pedestrians:
            x, y, heading = actor_pose(track, t)
            moving = 1.3 if len(track.keyframes) > 1 else 0.0
            out.append(Actor(track.id, world_pb2.ACTOR_KIND_PEDESTRIAN, x, y, heading, PEDESTRIAN_SIZE_M, PEDESTRIAN_SIZE_M, moving))
        return out

    def vehicle_actors(self) -> list[Actor]:
        return [Actor(n.id, world_pb2.ACTOR_KIND_VEHICLE, *n.pose(), NPC_LENGTH_M, NPC_WIDTH_M, n.speed) for n in self.npcs]

    def actors(self, t: float) -> list[Actor]:
        return self.vehicle_actors() + self.pedestrian_actors(t)

    # -- step -------------------------------------------------------------------------------------------------

    def step(self, t: float, dt: float, ego: Actor | None) -> None:
        """Advances every NPC by dt; t is the time at the start of the step (lights, pedestrians)."""
        others = self.vehicle_actors() + ([ego] if ego is not None else [])
        walkers = self.pedestrian_actors(t)
        accels = [self._accel(npc, t, dt, others, walkers) for npc in self.npcs]
        for npc, accel in zip(self.npcs, accels):
            v = max(0.0, npc.speed + accel * dt)
            npc.s += (npc.speed + v) / 2 * dt
            npc.speed = v
            self._advance_plan(npc)

    def _accel(self, npc: Npc, t: float, dt: float, others: list[Actor], walkers: list[Actor]) -> float:
        x, y, heading = npc.pose()
        line = npc.path.line
        gap, closing = None, 0.0

        def consider(obstacle_s: float, obstacle_speed: float) -> None:
            nonlocal gap, closing
            g = obstacle_s - npc.s
            if 0 <= g <= LOOKAHEAD_M and (gap is None or g < gap):
                gap, closing = g, npc.speed - obstacle_speed

        hx, hy = math.cos(heading), math.sin(heading)
        for other in others:
            if other.id == npc.id:
                continue
            dx, dy = other.x - x, other.y - y
            if dx * hx + dy * hy <= 0 or dx * dx + dy * dy > LOOKAHEAD_M**2:
                continue
            s_other, lateral = line.project(other.x, other.y)
            if abs(lateral) < same_lane_threshold(npc.path.lane_width_at(s_other), NPC_WIDTH_M, other.width):
                consider(s_other - (NPC_LENGTH_M + other.length) / 2, other.speed * math.cos(other.heading - heading))
        for walker in walkers:
            dx, dy = walker.x - x, walker.y - y
            if dx * hx + dy * hy <= 0 or dx * dx + dy * dy > 30.0**2:
                continue
            s_walker, lateral = line.project(walker.x, walker.y)
            if abs(lateral) < NPC_WIDTH_M / 2 + 1.5:
                consider(s_walker - NPC_LENGTH_M / 2 - 1.0, 0.0)
        for stop in npc.path.stop_lines:
            front = npc.s + NPC_LENGTH_M / 2
            if stop.s < front - 0.5 or stop.s - front > LOOKAHEAD_M:
                continue
            if must_stop(stop, t, dt, npc.speed, front, npc.stopped_at, self.lights, self.params.comfortable_decel):
                consider(stop.s - NPC_LENGTH_M / 2, 0.0)
                break
        return idm_accel(npc.speed, gap, closing, self.params, npc.desired_speed)
