"""The player's car: a kinematic bicycle model and its collisions with the city (buildings, parked cars, the world's
edge, moving actors). A port of the game's clients/web/src/sim/vehicle.ts, with the same floating-point operations in
the same order, so the simulator drives exactly the car players drive. Pure and deterministic.

The sim golden test keeps the two equal: tools/gen_sim_golden.py writes clients/web/src/sim/fixtures/sim_golden.json
from this module, and clients/web/src/sim/golden.test.ts replays it against vehicle.ts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scalediffusion.city.actors import ActorPose, actor_poses
from scalediffusion.sim.geometry_core import Vec2, js_hypot, normalise_ring
from scalediffusion.v1 import world_pb2

__all__ = [
    "DEFAULT_PARAMS", "Aabb", "ActorPose", "Collision", "CollisionWorld", "DriveInput", "Obstacle", "StepResult",
    "VehicleParams", "VehicleState", "actor_collision", "actor_poses", "car_corners", "circle_overlaps_convex",
    "collides", "collision_world", "convex_overlap", "drive_accel", "max_steer_angle", "normalise_angle",
    "oriented_box", "point_in_polygon", "step", "step_with_collisions",
]

TWO_PI = 2 * math.pi


@dataclass(frozen=True, slots=True)
class VehicleState:
    x: float  # centre of the car, metres (x east, y north)
    y: float
    theta: float  # heading, radians counter-clockwise from +x, in (-pi, pi]
    speed: float  # signed forward speed, m/s (negative when reversing)


@dataclass(frozen=True, slots=True)
class DriveInput:
    steer: float  # [-1, 1], positive = steer right (clockwise; CARLA's convention)
    throttle: float  # [0, 1]
    brake: float  # [0, 1]
    reverse: bool = False  # reverse gear: throttle drives backwards; without it the car never rolls below 0 m/s


@dataclass(frozen=True, slots=True)
class VehicleParams:
    wheelbase_m: float = 2.7
    length_m: float = 4.6
    width_m: float = 1.9
    max_steer_rad: float = (35 * math.pi) / 180  # largest road-wheel angle at walking pace
    max_lateral_accel: float = 7.0  # steering keeps v^2 tan(delta) / L at or below this (m/s^2)
    max_accel: float = 3.5  # throttle acceleration at low speed (m/s^2)
    power_per_mass: float = 60.0  # W/kg: above max_accel the throttle gives power / v
    max_brake: float = 8.0  # deceleration at full brake (m/s^2)
    rolling: float = 0.15  # resistance a = rolling + aero * v^2
    aero: float = 0.0012
    max_speed: float = 40.0
    max_reverse_speed: float = 5.0
    reverse_accel: float = 2.0


DEFAULT_PARAMS = VehicleParams()


def _clamp(v: float, lo: float, hi: float) -> float:
    """The game's clamp: non-finite input counts as 0."""
    return min(hi, max(lo, v)) if math.isfinite(v) else 0.0


def _sign(v: float) -> float:
    """Math.sign: -1, 0 or 1, NaN for NaN (which equals nothing)."""
    return math.nan if math.isnan(v) else (1.0 if v > 0 else (-1.0 if v < 0 else 0.0))


def normalise_angle(a: float) -> float:
    """An angle in (-pi, pi]. JavaScript's % is C's fmod (the sign of the dividend), not Python's %."""
    r = math.fmod(a, TWO_PI) if math.isfinite(a) else math.nan
    if r <= -math.pi:
        r += TWO_PI
    if r > math.pi:
        r -= TWO_PI
    return r


def max_steer_angle(speed: float, p: VehicleParams = DEFAULT_PARAMS) -> float:
    """The largest road-wheel angle at a speed: full lock when slow, shrinking so lateral acceleration stays bounded."""
    v2 = speed * speed
    if v2 < 1e-9:
        return p.max_steer_rad
    return min(p.max_steer_rad, math.atan((p.max_lateral_accel * p.wheelbase_m) / v2))


def drive_accel(speed: float, drive: DriveInput, p: VehicleParams = DEFAULT_PARAMS) -> float:
    """Longitudinal acceleration from the pedals alone (before resistances), m/s^2."""
    throttle = _clamp(drive.throttle, 0.0, 1.0)
    if drive.reverse:
        return -throttle * p.reverse_accel
    return throttle * min(p.max_accel, p.power_per_mass / max(abs(speed), 1.0))


def step(state: VehicleState, drive: DriveInput, dt: float, p: VehicleParams = DEFAULT_PARAMS) -> VehicleState:
    """One fixed time step. Longitudinal: pedal acceleration, then brake + rolling + aerodynamic resistance pulling
    the speed towards zero (never through it). Lateral: kinematic bicycle about the centre of mass (half-way along
    the wheelbase) with the speed-dependent steering limit. Positive steer turns clockwise (theta decreases)."""
    if not dt > 0:
        return state
    v0 = state.speed
    v = v0 + drive_accel(v0, drive, p) * dt
    resist = (_clamp(drive.brake, 0.0, 1.0) * p.max_brake + p.rolling + p.aero * v * v) * dt
    v = 0.0 if abs(v) <= resist else v - _sign(v) * resist
    # No rolling backwards without reverse gear, and no creeping forward in reverse; a change of direction always
    # passes through a step at exactly 0.
    if not drive.reverse and v < 0 and v0 >= 0:
        v = 0.0
    if drive.reverse and v > 0 and v0 <= 0:
        v = 0.0
    if v0 != 0 and v != 0 and _sign(v) != _sign(v0):
        v = 0.0
    v = _clamp(v, -p.max_reverse_speed, p.max_speed)

    delta = -_clamp(drive.steer, -1.0, 1.0) * max_steer_angle(v0, p)
    beta = math.atan(0.5 * math.tan(delta))
    v_avg = (v0 + v) / 2
    theta_rate = (v_avg / p.wheelbase_m) * math.cos(beta) * math.tan(delta)
    theta_mid = state.theta + (theta_rate * dt) / 2
    return VehicleState(
        x=state.x + v_avg * math.cos(theta_mid + beta) * dt,
        y=state.y + v_avg * math.sin(theta_mid + beta) * dt,
        theta=normalise_angle(state.theta + theta_rate * dt),
        speed=v,
    )


# ---- collisions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Aabb:
    min_x: float
    min_y: float
    max_x: float
    max_y: float


@dataclass(frozen=True, eq=False)  # identity equality: a query visits each obstacle once
class Obstacle:
    kind: Literal["building", "parked"]
    id: str
    polygon: tuple[Vec2, ...]  # a building's counter-clockwise footprint, or a parked car's corners
    box: Aabb


@dataclass(frozen=True, slots=True)
class Collision:
    kind: Literal["building", "parked", "bounds", "actor"]
    id: str


@dataclass(frozen=True, eq=False)
class CollisionWorld:
    """A World's obstacles bucketed in a uniform grid (cells `cell` metres wide) so each query looks at a handful."""

    cell: float
    buckets: dict[tuple[int, int], list[Obstacle]]
    bounds: Aabb | None


def _box_of(points: Sequence[Vec2]) -> Aabb:
    min_x = min_y = math.inf
    max_x = max_y = -math.inf
    for q in points:
        min_x = min(min_x, q.x)
        min_y = min(min_y, q.y)
        max_x = max(max_x, q.x)
        max_y = max(max_y, q.y)
    return Aabb(min_x, min_y, max_x, max_y)


def _cells(lo: float, hi: float, cell: float) -> range:
    """Grid indices floor(lo / cell) .. floor(hi / cell); none for a non-finite box (the game's loop would not run,
    or never end, there)."""
    a, b = lo / cell, hi / cell
    if not (math.isfinite(a) and math.isfinite(b)):
        return range(0)
    return range(math.floor(a), math.floor(b) + 1)


def oriented_box(cx: float, cy: float, heading: float, length: float, width: float) -> list[Vec2]:
    """Corners of an oriented box (counter-clockwise): centre, heading, length along the heading, width across."""
    c = math.cos(heading)
    s = math.sin(heading)
    hl = length / 2
    hw = width / 2
    return [
        Vec2(cx + c * hl + s * hw, cy + s * hl - c * hw),
        Vec2(cx + c * hl - s * hw, cy + s * hl + c * hw),
        Vec2(cx - c * hl - s * hw, cy - s * hl + c * hw),
        Vec2(cx - c * hl + s * hw, cy - s * hl - c * hw),
    ]


def car_corners(state: VehicleState, p: VehicleParams = DEFAULT_PARAMS) -> list[Vec2]:
    return oriented_box(state.x, state.y, state.theta, p.length_m, p.width_m)


def point_in_polygon(point: Vec2, poly: Sequence[Vec2]) -> bool:
    """Ray-casting point-in-polygon (boundary points may go either way)."""
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        a = poly[i]
        b = poly[j]
        if (a.y > point.y) != (b.y > point.y) and point.x < ((b.x - a.x) * (point.y - a.y)) / (b.y - a.y) + a.x:
            inside = not inside
        j = i
    return inside


def convex_overlap(a: Sequence[Vec2], b: Sequence[Vec2]) -> bool:
    """Separating-axis test for two convex polygons."""
    for poly in (a, b):
        for i in range(len(poly)):
            p = poly[i]
            q = poly[(i + 1) % len(poly)]
            ax = -(q.y - p.y)
            ay = q.x - p.x
            min_a, max_a = math.inf, -math.inf
            for v in a:
                d = v.x * ax + v.y * ay
                min_a = min(min_a, d)
                max_a = max(max_a, d)
            min_b, max_b = math.inf, -math.inf
            for v in b:
                d = v.x * ax + v.y * ay
                min_b = min(min_b, d)
                max_b = max(max_b, d)
            if max_a < min_b or max_b < min_a:
                return False
    return True


def _js_or(value: float, default: float) -> float:
    """JavaScript's `value || default` for a number: 0 and NaN fall back to the default."""
    return value if not math.isnan(value) and value != 0 else default


# The game caches a World's grid in a WeakMap; protobuf messages can be neither weakly referenced nor hashed, so
# this keeps the last one built (by identity). Loops should build it once and pass the CollisionWorld.
_last_built: tuple[world_pb2.World, CollisionWorld] | None = None


def collision_world(world: world_pb2.World, cell: float = 32.0) -> CollisionWorld:
    global _last_built
    if _last_built is not None and _last_built[0] is world and _last_built[1].cell == cell:
        return _last_built[1]
    buckets: dict[tuple[int, int], list[Obstacle]] = {}

    def add(o: Obstacle) -> None:
        for gx in _cells(o.box.min_x, o.box.max_x, cell):
            for gy in _cells(o.box.min_y, o.box.max_y, cell):
                buckets.setdefault((gx, gy), []).append(o)

    for b in world.buildings:
        ring = normalise_ring(b.footprint)
        if len(ring) >= 3:
            add(Obstacle("building", b.id, tuple(ring), _box_of(ring)))
    for i, v in enumerate(world.parked):
        corners = oriented_box(v.position.x, v.position.y, v.heading, _js_or(v.length_m, 4.6), _js_or(v.width_m, 1.9))
        add(Obstacle("parked", f"parked-{i}", tuple(corners), _box_of(corners)))
    bounds = None
    # An unset min/max is undefined in the game (no bounds), not the origin.
    if world.HasField("min") and world.HasField("max") and world.max.x > world.min.x and world.max.y > world.min.y:
        bounds = Aabb(world.min.x, world.min.y, world.max.x, world.max.y)
    out = CollisionWorld(cell=cell, buckets=buckets, bounds=bounds)
    _last_built = (world, out)
    return out


def _as_collision_world(world: world_pb2.World | CollisionWorld) -> CollisionWorld:
    return world if isinstance(world, CollisionWorld) else collision_world(world)


def collides(state: VehicleState, world: world_pb2.World | CollisionWorld, p: VehicleParams = DEFAULT_PARAMS) -> Collision | None:
    """What the car at `state` overlaps: a building footprint (a car corner inside it, or a footprint corner inside
    the car), a parked car (oriented boxes overlap), or the edge of the world. None when clear."""
    cw = _as_collision_world(world)
    car = car_corners(state, p)
    box = _box_of(car)
    bounds = cw.bounds
    if bounds is not None and (box.min_x < bounds.min_x or box.min_y < bounds.min_y or box.max_x > bounds.max_x or box.max_y > bounds.max_y):
        return Collision("bounds", "world")
    seen: set[Obstacle] = set()
    for gx in _cells(box.min_x, box.max_x, cw.cell):
        for gy in _cells(box.min_y, box.max_y, cw.cell):
            for o in cw.buckets.get((gx, gy), ()):
                if o in seen:
                    continue
                seen.add(o)
                if o.box.max_x < box.min_x or o.box.min_x > box.max_x or o.box.max_y < box.min_y or o.box.min_y > box.max_y:
                    continue
                if o.kind == "parked":
                    if convex_overlap(car, o.polygon):
                        return Collision("parked", o.id)
                elif any(point_in_polygon(c, o.polygon) for c in car) or any(point_in_polygon(c, car) for c in o.polygon):
                    return Collision("building", o.id)
    return None


def circle_overlaps_convex(cx: float, cy: float, r: float, poly: Sequence[Vec2]) -> bool:
    """Whether a circle overlaps a convex polygon (counter-clockwise): centre inside, or closer than r to an edge."""
    if point_in_polygon(Vec2(cx, cy), poly):
        return True
    r2 = r * r
    for i in range(len(poly)):
        a = poly[i]
        b = poly[(i + 1) % len(poly)]
        ex = b.x - a.x
        ey = b.y - a.y
        len2 = ex * ex + ey * ey
        f = min(1.0, max(0.0, ((cx - a.x) * ex + (cy - a.y) * ey) / len2)) if len2 > 0 else 0.0
        dx = a.x + ex * f - cx
        dy = a.y + ey * f - cy
        if dx * dx + dy * dy <= r2:
            return True
    return False


def actor_collision(state: VehicleState, actors: Sequence[ActorPose], p: VehicleParams = DEFAULT_PARAMS) -> Collision | None:
    """The first moving actor the car at `state` overlaps: an NPC vehicle (oriented boxes overlap) or a pedestrian
    (a circle of diameter width_m against the car's box). None when clear."""
    if not actors:
        return None
    car = car_corners(state, p)
    reach = js_hypot(p.length_m, p.width_m) / 2
    for a in actors:
        far = reach + js_hypot(a.length_m, a.width_m) / 2
        if abs(a.x - state.x) > far or abs(a.y - state.y) > far:
            continue
        if a.kind == world_pb2.ACTOR_KIND_PEDESTRIAN:
            if circle_overlaps_convex(a.x, a.y, a.width_m / 2, car):
                return Collision("actor", a.id)
        elif convex_overlap(car, oriented_box(a.x, a.y, a.heading, a.length_m, a.width_m)):
            return Collision("actor", a.id)
    return None


@dataclass(frozen=True, slots=True)
class StepResult:
    state: VehicleState
    collision: Collision | None


def step_with_collisions(
    state: VehicleState,
    drive: DriveInput,
    dt: float,
    world: world_pb2.World | CollisionWorld,
    p: VehicleParams = DEFAULT_PARAMS,
    actors: Sequence[ActorPose] = (),
) -> StepResult:
    """step() with collisions: a step that would end overlapping an obstacle is undone (the car stays where it was,
    i.e. is pushed back out of the obstacle) and stops dead. A car that already overlaps something (spawned inside,
    or run into by a moving actor) may move freely so it can get out. `actors` are the moving actors' poses at this
    step's time (actor_poses), treated like parked cars (vehicles) or round obstacles (pedestrians)."""
    cw = _as_collision_world(world)
    nxt = step(state, drive, dt, p)

    def hit_at(s: VehicleState) -> Collision | None:
        hit = collides(s, cw, p)
        return hit if hit is not None else actor_collision(s, actors, p)

    hit = hit_at(nxt)
    if hit is None:
        return StepResult(nxt, None)
    if hit_at(state) is not None:
        return StepResult(nxt, hit)
    return StepResult(dataclasses.replace(state, speed=0.0), hit)
