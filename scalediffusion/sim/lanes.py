"""Lanes of a World for the closed-loop simulator: lane centre lines, turns through intersections, paths along
routes, and the stop lines where lights and stop signs apply. Pure, deterministic.

A road's carriageway (``width_m``) holds ``lanes_forward`` lanes (start -> end) on the right of its centre line and
``lanes_backward`` on the left (right-hand traffic), sharing the width evenly; a one-way road (0 lanes one way)
puts its lanes across the whole carriageway. Where cars are parked along the kerbs (World.parked), the travel lanes
share only what the parked cars leave free. Lanes stop at the intersection's box (half the widest
carriageway meeting it, as the game paves it): the stop line. Through the box a lane joins the next road's lane by
a quadratic curve (a straight line when going straight).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from scalediffusion.sim.geometry import LightAxis, road_axis
from scalediffusion.v1 import world_pb2

CONTROLLED = (world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT, world_pb2.INTERSECTION_CONTROL_STOP_SIGN)


@dataclass(frozen=True)
class Polyline:
    """A path with arc length: point_at(s), project(p) -> (s, signed lateral offset, left positive)."""

    points: np.ndarray  # [N, 2]

    @cached_property
    def cum(self) -> np.ndarray:
        seg = np.linalg.norm(np.diff(self.points, axis=0), axis=1)
        return np.concatenate([[0.0], np.cumsum(seg)])

    @property
    def length(self) -> float:
        return float(self.cum[-1])

    def point_at(self, s: float) -> tuple[float, float, float]:
        """(x, y, heading) at arc length s (clamped to the ends)."""
        s = min(max(s, 0.0), self.length)
        i = int(np.searchsorted(self.cum, s, side="right") - 1)
        i = min(max(i, 0), len(self.points) - 2)
        a, b = self.points[i], self.points[i + 1]
        span = self.cum[i + 1] - self.cum[i]
        w = (s - self.cum[i]) / span if span > 0 else 0.0
        return float(a[0] + w * (b[0] - a[0])), float(a[1] + w * (b[1] - a[1])), math.atan2(b[1] - a[1], b[0] - a[0])

    def project(self, x: float, y: float, lo: int = 0, hi: int | None = None) -> tuple[float, float]:
        """(arc length of the nearest point, signed lateral distance: positive left of the direction of travel),
        searching segments lo..hi (a window keeps a looping route from snapping to a far part of itself)."""
        pts = self.points
        hi = len(pts) - 1 if hi is None else min(hi, len(pts) - 1)
        a = pts[lo:hi]
        d = pts[lo + 1:hi + 1] - a
        seg_len2 = np.maximum((d * d).sum(axis=1), 1e-12)
        p = np.array([x, y])
        w = np.clip(((p - a) * d).sum(axis=1) / seg_len2, 0.0, 1.0)
        nearest = a + d * w[:, None]
        dist2 = ((nearest - p) ** 2).sum(axis=1)
        k = int(np.argmin(dist2))
        cross = d[k, 0] * (p[1] - a[k, 1]) - d[k, 1] * (p[0] - a[k, 0])
        s = float(self.cum[lo + k] + w[k] * math.sqrt(seg_len2[k]))
        return s, math.copysign(math.sqrt(float(dist2[k])), cross)


@dataclass(frozen=True)
class LaneSegment:
    """One lane of one road in one direction, from stop line to stop line."""

    road_id: str
    from_node: str
    to_node: str
    lane: int  # 0 = next to the centre line
    lanes: int  # lanes in this direction
    start: tuple[float, float]
    end: tuple[float, float]  # at the stop line of to_node
    heading: float
    lane_width: float
    axis: LightAxis  # "ns" or "ew": which light phase governs it (the game's rule: mostly-north-south roads are "ns")


@dataclass(frozen=True)
class StopLine:
    """Where a path enters an intersection that a light or stop sign controls."""

    s: float  # arc length along the path
    intersection_id: str
    control: int
    axis: LightAxis
    exit_s: float  # arc length where the path leaves the intersection box


@dataclass(frozen=True)
class LanePath:
    """A drivable path through several roads: the polyline, its stop lines, and which road each stretch is on."""

    line: Polyline
    stop_lines: tuple[StopLine, ...]
    # (start s, end s, segment) per road stretch, in order; the gaps between them are intersections.
    stretches: tuple[tuple[float, float, LaneSegment], ...] = field(default=())

    def lane_width_at(self, s: float) -> float:
        """The lane width where the path is at s (in a junction: the narrower of the lanes either side)."""
        widths = [seg.lane_width for s0, s1, seg in self.stretches if s0 - 30.0 <= s <= s1 + 30.0]
        return min(widths) if widths else 3.5


def same_lane_threshold(lane_width: float, own_width: float, other_width: float) -> float:
    """How far (laterally, centre to centre) another actor may be from a path and still be in the way: within the
    lane, or overlapping the car, whichever is tighter, so cars in the next lane of a narrow street are not."""
    return max(0.8, min((own_width + other_width) / 2 + 0.4, lane_width * 0.8))


class LaneMap:
    def __init__(self, world: world_pb2.World) -> None:
        self.world = world
        self.roads = {r.id: r for r in world.roads}
        self.intersections = {i.id: i for i in world.intersections}
        self.box_half = {i.id: self._box_half(i) for i in world.intersections}
        self.travel_half_width = self._travel_half_widths()
        self.segments: dict[tuple[str, str, int], LaneSegment] = {}  # (road, from node, lane) -> segment
        self.outgoing: dict[str, list[LaneSegment]] = {i.id: [] for i in world.intersections}
        for road in world.roads:
            if road.from_intersection not in self.intersections or road.to_intersection not in self.intersections:
                continue
            for seg in self._road_segments(road):
                self.segments[(seg.road_id, seg.from_node, seg.lane)] = seg
                self.outgoing[seg.from_node].append(seg)
        for segs in self.outgoing.values():
            segs.sort(key=lambda s: (s.road_id, s.lane))

    def _box_half(self, intersection: world_pb2.Intersection) -> float:
        half = max((self.roads[r].width_m / 2 for r in intersection.road_ids if r in self.roads), default=0.0)
        return half if half > 0 else 5.0

    def _travel_half_widths(self) -> dict[str, float]:
        """Per road, half the width the travel lanes can use: the carriageway, less the strips parked cars take."""
        half = {r.id: r.width_m / 2 for r in self.world.roads}
        for car in self.world.parked:
            for road in self.world.roads:
                sx, sy = road.start.x, road.start.y
                length = math.hypot(road.end.x - sx, road.end.y - sy)
                if length <= 0:
                    continue
                ux, uy = (road.end.x - sx) / length, (road.end.y - sy) / length
                along = (car.position.x - sx) * ux + (car.position.y - sy) * uy
                lateral = abs(-(car.position.x - sx) * uy + (car.position.y - sy) * ux)
                if 0 <= along <= length and lateral <= road.width_m / 2:
                    half[road.id] = min(half[road.id], lateral - car.width_m / 2 - 0.25)
        return half

    def _road_segments(self, road: world_pb2.Road) -> list[LaneSegment]:
        sx, sy, ex, ey = road.start.x, road.start.y, road.end.x, road.end.y
        length = math.hypot(ex - sx, ey - sy)
        if length <= 0:
            return []
        ux, uy = (ex - sx) / length, (ey - sy) / length
        nx, ny = -uy, ux  # left of start -> end
        forward, backward = road.lanes_forward, road.lanes_backward
        if forward == 0 and backward == 0:
            forward = backward = 1
        width = 2 * self.travel_half_width.get(road.id, road.width_m / 2) / (forward + backward)
        divider = (backward - forward) / 2 * width  # offset of the centre line along n
        axis = road_axis(road)  # the game's rule for which light phase governs the road
        out = []
        for direction, count in ((1, forward), (-1, backward)):
            a_node, b_node = (road.from_intersection, road.to_intersection) if direction == 1 else (road.to_intersection, road.from_intersection)
            trim_a, trim_b = self.box_half[a_node], self.box_half[b_node]
            if trim_a + trim_b >= length:
                continue
            for lane in range(count):
                offset = divider - direction * (lane + 0.5) * width  # right of the direction of travel
                ox, oy = nx * offset, ny * offset
                if direction == 1:
                    start = (sx + ux * trim_a + ox, sy + uy * trim_a + oy)
                    end = (ex - ux * trim_b + ox, ey - uy * trim_b + oy)
                    heading = math.atan2(uy, ux)
                else:
                    start = (ex - ux * trim_a + ox, ey - uy * trim_a + oy)
                    end = (sx + ux * trim_b + ox, sy + uy * trim_b + oy)
                    heading = math.atan2(-uy, -ux)
                out.append(LaneSegment(road.id, a_node, b_node, lane, count, start, end, heading, width, axis))
        return out

    @cached_property
    def _lane_table(self) -> tuple[list[LaneSegment], np.ndarray]:
        """Every lane segment as rows (start x, start y, cos heading, sin heading, length, lane width)."""
        segs = list(self.segments.values())
        rows = [(s.start[0], s.start[1], math.cos(s.heading), math.sin(s.heading),
                 math.hypot(s.end[0] - s.start[0], s.end[1] - s.start[1]), s.lane_width) for s in segs]
        return segs, np.array(rows, dtype=np.float64).reshape(-1, 6)

    def lane_at(self, x: float, y: float, heading: float, max_heading_deg: float = 45.0,
                lateral_slack: float = 1.5) -> tuple[LaneSegment, float] | None:
        """The lane a car at (x, y) with this heading drives in, and the metres left to its stop line (its end).
        None inside an intersection box, off the carriageway, or against every lane's direction. Between two lanes
        of one direction the nearer wins; both lead to the same stop line. lateral_slack (lane widths from the lane's
        centre) admits a car drifting over its lane's edge."""
        segs, table = self._lane_table
        if not segs:
            return None
        sx, sy, ux, uy, length, width = table.T
        dx, dy = x - sx, y - sy
        along = dx * ux + dy * uy
        lateral = np.abs(dy * ux - dx * uy)
        aligned = ux * math.cos(heading) + uy * math.sin(heading) >= math.cos(math.radians(max_heading_deg))
        inside = aligned & (along >= 0.0) & (along <= length) & (lateral <= lateral_slack * width)
        if not inside.any():
            return None
        k = int(np.argmin(np.where(inside, lateral, np.inf)))
        return segs[k], float(length[k] - along[k])

    def segment(self, road_id: str, from_node: str, lane: int = 0) -> LaneSegment:
        seg = self.segments.get((road_id, from_node, lane))
        if seg is None:
            raise KeyError(f"no lane {lane} on road {road_id} leaving {from_node}")
        return seg

    def road_between(self, a: str, b: str) -> world_pb2.Road:
        for road in self.world.roads:
            if {road.from_intersection, road.to_intersection} == {a, b}:
                return road
        raise KeyError(f"no road joins {a} and {b}")

    def next_segments(self, seg: LaneSegment) -> list[LaneSegment]:
        """Where a car in seg can go at its end: every outgoing lane of the node except straight back (no U-turns),
        keeping the lane index where the next road has it."""
        options = []
        for nxt in self.outgoing[seg.to_node]:
            if nxt.road_id == seg.road_id:
                continue
            if nxt.lane == min(seg.lane, nxt.lanes - 1):
                options.append(nxt)
        return options

    @staticmethod
    def turn_points(a: LaneSegment, b: LaneSegment, steps: int = 8) -> np.ndarray:
        """Points strictly inside the box from a.end to b.start: a quadratic Bezier whose control point is where the
        two lanes' lines cross (straight through when they are parallel)."""
        p0, p2 = np.array(a.end), np.array(b.start)
        da = np.array([math.cos(a.heading), math.sin(a.heading)])
        db = np.array([math.cos(b.heading), math.sin(b.heading)])
        denom = da[0] * db[1] - da[1] * db[0]
        if abs(denom) < 1e-6:
            control = (p0 + p2) / 2
        else:
            t = ((p2[0] - p0[0]) * db[1] - (p2[1] - p0[1]) * db[0]) / denom
            control = p0 + da * t
        ts = np.linspace(0, 1, steps + 1)[1:-1, None]
        return (1 - ts) ** 2 * p0 + 2 * (1 - ts) * ts * control + ts**2 * p2

    def path(self, segments: list[LaneSegment]) -> LanePath:
        """The path through consecutive lane segments (each starting where the previous one ends)."""
        points: list[np.ndarray] = []
        stops: list[StopLine] = []
        stretches = []
        for k, seg in enumerate(segments):
            if k > 0:
                points.extend(self.turn_points(segments[k - 1], seg))
            start_index = len(points)
            points.extend([np.array(seg.start), np.array(seg.end)])
            stretches.append((start_index, len(points) - 1, seg))
        line = Polyline(np.array(points))
        resolved = []
        for i0, i1, seg in stretches:
            resolved.append((float(line.cum[i0]), float(line.cum[i1]), seg))
        for k, (_s0, s1, seg) in enumerate(resolved):
            node = self.intersections[seg.to_node]
            exit_s = resolved[k + 1][0] if k + 1 < len(resolved) else s1 + 2 * self.box_half[seg.to_node]
            if node.control in CONTROLLED:
                stops.append(StopLine(s1, node.id, node.control, seg.axis, exit_s))
        return LanePath(line, tuple(stops), tuple(resolved))

    def route_segments(self, nodes: list[str], lane: int | None = None) -> list[LaneSegment]:
        """Lane segments along a node sequence; lane None = the rightmost lane of each road."""
        segs = []
        for a, b in zip(nodes, nodes[1:]):
            road = self.road_between(a, b)
            count = road.lanes_forward if road.from_intersection == a else road.lanes_backward
            count = count or max(road.lanes_forward, road.lanes_backward)
            index = count - 1 if lane is None else min(lane, count - 1)
            segs.append(self.segment(road.id, a, index))
        return segs
