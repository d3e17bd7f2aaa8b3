"""Road graph, shortest routes and the navigation command (CARLA RoadOption) at a position: a port of the game's
clients/web/src/world/routing.ts, so the simulator gives a driver the same commands the game shows players (the
commands recorded in their telemetry). Pure and deterministic: same tie-breaking, same seeded random routes.

The sim golden test keeps the two equal: tools/gen_sim_golden.py writes clients/web/src/sim/fixtures/sim_golden.json
from this module, and clients/web/src/sim/golden.test.ts replays it against routing.ts.

Positions may be given as anything geometry_core.pt accepts (Vec2, proto Point2, {"x": .., "y": ..}, (x, y)).
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scalediffusion.sim.geometry_core import Vec2, js_hypot, pt, road_frame, road_length
from scalediffusion.v1 import common_pb2, world_pb2

LEFT = common_pb2.ROAD_OPTION_LEFT
RIGHT = common_pb2.ROAD_OPTION_RIGHT
STRAIGHT = common_pb2.ROAD_OPTION_STRAIGHT
LANEFOLLOW = common_pb2.ROAD_OPTION_LANEFOLLOW
# How far past an intersection its manoeuvre is still announced (the game's NAV_EXIT_M). A turn from an avenue ends
# ~20 m past the centre, so the command is LANEFOLLOW for its last part; holding it 20 m was tried on the bots' data
# and the waypoint policy trained on it drove worse (services/trainer/results/value).
NAV_EXIT_M = 10.0
# The target point is the route's first point more than this far ahead along it: TransFuser's RoutePlanner
# min_distance. Route points are intersection centres, so from just before a junction's centre on it is the far end
# of the road the manoeuvre leads into, and it keeps saying so after the command has gone back to LANEFOLLOW.
TARGET_MIN_M = 7.5


@dataclass(frozen=True, slots=True)
class GraphEdge:
    from_node: str
    to_node: str
    road_id: str
    length_m: float


@dataclass(frozen=True)
class RoadGraph:
    nodes: dict[str, Vec2]  # intersection id -> position, in World order
    edges: dict[str, list[GraphEdge]]  # outgoing edges per node, sorted by road id then target (deterministic ties)


def build_road_graph(world: world_pb2.World, respect_one_way: bool = True) -> RoadGraph:
    """Nodes are intersections; each road joining two known intersections is an edge (both ways unless one-way:
    lanes_forward / lanes_backward 0). A road with no lanes either way counts as two-way."""
    nodes: dict[str, Vec2] = {}
    edges: dict[str, list[GraphEdge]] = {}
    for i in world.intersections:
        nodes[i.id] = pt(i.position)
        edges[i.id] = []
    for road in world.roads:
        a = road.from_intersection
        b = road.to_intersection
        if a not in nodes or b not in nodes or a == b:
            continue
        length_m = road_length(road)
        no_lanes = road.lanes_forward == 0 and road.lanes_backward == 0
        forward = not respect_one_way or no_lanes or road.lanes_forward > 0
        backward = not respect_one_way or no_lanes or road.lanes_backward > 0
        if forward:
            edges[a].append(GraphEdge(a, b, road.id, length_m))
        if backward:
            edges[b].append(GraphEdge(b, a, road.id, length_m))
    for out in edges.values():
        out.sort(key=lambda e: (e.road_id, e.to_node))
    return RoadGraph(nodes=nodes, edges=edges)


@dataclass(frozen=True, slots=True)
class Path:
    nodes: tuple[str, ...]
    roads: tuple[str, ...]
    length_m: float


def shortest_path(graph: RoadGraph, from_node: str, to_node: str) -> Path | None:
    """Dijkstra by road length; None when `to_node` cannot be reached. Ties resolve as in the game: the heap orders
    by (distance, push sequence), and a node's distance only improves by more than 1e-9."""
    if from_node not in graph.nodes or to_node not in graph.nodes:
        return None
    dist: dict[str, float] = {from_node: 0.0}
    prev: dict[str, GraphEdge] = {}
    done: set[str] = set()
    seq = 0
    heap: list[tuple[float, int, str]] = [(0.0, seq, from_node)]
    seq += 1
    while heap:
        key, _, node = heapq.heappop(heap)
        if node in done:
            continue
        done.add(node)
        if node == to_node:
            break
        for e in graph.edges.get(node, ()):
            d = key + e.length_m
            if d < dist.get(e.to_node, math.inf) - 1e-9:
                dist[e.to_node] = d
                prev[e.to_node] = e
                heapq.heappush(heap, (d, seq, e.to_node))
                seq += 1
    if to_node not in done:
        return None
    nodes = [to_node]
    roads: list[str] = []
    cur = to_node
    while cur != from_node:
        e = prev[cur]
        roads.append(e.road_id)
        nodes.append(e.from_node)
        cur = e.from_node
    return Path(nodes=tuple(reversed(nodes)), roads=tuple(reversed(roads)), length_m=dist[to_node])


def turn_angle(a: Vec2, b: Vec2, c: Vec2) -> float:
    """Signed turn angle at b going a -> b -> c, radians in (-pi, pi]; positive = counter-clockwise = left."""
    ix = b.x - a.x
    iy = b.y - a.y
    ox = c.x - b.x
    oy = c.y - b.y
    return math.atan2(ix * oy - iy * ox, ix * ox + iy * oy)


def classify_turn(angle_rad: float, threshold_deg: float = 30.0) -> common_pb2.RoadOption:
    """ROAD_OPTION_LEFT above +threshold_deg (counter-clockwise), RIGHT below -threshold_deg, otherwise STRAIGHT."""
    t = (threshold_deg * math.pi) / 180
    if angle_rad > t:
        return LEFT
    if angle_rad < -t:
        return RIGHT
    return STRAIGHT


@dataclass(frozen=True, slots=True)
class Route:
    points: tuple[Vec2, ...]  # polyline vertices: optionally a start position, then intersection positions
    node_ids: tuple[str | None, ...]  # intersection id at each point (None for a free start position)
    cumulative: tuple[float, ...]  # distance along the route at each point
    # LEFT/RIGHT/STRAIGHT at interior intersections, LANEFOLLOW at both ends
    maneuvers: tuple[common_pb2.RoadOption, ...]
    length_m: float


def make_route(graph: RoadGraph, nodes: Sequence[str], start: object = None, turn_threshold_deg: float = 30.0) -> Route:
    """A route through intersections `nodes` (in order), optionally starting from a free position. Raises
    ValueError for an unknown intersection."""
    points: list[Vec2] = []
    node_ids: list[str | None] = []
    if start is not None:
        points.append(pt(start))
        node_ids.append(None)
    for node in nodes:
        p = graph.nodes.get(node)
        if p is None:
            raise ValueError(f"route: unknown intersection {json.dumps(node)}")
        if points and node_ids[-1] is None and js_hypot(p.x - points[-1].x, p.y - points[-1].y) < 1e-6:
            node_ids[-1] = node  # the start position is the first intersection itself
            continue
        points.append(p)
        node_ids.append(node)
    cumulative: list[float] = []
    acc = 0.0
    for i in range(len(points)):
        if i > 0:
            acc += js_hypot(points[i].x - points[i - 1].x, points[i].y - points[i - 1].y)
        cumulative.append(acc)
    last = len(points) - 1
    maneuvers = tuple(
        LANEFOLLOW if i in (0, last) else classify_turn(turn_angle(points[i - 1], points[i], points[i + 1]), turn_threshold_deg)
        for i in range(len(points))
    )
    return Route(points=tuple(points), node_ids=tuple(node_ids), cumulative=tuple(cumulative), maneuvers=maneuvers, length_m=acc)


def extend_route(graph: RoadGraph, route: Route, more: Sequence[str], turn_threshold_deg: float = 30.0) -> Route:
    """Appends intersections to a route (the first of `more` may repeat the route's last node)."""
    ids = [node for node in route.node_ids if node is not None]
    tail = list(more[1:]) if (more[0] if more else None) == (ids[-1] if ids else None) else list(more)
    start = route.points[0] if route.node_ids and route.node_ids[0] is None else None
    return make_route(graph, ids + tail, start, turn_threshold_deg)


@dataclass(frozen=True, slots=True)
class NextTurn:
    command: common_pb2.RoadOption
    distance_m: float
    index: int


@dataclass(frozen=True, slots=True)
class Nav:
    command: common_pb2.RoadOption
    segment: int  # the route segment the position projects onto (points[segment] -> points[segment + 1])
    progress_m: float
    lateral_m: float  # distance from the route polyline
    remaining_m: float
    next_index: int | None
    next_intersection_id: str | None
    distance_to_next_m: float | None
    next_turn: NextTurn | None  # the next LEFT/RIGHT manoeuvre ahead (STRAIGHT crossings are skipped)
    finished: bool


def _project(p: Vec2, a: Vec2, b: Vec2) -> tuple[float, float, float]:
    """(t, distance, segment length) of p's closest point on segment a-b."""
    dx = b.x - a.x
    dy = b.y - a.y
    len2 = dx * dx + dy * dy
    t = min(1.0, max(0.0, ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2)) if len2 > 0 else 0.0
    qx = a.x + t * dx
    qy = a.y + t * dy
    return t, js_hypot(p.x - qx, p.y - qy), math.sqrt(len2)


def navigate(route: Route, pos: object, segment_hint: int = 0, approach_m: float = 40.0, exit_m: float = NAV_EXIT_M) -> Nav:
    """Where `pos` is along `route` and what the driver should do next: the manoeuvre at an intersection from
    approach_m before it until exit_m past it, LANEFOLLOW otherwise. `segment_hint` (the previous result's segment)
    keeps progress monotonic on routes that pass near themselves; only segments hint-1 .. hint+3 are searched."""
    p = pt(pos)
    n = len(route.points)
    if n < 2:
        lateral = js_hypot(p.x - route.points[0].x, p.y - route.points[0].y) if n == 1 else 0.0
        return Nav(command=LANEFOLLOW, segment=0, progress_m=0.0, lateral_m=lateral, remaining_m=0.0, next_index=None,
                   next_intersection_id=None, distance_to_next_m=None, next_turn=None, finished=True)
    lo = max(0, min(segment_hint, n - 2) - 1)
    hi = min(n - 2, max(segment_hint, 0) + 3)
    best_seg, best_t, best_d, best_len = lo, 0.0, math.inf, 0.0
    for i in range(lo, hi + 1):
        t, d, length = _project(p, route.points[i], route.points[i + 1])
        if d < best_d - 1e-9:
            best_seg, best_t, best_d, best_len = i, t, d, length
    progress_m = route.cumulative[best_seg] + best_t * best_len
    remaining_m = max(0.0, route.length_m - progress_m)

    next_index = None
    for k in range(best_seg + 1, n):
        if route.cumulative[k] > progress_m + 1e-9:
            next_index = k
            break
    prev_index = None
    for k in range(min(best_seg + 1, n - 1), 0, -1):
        if route.cumulative[k] <= progress_m + 1e-9:
            prev_index = k
            break

    command = LANEFOLLOW
    if prev_index is not None and prev_index < n - 1 and progress_m - route.cumulative[prev_index] < exit_m:
        command = route.maneuvers[prev_index]
    elif next_index is not None and route.cumulative[next_index] - progress_m <= approach_m:
        command = route.maneuvers[next_index]

    next_turn = None
    if next_index is not None:
        for k in range(next_index, n - 1):
            m = route.maneuvers[k]
            if m in (LEFT, RIGHT):
                next_turn = NextTurn(command=m, distance_m=route.cumulative[k] - progress_m, index=k)
                break
    return Nav(
        command=command,
        segment=best_seg,
        progress_m=progress_m,
        lateral_m=best_d,
        remaining_m=remaining_m,
        next_index=next_index,
        next_intersection_id=None if next_index is None else route.node_ids[next_index],
        distance_to_next_m=None if next_index is None else route.cumulative[next_index] - progress_m,
        next_turn=next_turn,
        finished=next_index is None,
    )


def target_point(route: Route, nav: Nav, min_ahead_m: float = TARGET_MIN_M) -> Vec2 | None:
    """The point a driver at `nav` heads for (city frame): the first route point more than min_ahead_m ahead of the
    position's progress, else the route's end. None for an empty route."""
    if not route.points:
        return None
    for k in range(nav.segment + 1, len(route.points)):
        if route.cumulative[k] - nav.progress_m > min_ahead_m:
            return route.points[k]
    return route.points[-1]


@dataclass(frozen=True, slots=True)
class RoadLocation:
    road_id: str
    ahead_node: str  # the intersection the heading points towards
    behind_node: str
    along_m: float
    lateral_m: float


def locate_on_road(world: world_pb2.World, pos: object, heading: float) -> RoadLocation | None:
    """The road whose carriageway/sidewalks contain `pos` (closest centerline), and which way along it `heading`
    points."""
    p = pt(pos)
    best = None
    best_d = math.inf
    for road in world.roads:
        if not road.from_intersection or not road.to_intersection:
            continue
        f = road_frame(road)
        rx = p.x - f.start.x
        ry = p.y - f.start.y
        along = rx * f.u.x + ry * f.u.y
        lateral = abs(rx * f.n.x + ry * f.n.y)
        margin = road.width_m / 2 + road.sidewalk_m + 2
        if lateral > margin or along < -margin or along > f.length + margin:
            continue
        # Prefer the road we are inside lengthwise, then the nearest centerline.
        outside = -along if along < 0 else (along - f.length if along > f.length else 0.0)
        d = lateral + outside * 2
        if d < best_d:
            best_d = d
            forward = math.cos(heading) * f.u.x + math.sin(heading) * f.u.y >= 0
            best = RoadLocation(
                road_id=road.id,
                ahead_node=road.to_intersection if forward else road.from_intersection,
                behind_node=road.from_intersection if forward else road.to_intersection,
                along_m=along,
                lateral_m=lateral,
            )
    return best


def nearest_node(graph: RoadGraph, pos: object) -> str | None:
    """The intersection nearest to pos (the first in World order on a tie)."""
    p = pt(pos)
    best = None
    best_d = math.inf
    for node, q in graph.nodes.items():
        d = js_hypot(q.x - p.x, q.y - p.y)
        if d < best_d:
            best_d = d
            best = node
    return best


_U32 = 0xFFFFFFFF


def mulberry32(seed: float) -> Callable[[], float]:
    """The game's small deterministic PRNG (mulberry32): the same sequence in [0, 1) for the same seed. The
    JavaScript works on 32-bit integers (>>> 0, Math.imul); so does this, masking to 32 bits."""
    state = int(seed) & _U32 if math.isfinite(seed) else 0

    def next_value() -> float:
        nonlocal state
        state = (state + 0x6D2B79F5) & _U32
        t = state
        t = ((t ^ (t >> 15)) * (t | 1)) & _U32
        t = (t ^ ((t + (((t ^ (t >> 7)) * (t | 61)) & _U32)) & _U32)) & _U32
        return ((t ^ (t >> 14)) & _U32) / 4294967296

    return next_value


class RoutePlanner:
    """Keeps a route ahead of the car: picks random destinations (seeded), extends the route before the car reaches
    its end, and re-plans from the road the car is on when it leaves the route."""

    def __init__(self, world: world_pb2.World, *, approach_m: float = 40.0, exit_m: float = NAV_EXIT_M, min_leg_m: float = 400.0,
                 extend_below_m: float = 160.0, reroute_above_m: float = 25.0, seed: float = 1) -> None:
        self.world = world
        self.graph = build_road_graph(world)
        self.route: Route | None = None
        self.approach_m = approach_m  # announce a manoeuvre this far before its intersection
        self.exit_m = exit_m  # and keep announcing it this far past it
        self.min_leg_m = min_leg_m  # destinations are at least this far away by road
        self.extend_below_m = extend_below_m  # extend the route when less than this remains
        self.reroute_above_m = reroute_above_m  # re-plan when the car is this far from the route
        self._segment = 0
        self._rng = mulberry32(seed)

    def _random_leg(self, from_node: str, avoid: str | None = None) -> Path | None:
        """A path from `from_node` to a random destination at least min_leg_m away, not starting back towards
        `avoid`; else the longest such path found."""
        ids = list(self.graph.nodes)
        fallback = None
        attempt = 0
        while attempt < 24 and len(ids) > 1:
            attempt += 1
            to = ids[math.floor(self._rng() * len(ids))]
            if to == from_node:
                continue
            p = shortest_path(self.graph, from_node, to)
            if p is None or len(p.nodes) < 2:
                continue
            u_turn = avoid is not None and p.nodes[1] == avoid
            if p.length_m >= self.min_leg_m and not u_turn:
                return p
            if not u_turn and (fallback is None or p.length_m > fallback.length_m):
                fallback = p
        return fallback

    def plan(self, pos: object, heading: float) -> Route | None:
        """Plans a fresh route from a position and heading."""
        loc = locate_on_road(self.world, pos, heading)
        first = loc.ahead_node if loc is not None else nearest_node(self.graph, pos)
        if first is None:
            self.route = None
            return None
        leg = self._random_leg(first, loc.behind_node if loc is not None else None)
        self.route = make_route(self.graph, leg.nodes if leg is not None else [first], pos)
        self._segment = 0
        return self.route

    def _navigate(self, pos: object, segment_hint: int) -> Nav:
        return navigate(self.route, pos, segment_hint, self.approach_m, self.exit_m)  # type: ignore[arg-type]

    def update(self, pos: object, heading: float) -> Nav | None:
        """Navigation at the car's position; extends or re-plans the route as needed."""
        if self.route is None:
            self.plan(pos, heading)
        if self.route is None:
            return None
        nav = self._navigate(pos, self._segment)
        if nav.lateral_m > self.reroute_above_m:
            self.plan(pos, heading)
            if self.route is None:
                return None
            nav = self._navigate(pos, 0)
        if nav.remaining_m < self.extend_below_m:
            ids = [node for node in self.route.node_ids if node is not None]
            if ids:
                leg = self._random_leg(ids[-1], ids[-2] if len(ids) > 1 else None)
                if leg is not None:
                    self.route = extend_route(self.graph, self.route, leg.nodes)
                    nav = self._navigate(pos, nav.segment)
        self._segment = nav.segment
        return nav


_OPTION_NAMES = {
    common_pb2.ROAD_OPTION_LEFT: "LEFT",
    common_pb2.ROAD_OPTION_RIGHT: "RIGHT",
    common_pb2.ROAD_OPTION_STRAIGHT: "STRAIGHT",
    common_pb2.ROAD_OPTION_LANEFOLLOW: "LANEFOLLOW",
    common_pb2.ROAD_OPTION_CHANGELANELEFT: "CHANGELANELEFT",
    common_pb2.ROAD_OPTION_CHANGELANERIGHT: "CHANGELANERIGHT",
}


def road_option_name(option: common_pb2.RoadOption) -> str:
    return _OPTION_NAMES.get(option, "UNSPECIFIED")
