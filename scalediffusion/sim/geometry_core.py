"""The few geometry helpers the simulator's vehicle and routing ports need: a minimal port of pt, roadLength,
roadFrame, signedArea and normaliseRing from clients/web/src/world/worldGeometry.ts, plus Math.hypot computed the
way the game's JavaScript engine (V8) computes it. Pure. The sim golden test (tools/gen_sim_golden.py ->
clients/web/src/sim/fixtures/sim_golden.json, checked by clients/web/src/sim/golden.test.ts) keeps them equal.

The rendering geometry (road quads, sidewalks, buildings, poles, lights, markings) is ported separately, in
scalediffusion/sim/geometry.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vec2:
    """A point or direction in the city frame: metres, x east, y north."""

    x: float
    y: float


ORIGIN = Vec2(0.0, 0.0)


def js_hypot(x: float, y: float) -> float:
    """Math.hypot(x, y) bit for bit as V8 computes it (scaled by the larger magnitude, Kahan-summed squares).
    Python's math.hypot is more accurate and so differs in the last bit for ~40 % of inputs; this one keeps
    distances, route lengths and the comparisons made on them identical to the game's."""
    ax, ay = abs(x), abs(y)
    largest = max(ax, ay)
    if largest == math.inf:
        return math.inf
    if math.isnan(ax) or math.isnan(ay):
        return math.nan
    if largest == 0:
        return 0.0
    total = 0.0
    compensation = 0.0
    for value in (ax, ay):
        scaled = value / largest
        summand = scaled * scaled - compensation
        preliminary = total + summand
        compensation = (preliminary - total) - summand
        total = preliminary
    return math.sqrt(total) * largest


def ego_frame(x0: float, y0: float, theta: float, x: float, y: float) -> tuple[float, float]:
    """City point (x, y) seen from pose (x0, y0, theta): (forward, right) in metres, CARLA's vehicle convention. The
    city frame has theta counter-clockwise from +x, so the right of heading (cos theta, sin theta) is
    (sin theta, -cos theta)."""
    dx, dy = x - x0, y - y0
    c, s = math.cos(theta), math.sin(theta)
    return dx * c + dy * s, dx * s - dy * c


def pt(p: object) -> Vec2:
    """A Vec2 from anything point-like: a Vec2, a proto Point2 (or any object with x and y), a mapping with "x"
    and "y", an (x, y) pair; None is the origin (an unset proto field in the game)."""
    if p is None:
        return ORIGIN
    if isinstance(p, Vec2):
        return p
    if isinstance(p, Mapping):
        return Vec2(float(p["x"]), float(p["y"]))
    if hasattr(p, "x") and hasattr(p, "y"):
        return Vec2(float(p.x), float(p.y))
    if not isinstance(p, Iterable):  # unpacking it would raise the same TypeError
        raise TypeError(f"cannot unpack non-iterable {type(p).__name__} object")
    x, y = p
    return Vec2(float(x), float(y))


def road_length(road) -> float:
    """Length of a world_pb2.Road's centerline."""
    a = pt(road.start)
    b = pt(road.end)
    return js_hypot(b.x - a.x, b.y - a.y)


@dataclass(frozen=True, slots=True)
class RoadFrame:
    u: Vec2  # unit direction start -> end
    n: Vec2  # left normal
    length: float
    start: Vec2
    end: Vec2


def road_frame(road) -> RoadFrame:
    """Unit direction of a road (start -> end) and its left normal; a zero-length road points east."""
    start = pt(road.start)
    end = pt(road.end)
    length = js_hypot(end.x - start.x, end.y - start.y)
    u = Vec2((end.x - start.x) / length, (end.y - start.y) / length) if length > 0 else Vec2(1.0, 0.0)
    return RoadFrame(u=u, n=Vec2(-u.y, u.x), length=length, start=start, end=end)


def signed_area(poly: list[Vec2] | tuple[Vec2, ...]) -> float:
    """Signed area of a polygon (positive when counter-clockwise)."""
    area = 0.0
    count = len(poly)
    for i in range(count):
        p = poly[i]
        q = poly[(i + 1) % count]
        area += p.x * q.y - q.x * p.y
    return area / 2


def normalise_ring(points: Iterable[object]) -> list[Vec2]:
    """Drops a repeated closing point and duplicate consecutive points; returns a counter-clockwise ring."""
    ring: list[Vec2] = []
    for raw in points:
        p = pt(raw)
        if not ring or abs(ring[-1].x - p.x) > 1e-9 or abs(ring[-1].y - p.y) > 1e-9:
            ring.append(p)
    if len(ring) > 1:
        first, last = ring[0], ring[-1]
        if abs(last.x - first.x) <= 1e-9 and abs(last.y - first.y) <= 1e-9:
            ring.pop()
    if signed_area(ring) < 0:
        ring.reverse()
    return ring
