"""The rendering geometry of a World: a port of clients/web/src/world/worldGeometry.ts (road and sidewalk quads,
intersection boxes, building prisms and their meshes, traffic-light and stop-sign poles, the traffic-light clock,
lane markings, street-furniture meshes), with the same floating-point operations in the same order so the Python
renderer (scalediffusion/sim/render.py) draws the streets the game draws. Pure, no I/O.

The golden test keeps the two equal: tools/gen_render_golden.py writes
clients/web/src/world/fixtures/geometry_golden.json from this module and clients/web/src/world/geometryGolden.test.ts
checks worldGeometry.ts against it.

Coordinates are the city frame: metres, x east, y north, z up. The few helpers the vehicle port needs too (pt,
road_length, road_frame, signed_area, normalise_ring) live in scalediffusion/sim/geometry_core.py and are re-exported
here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

import numpy as np

from scalediffusion.sim.geometry_core import (
    Vec2,
    js_hypot,
    normalise_ring,
    pt,
    road_frame,
    road_length,
    signed_area,
)
from scalediffusion.v1 import world_pb2

__all__ = [
    "FACADES", "BuildingPrism", "ControlPole", "IntersectionBox", "LightAxis", "LightColor", "Marking", "MeshData",
    "Quad", "RoadQuad", "RoadSurfaces", "SidewalkQuad", "Vec2", "add_box", "add_flat_quads", "add_upright_polygon",
    "SignalHead", "building_mesh", "building_prisms", "control_poles", "empty_mesh", "signal_heads", "hash_string", "intersection_boxes",
    "intersections_by_id", "lane_markings", "light_color", "normalise_ring", "pt", "rgb", "road_axis", "road_frame",
    "road_length", "road_quad", "road_surfaces", "roads_by_id", "sidewalk_quads", "sidewalk_trim", "signed_area",
    "square_quad", "triangulate",
]

Quad = tuple[Vec2, Vec2, Vec2, Vec2]  # a flat quadrilateral, corners counter-clockwise seen from above
LightAxis = Literal["ns", "ew"]
LightColor = Literal["green", "yellow", "red"]


@dataclass(frozen=True, slots=True)
class RoadQuad:
    road_id: str
    corners: Quad


@dataclass(frozen=True, slots=True)
class SidewalkQuad:
    road_id: str
    side: Literal["left", "right"]
    corners: Quad


@dataclass(frozen=True, slots=True)
class RoadSurfaces:
    roads: list[RoadQuad]
    sidewalks: list[SidewalkQuad]


@dataclass(frozen=True, slots=True)
class IntersectionBox:
    id: str
    center: Vec2
    half_size: float  # half the side of the square paved area (the widest connected carriageway / 2)
    control: int  # world_pb2.IntersectionControl


@dataclass(frozen=True, slots=True)
class BuildingPrism:
    id: str
    footprint: list[Vec2]  # counter-clockwise, not closed
    height_m: float
    color: int  # facade colour 0xRRGGBB, stable per building id


@dataclass(frozen=True, slots=True)
class ControlPole:
    """Where an approach's traffic light or stop sign pole stands: on the kerb to the right of the approach."""

    intersection_id: str
    road_id: str
    control: int  # world_pb2.IntersectionControl
    position: Vec2
    facing: float  # direction the sign/light faces (towards approaching traffic), radians CCW from +x
    axis: LightAxis  # which light phase governs this approach


@dataclass(frozen=True, slots=True)
class SignalHead:
    """One traffic-light head of an approach and what holds it up, for both renderers (scene.ts, render.py).

    Every traffic-light approach has two: the near head on the pole at its right-hand kerb (as before), and a larger
    far-side head hung from a mast arm over the approach's lanes beyond the junction, where a driver (and a camera
    low in the car) looks while approaching: the near head is above the frame at the stop line and its lamps are a
    pixel wide from 25 m away. Boxes are (centre, size, yaw) as add_box takes them; lamps top to bottom are red,
    amber, green. The visors are two plates along the head's sides reaching forward past the lamps, as real signal
    heads have: a lamp is seen from in front of its head, not from the cross street (without them the cross
    traffic's green shows beside one's own red in every junction, for players and policies alike)."""

    intersection_id: str
    road_id: str
    axis: LightAxis
    facing: float  # towards approaching traffic, radians CCW from +x
    far: bool  # the mast-arm head beyond the junction
    center: tuple[float, float, float]
    size: tuple[float, float, float]  # along facing (depth), across, height
    lamp_radius: float
    lamps: tuple[tuple[float, float, float], ...]  # red, amber, green
    mounts: tuple[tuple[tuple[float, float, float], tuple[float, float, float], float], ...]  # pole / arm boxes
    visors: tuple[tuple[tuple[float, float, float], tuple[float, float, float], float], ...]  # head-coloured boxes


class HeadSpec(TypedDict):
    """A signal head's dimensions (metres): centre height, box size as SignalHead.size, lamps' radius, vertical
    spacing and how far forward of the head's centre they sit."""

    z: float
    size: tuple[float, float, float]
    lamp_radius: float
    lamp_step: float
    lamp_forward: float


NEAR_HEAD: HeadSpec = {"z": 4.5, "size": (0.3, 0.4, 1.1), "lamp_radius": 0.13, "lamp_step": 0.35, "lamp_forward": 0.17}
FAR_HEAD: HeadSpec = {"z": 5.6, "size": (0.4, 0.6, 1.6), "lamp_radius": 0.21, "lamp_step": 0.5, "lamp_forward": 0.22}
MAST_TOP_M = 6.6  # the arm's height (the far head hangs below it)
VISOR_REACH = 2.5  # a visor plate reaches this many lamp radii forward of the head's face
VISOR_THICKNESS_M = 0.03


def _head(pole: ControlPole, far: bool, x: float, y: float, mounts) -> SignalHead:
    spec = FAR_HEAD if far else NEAR_HEAD
    fx, fy = math.cos(pole.facing), math.sin(pole.facing)
    z, step, fwd = spec["z"], spec["lamp_step"], spec["lamp_forward"]
    lamps = tuple((x + fx * fwd, y + fy * fwd, z + k * step) for k in (1, 0, -1))
    depth, across, height = spec["size"]
    reach = VISOR_REACH * spec["lamp_radius"]
    along = depth / 2 + reach / 2  # the plate's centre, forward of the head's centre
    side = across / 2 - VISOR_THICKNESS_M / 2
    visors = tuple(((x + fx * along - fy * side * k, y + fy * along + fx * side * k, z), (reach, VISOR_THICKNESS_M, height),
                    pole.facing) for k in (1, -1))
    return SignalHead(pole.intersection_id, pole.road_id, pole.axis, pole.facing, far, (x, y, z), spec["size"],
                      spec["lamp_radius"], lamps, tuple(mounts), visors)


def signal_heads(world: world_pb2.World) -> list[SignalHead]:
    """The traffic-light heads of every approach (SignalHead): near head on the kerb pole, far head on a mast arm
    from a pole at the far right-hand corner, centred over the approach's lanes (a quarter of the road's width right
    of its centre line)."""
    roads = roads_by_id(world)
    boxes = {b.id: b for b in intersection_boxes(world)}
    centres = {i.id: pt(i.position) for i in world.intersections}
    out = []
    for pole in control_poles(world):
        if pole.control != world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT:
            continue
        p = pole.position
        out.append(_head(pole, False, p.x, p.y, [((p.x, p.y, 2.2), (0.16, 0.16, 4.4), 0.0)]))
        road = roads[pole.road_id]
        box = boxes.get(pole.intersection_id)
        c = centres[pole.intersection_id]
        d = Vec2(-math.cos(pole.facing), -math.sin(pole.facing))  # the approach's direction of travel
        right = Vec2(d.y, -d.x)
        beyond = (box.half_size if box is not None else 5.0) + 1.5
        lane = road.width_m / 4
        kerb = road.width_m / 2 + min(road.sidewalk_m, 3) * 0.5
        hx, hy = c.x + d.x * beyond + right.x * lane, c.y + d.y * beyond + right.y * lane
        bx, by = c.x + d.x * beyond + right.x * kerb, c.y + d.y * beyond + right.y * kerb
        arm = kerb - lane + 0.3
        arm_yaw = math.atan2(-right.y, -right.x)  # from the pole over the road
        mounts = [((bx, by, MAST_TOP_M / 2), (0.22, 0.22, MAST_TOP_M), 0.0),
                  ((bx - right.x * arm / 2, by - right.y * arm / 2, MAST_TOP_M - 0.1), (arm, 0.14, 0.14), arm_yaw),
                  ((hx, hy, (MAST_TOP_M + FAR_HEAD["z"] + FAR_HEAD["size"][2] / 2) / 2),
                   (0.06, 0.06, MAST_TOP_M - FAR_HEAD["z"] - FAR_HEAD["size"][2] / 2), 0.0)]
        out.append(_head(pole, True, hx, hy, mounts))
    return out


@dataclass(frozen=True, slots=True)
class Marking:
    color: Literal["yellow", "white"]
    corners: Quad


def _offset(p: Vec2, u: Vec2, along: float, n: Vec2, across: float) -> Vec2:
    return Vec2(p.x + u.x * along + n.x * across, p.y + u.y * along + n.y * across)


def road_quad(road: world_pb2.Road) -> RoadQuad:
    """The carriageway of a road: a rectangle around the centerline, width_m wide."""
    f = road_frame(road)
    hw = road.width_m / 2
    return RoadQuad(road.id, (
        _offset(f.start, f.u, 0, f.n, -hw),
        _offset(f.start, f.u, f.length, f.n, -hw),
        _offset(f.start, f.u, f.length, f.n, hw),
        _offset(f.start, f.u, 0, f.n, hw),
    ))


def sidewalk_trim(road: world_pb2.Road, at_intersection: world_pb2.Intersection | None,
                  roads: Mapping[str, world_pb2.Road]) -> float:
    """How far a road's sidewalks stop short of an intersection so that they do not run across the crossing
    carriageways: the half width of the widest road meeting it at an angle, divided by the sine of that angle
    (capped, so nearly parallel roads do not push it far away)."""
    if at_intersection is None:
        return 0.0
    u = road_frame(road).u
    trim = 0.0
    for other_id in at_intersection.road_ids:
        if other_id == road.id:
            continue
        other = roads.get(other_id)
        if other is None:
            continue
        v = road_frame(other).u
        sin = abs(u.x * v.y - u.y * v.x)
        if sin < 0.2:
            continue  # a continuation of the same street
        trim = max(trim, min(other.width_m / 2 / sin, other.width_m * 2))
    return trim


def sidewalk_quads(road: world_pb2.Road, trim_start: float = 0.0, trim_end: float = 0.0) -> list[SidewalkQuad]:
    """Both sidewalks of a road (right first), trimmed where they meet crossing roads."""
    if not road.sidewalk_m > 0:
        return []
    f = road_frame(road)
    u, n, start = f.u, f.n, f.start
    a = min(trim_start, f.length)
    b = max(a, f.length - trim_end)
    if b - a <= 1e-9:
        return []
    hw = road.width_m / 2
    sw = road.sidewalk_m
    return [
        SidewalkQuad(road.id, "right", (_offset(start, u, a, n, -hw - sw), _offset(start, u, b, n, -hw - sw),
                                        _offset(start, u, b, n, -hw), _offset(start, u, a, n, -hw))),
        SidewalkQuad(road.id, "left", (_offset(start, u, a, n, hw), _offset(start, u, b, n, hw),
                                       _offset(start, u, b, n, hw + sw), _offset(start, u, a, n, hw + sw))),
    ]


def roads_by_id(world: world_pb2.World) -> dict[str, world_pb2.Road]:
    return {r.id: r for r in world.roads}


def intersections_by_id(world: world_pb2.World) -> dict[str, world_pb2.Intersection]:
    return {i.id: i for i in world.intersections}


def road_surfaces(world: world_pb2.World) -> RoadSurfaces:
    """Every road's carriageway and its trimmed sidewalks."""
    roads = roads_by_id(world)
    inters = intersections_by_id(world)
    out = RoadSurfaces([], [])
    for road in world.roads:
        out.roads.append(road_quad(road))
        trim_start = sidewalk_trim(road, inters.get(road.from_intersection), roads)
        trim_end = sidewalk_trim(road, inters.get(road.to_intersection), roads)
        out.sidewalks.extend(sidewalk_quads(road, trim_start, trim_end))
    return out


def intersection_boxes(world: world_pb2.World) -> list[IntersectionBox]:
    """A paved square per intersection, as wide as its widest carriageway."""
    roads = roads_by_id(world)
    out = []
    for i in world.intersections:
        half = 0.0
        for rid in i.road_ids:
            r = roads.get(rid)
            if r is not None:
                half = max(half, r.width_m / 2)
        out.append(IntersectionBox(i.id, pt(i.position), half if half > 0 else 5.0, i.control))
    return out


FACADES = (0x9C8F84, 0xB5A999, 0x7F8790, 0xA2735F, 0x8D8D8D, 0xC2B8A3, 0x6F7A86, 0x94705A, 0xAAB2B8, 0x857565)


def hash_string(s: str) -> int:
    """FNV-1a over the string's UTF-16 code units (what JavaScript's charCodeAt sees): stable colours per id."""
    h = 0x811C9DC5
    data = s.encode("utf-16-le", "surrogatepass")
    for k in range(0, len(data), 2):
        h ^= data[k] | (data[k + 1] << 8)
        h = (h * 0x01000193) & 0xFFFFFFFF  # Math.imul(h, 0x01000193) >>> 0
    return h


def building_prisms(world: world_pb2.World) -> list[BuildingPrism]:
    out = []
    for b in world.buildings:
        footprint = normalise_ring(b.footprint)
        if len(footprint) < 3 or not b.height_m > 0:
            continue
        out.append(BuildingPrism(b.id, footprint, b.height_m, FACADES[hash_string(b.id) % len(FACADES)]))
    return out


def _point_in_triangle(p: Vec2, a: Vec2, b: Vec2, c: Vec2) -> bool:
    d1 = (p.x - b.x) * (a.y - b.y) - (a.x - b.x) * (p.y - b.y)
    d2 = (p.x - c.x) * (b.y - c.y) - (b.x - c.x) * (p.y - c.y)
    d3 = (p.x - a.x) * (c.y - a.y) - (c.x - a.x) * (p.y - a.y)
    neg = d1 < 0 or d2 < 0 or d3 < 0
    pos = d1 > 0 or d2 > 0 or d3 > 0
    return not (neg and pos)


def triangulate(poly: Sequence[Vec2]) -> list[int]:
    """Ear-clipping triangulation of a simple counter-clockwise polygon; index triples into `poly`, flattened.
    Falls back to a fan when the polygon is degenerate (self-intersecting input still gives triangles)."""
    n = len(poly)
    if n < 3:
        return []
    idx = list(range(n))
    if signed_area(list(poly)) < 0:
        idx.reverse()
    out: list[int] = []
    guard = 0
    while len(idx) > 3 and guard < n * n:
        guard += 1
        clipped = False
        for i in range(len(idx)):
            ia = idx[(i + len(idx) - 1) % len(idx)]
            ib = idx[i]
            ic = idx[(i + 1) % len(idx)]
            a, b, c = poly[ia], poly[ib], poly[ic]
            cross = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
            if cross <= 1e-12:
                continue  # reflex or flat
            if any(j not in (ia, ib, ic) and _point_in_triangle(poly[j], a, b, c) for j in idx):
                continue
            out.extend((ia, ib, ic))
            del idx[i]
            clipped = True
            break
        if not clipped:
            break
    if len(idx) == 3:
        out.extend(idx)
    elif len(idx) > 3:
        for i in range(1, len(idx) - 1):
            out.extend((idx[0], idx[i], idx[i + 1]))
    return out


@dataclass(eq=False)
class MeshData:
    """Indexed triangle mesh in the city frame (z up), as numpy arrays: positions/normals [N, 3], uvs [N, 2],
    colours rgb 0..1 [N, 3] (float64, the game's numbers) and triangle indices [M] (uint32). The add_* helpers
    append to a mesh in place and return it, as worldGeometry.ts's do."""

    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    normals: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    uvs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint32))

    @property
    def vertex_count(self) -> int:
        return len(self.positions)

    def append(self, positions, normals, uvs, colors, indices) -> MeshData:
        """Appends vertices (arrays or nested lists) and triangles whose indices count from the new vertices."""
        base = len(self.positions)
        self.positions = np.concatenate([self.positions, np.asarray(positions, dtype=np.float64).reshape(-1, 3)])
        self.normals = np.concatenate([self.normals, np.asarray(normals, dtype=np.float64).reshape(-1, 3)])
        self.uvs = np.concatenate([self.uvs, np.asarray(uvs, dtype=np.float64).reshape(-1, 2)])
        self.colors = np.concatenate([self.colors, np.asarray(colors, dtype=np.float64).reshape(-1, 3)])
        self.indices = np.concatenate([self.indices, np.asarray(indices, dtype=np.int64).reshape(-1) + base]).astype(np.uint32)
        return self

    def extend(self, other: MeshData) -> MeshData:
        return self.append(other.positions, other.normals, other.uvs, other.colors, other.indices)


def empty_mesh() -> MeshData:
    return MeshData()


def rgb(color: int) -> tuple[float, float, float]:
    """0xRRGGBB as three floats 0..1 (used as they are, no colour-space conversion, like the game's vertex colours)."""
    return ((color >> 16) & 0xFF) / 255, ((color >> 8) & 0xFF) / 255, (color & 0xFF) / 255


def add_flat_quads(mesh: MeshData, quads: Sequence[Quad], z: float, color: int = 0xFFFFFF, uv_scale: float = 1) -> MeshData:
    """Appends flat horizontal quads at height z (upward normals; uv in metres / uv_scale)."""
    if not quads:
        return mesh
    xy = np.array([[(p.x, p.y) for p in q] for q in quads], dtype=np.float64).reshape(-1, 2)
    count = len(xy)
    positions = np.column_stack([xy, np.full(count, float(z))])
    normals = np.tile([0.0, 0.0, 1.0], (count, 1))
    colors = np.tile(rgb(color), (count, 1))
    base = np.arange(0, count, 4)[:, None]
    indices = (base + np.array([0, 1, 2, 0, 2, 3])).reshape(-1)
    return mesh.append(positions, normals, xy / uv_scale, colors, indices)


def square_quad(c: Vec2, h: float) -> Quad:
    """Square quad of half size h around c."""
    return (Vec2(c.x - h, c.y - h), Vec2(c.x + h, c.y - h), Vec2(c.x + h, c.y + h), Vec2(c.x - h, c.y + h))


def building_mesh(prisms: Sequence[BuildingPrism], floor_width: float = 4, floor_height: float = 3.5) -> MeshData:
    """Walls and roofs of every building. Wall uvs: u = metres along the facade / floor_width, v = metres up /
    floor_height, so a repeating window texture lines up with floors. Roofs get uv (0, 0)."""
    positions: list[tuple[float, float, float]] = []
    normals: list[tuple[float, float, float]] = []
    uvs: list[tuple[float, float]] = []
    colors: list[tuple[float, float, float]] = []
    indices: list[int] = []
    for prism in prisms:
        r, g, b = rgb(prism.color)
        fp = prism.footprint
        h = prism.height_m
        along = 0.0
        for i in range(len(fp)):
            p = fp[i]
            q = fp[(i + 1) % len(fp)]
            length = js_hypot(q.x - p.x, q.y - p.y)
            if length < 1e-9:
                continue
            # Outward normal of a CCW ring edge is the right-hand normal of its direction.
            nx = (q.y - p.y) / length
            ny = -(q.x - p.x) / length
            base = len(positions)
            positions += [(p.x, p.y, 0), (q.x, q.y, 0), (q.x, q.y, h), (p.x, p.y, h)]
            normals += [(nx, ny, 0)] * 4
            colors += [(r, g, b)] * 4
            u0 = along / floor_width
            u1 = (along + length) / floor_width
            uvs += [(u0, 0), (u1, 0), (u1, h / floor_height), (u0, h / floor_height)]
            indices += [base, base + 1, base + 2, base, base + 2, base + 3]
            along += length
        roof_base = len(positions)
        for p in fp:
            positions.append((p.x, p.y, h))
            normals.append((0, 0, 1))
            uvs.append((0, 0))
            colors.append((r * 0.7, g * 0.7, b * 0.7))
        indices += [roof_base + i for i in triangulate(fp)]
    return MeshData().append(positions, normals, uvs, colors, indices)


def road_axis(road: world_pb2.Road) -> LightAxis:
    """A road counts as north-south when it runs more along y than along x."""
    u = road_frame(road).u
    return "ns" if abs(u.y) >= abs(u.x) else "ew"


def control_poles(world: world_pb2.World) -> list[ControlPole]:
    roads = roads_by_id(world)
    boxes = {b.id: b for b in intersection_boxes(world)}
    out = []
    for i in world.intersections:
        if i.control not in (world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT, world_pb2.INTERSECTION_CONTROL_STOP_SIGN):
            continue
        c = pt(i.position)
        box = boxes.get(i.id)
        half = box.half_size if box is not None else 5.0
        for rid in i.road_ids:
            road = roads.get(rid)
            if road is None:
                continue
            f = road_frame(road)
            # Direction from the intersection out along the road (the approach comes in against it).
            out_ = f.u if road.from_intersection == i.id else Vec2(-f.u.x, -f.u.y)
            # Arriving traffic drives along d = -out_; the pole stands on its right-hand kerb, right = (d.y, -d.x).
            d = Vec2(-out_.x, -out_.y)
            right = Vec2(d.y, -d.x)
            along = max(half, 0) + 1.5
            across = road.width_m / 2 + min(road.sidewalk_m, 3) * 0.5
            out.append(ControlPole(
                intersection_id=i.id, road_id=rid, control=i.control,
                position=Vec2(c.x + out_.x * along + right.x * across, c.y + out_.y * along + right.y * across),
                facing=math.atan2(out_.y, out_.x), axis=road_axis(road),
            ))
    return out


def light_color(world, offset_s: float, axis: LightAxis, t_s: float) -> LightColor:
    """Traffic-light colour for one axis at time t_s (seconds on any shared clock). `world` needs light_cycle_s and
    light_yellow_s (a World). The cycle: north-south turns green at light_offset_s into the cycle, stays green for
    cycle/2 - yellow, yellow for yellow, then red for cycle/2 while east-west runs the same pattern shifted by half
    a cycle."""
    cycle = world.light_cycle_s if world.light_cycle_s > 0 else 60
    yellow = min(max(world.light_yellow_s, 0), cycle / 2)
    shift = offset_s if axis == "ns" else offset_s + cycle / 2
    # JavaScript's % is fmod (the sign of the dividend); the double fmod keeps the phase in [0, cycle).
    phase = math.fmod(math.fmod(t_s - shift, cycle) + cycle, cycle)
    if phase < cycle / 2 - yellow:
        return "green"
    if phase < cycle / 2:
        return "yellow"
    return "red"


def lane_markings(world: world_pb2.World, dash: float = 3, gap: float = 6) -> list[Marking]:
    """Painted lines: a double yellow line between the two directions of two-way roads and dashed white lines
    between lanes of one direction (right-hand traffic: start->end lanes on the right of the centerline). Lines stop
    at the intersection boxes."""
    boxes = {b.id: b.half_size for b in intersection_boxes(world)}
    out: list[Marking] = []

    def strip(road, a: float, b: float, across: float, width: float, color) -> None:
        f = road_frame(road)
        out.append(Marking(color, (
            _offset(f.start, f.u, a, f.n, across - width / 2),
            _offset(f.start, f.u, b, f.n, across - width / 2),
            _offset(f.start, f.u, b, f.n, across + width / 2),
            _offset(f.start, f.u, a, f.n, across + width / 2),
        )))

    for road in world.roads:
        length = road_frame(road).length
        a = boxes.get(road.from_intersection, 0)
        b = length - boxes.get(road.to_intersection, 0)
        if b - a < 1:
            continue
        f = road.lanes_forward
        back = road.lanes_backward
        lanes = f + back
        if lanes == 0 or not road.width_m > 0:
            continue
        lw = road.width_m / lanes
        edge = -road.width_m / 2
        if f > 0 and back > 0:
            c = edge + f * lw
            strip(road, a, b, c - 0.15, 0.12, "yellow")
            strip(road, a, b, c + 0.15, 0.12, "yellow")
        for k in range(1, lanes):
            if k == f and back > 0:
                continue  # the yellow centre line
            across = edge + k * lw
            s = a + gap / 2
            while s + dash <= b:
                strip(road, s, s + dash, across, 0.12, "white")
                s += dash + gap
    return out


# The six faces of a unit box: outward normal and corners (as signs of the half sizes), as addBox lists them.
_BOX_FACES = (
    ((1, 0, 0), ((1, -1, -1), (1, 1, -1), (1, 1, 1), (1, -1, 1))),
    ((-1, 0, 0), ((-1, 1, -1), (-1, -1, -1), (-1, -1, 1), (-1, 1, 1))),
    ((0, 1, 0), ((1, 1, -1), (-1, 1, -1), (-1, 1, 1), (1, 1, 1))),
    ((0, -1, 0), ((-1, -1, -1), (1, -1, -1), (1, -1, 1), (-1, -1, 1))),
    ((0, 0, 1), ((-1, -1, 1), (1, -1, 1), (1, 1, 1), (-1, 1, 1))),
    ((0, 0, -1), ((-1, 1, -1), (1, 1, -1), (1, -1, -1), (-1, -1, -1))),
)


def add_box(mesh: MeshData, c, size, yaw: float, color: int) -> MeshData:
    """Appends an oriented box: centre c (x, y, z in the city frame), size along its own x (heading direction), y
    and z, rotated by yaw about z. Used for poles, signal heads and other street furniture merged into one mesh.
    c and size are (x, y, z) triples or objects with x, y, z."""
    cx, cy, cz = _xyz(c)
    sx, sy, sz = _xyz(size)
    r, g, b = rgb(color)
    cs = math.cos(yaw)
    sn = math.sin(yaw)
    hx, hy, hz = sx / 2, sy / 2, sz / 2
    positions: list[tuple[float, float, float]] = []
    normals: list[tuple[float, float, float]] = []
    indices: list[int] = []
    for n, corners in _BOX_FACES:
        base = len(positions)
        nx = cs * n[0] - sn * n[1]
        ny = sn * n[0] + cs * n[1]
        for kx, ky, kz in corners:
            lx, ly, lz = hx * kx, hy * ky, hz * kz  # exact: the signs only flip the half sizes
            positions.append((cx + cs * lx - sn * ly, cy + sn * lx + cs * ly, cz + lz))
            normals.append((nx, ny, n[2]))
        indices += [base, base + 1, base + 2, base, base + 2, base + 3]
    return mesh.append(positions, normals, [(0, 0)] * 24, [(r, g, b)] * 24, indices)


def add_upright_polygon(mesh: MeshData, c, radius: float, sides: int, facing: float, color: int) -> MeshData:
    """A flat regular polygon standing upright (a sign plate), facing direction `facing`."""
    cx, cy, cz = _xyz(c)
    r, g, b = rgb(color)
    fx = math.cos(facing)
    fy = math.sin(facing)
    # In-plane horizontal axis (to the left of the facing direction) and vertical axis.
    lx = -fy
    ly = fx
    positions = [(cx, cy, cz)]
    for i in range(sides):
        a = (math.pi / sides) * (2 * i + 1)
        positions.append((cx + lx * math.cos(a) * radius, cy + ly * math.cos(a) * radius, cz + math.sin(a) * radius))
    indices = []
    for i in range(sides):
        indices += [0, 1 + i, 1 + (i + 1) % sides]
    count = sides + 1
    return mesh.append(positions, [(fx, fy, 0)] * count, [(0, 0)] * count, [(r, g, b)] * count, indices)


def _xyz(v) -> tuple[float, float, float]:
    if hasattr(v, "x"):
        return float(v.x), float(v.y), float(v.z)
    x, y, z = v
    return float(x), float(y), float(z)
