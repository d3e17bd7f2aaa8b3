"""Write clients/web/src/world/fixtures/geometry_golden.json: what the Python ports of the game's rendering geometry
(scalediffusion/sim/geometry.py <- src/world/worldGeometry.ts) and camera (scalediffusion/sim/camera.py <-
src/sim/camera.ts) compute, for the default world (golden_world.json, written by tools/gen_world_golden.py), for a
small hand-made world with the edge cases the grid lacks (one-way and asymmetric roads, a diagonal, a zero-length road,
no sidewalks, clockwise / closed / concave / degenerate footprints, a non-ASCII id), and for direct calls of the pure
helpers. src/world/geometryGolden.test.ts asserts the TypeScript functions give the same; tests/unit/test_sim_geometry.py
that this file is what the generator writes today.

    python tools/gen_render_golden.py           # after changing geometry.py / camera.py (or worldGeometry.ts)

Objects are written in the TypeScript functions' shapes (camelCase keys) so the test can compare them as they are.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalediffusion.city import catalog
from scalediffusion.sim import geometry as geo
from scalediffusion.sim.camera import camera_pose, lerp_angle
from scalediffusion.sim.geometry import Vec2
from scalediffusion.v1 import world_pb2

OUT = Path(__file__).resolve().parents[1] / "clients" / "web" / "src" / "world" / "fixtures" / "geometry_golden.json"
MESH_SAMPLE_STRIDE = 97  # building meshes are large: every 97th vertex in full, plus counts and sums


def edge_world() -> world_pb2.World:
    """A small world with the cases the default grid does not exercise."""
    w = world_pb2.World(world_id="geometry-edge-cases", name="edge cases", version=1, light_cycle_s=40.0, light_yellow_s=4.0)
    w.min.x, w.min.y, w.max.x, w.max.y = -50.0, -40.0, 150.0, 130.0
    light, stop, none = (world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT, world_pb2.INTERSECTION_CONTROL_STOP_SIGN,
                         world_pb2.INTERSECTION_CONTROL_NONE)
    w.intersections.add(id="n0", position=world_pb2.Point2(x=0, y=0), control=light, light_offset_s=0.0, road_ids=["ghost", "r0", "r1", "r2"])
    w.intersections.add(id="n1", position=world_pb2.Point2(x=100, y=0), control=stop, road_ids=["r0", "r3"])
    w.intersections.add(id="n2", position=world_pb2.Point2(x=80, y=50), control=none, road_ids=["r1", "r3"])
    w.intersections.add(id="n3", position=world_pb2.Point2(x=0, y=90), control=light, light_offset_s=12.5, road_ids=["r2", "r4", "r5"])
    road = world_pb2.Road
    w.roads.extend([
        road(id="r0", start=world_pb2.Point2(x=0, y=0), end=world_pb2.Point2(x=100, y=0), width_m=10, sidewalk_m=3,
             lanes_forward=2, lanes_backward=0, from_intersection="n0", to_intersection="n1"),
        road(id="r1", start=world_pb2.Point2(x=0, y=0), end=world_pb2.Point2(x=80, y=50), width_m=7, sidewalk_m=0,
             lanes_forward=1, lanes_backward=1, from_intersection="n0", to_intersection="n2"),
        road(id="r2", start=world_pb2.Point2(x=0, y=90), end=world_pb2.Point2(x=0, y=0), width_m=14, sidewalk_m=5,
             lanes_forward=2, lanes_backward=1, from_intersection="n3", to_intersection="n0"),
        road(id="r3", start=world_pb2.Point2(x=100, y=0), end=world_pb2.Point2(x=80, y=50), width_m=9, sidewalk_m=2.5,
             from_intersection="n1", to_intersection="n2"),
        road(id="r4", start=world_pb2.Point2(x=0, y=90), end=world_pb2.Point2(x=0, y=90), width_m=6, sidewalk_m=2,
             lanes_forward=1, lanes_backward=1, from_intersection="n3", to_intersection="n3"),
        road(id="r5", start=world_pb2.Point2(x=0, y=90), end=world_pb2.Point2(x=-40, y=120), width_m=8, sidewalk_m=4,
             lanes_forward=0, lanes_backward=3, from_intersection="n3", to_intersection="nowhere"),
    ])

    def building(bid: str, points, height: float) -> None:
        w.buildings.add(id=bid, footprint=[world_pb2.Point2(x=x, y=y) for x, y in points], height_m=height)

    building("cw-square", [(20, 20), (20, 40), (40, 40), (40, 20)], 30.5)
    building("closed-ring", [(50, 20), (60, 20), (60, 30), (50, 30), (50, 20)], 12)
    building("dup-points", [(70, 60), (70, 60), (90, 60), (90, 75), (90, 75.0000000001), (70, 75)], 18.25)
    building("l-shape", [(-40, 10), (-10, 10), (-10, 20), (-30, 20), (-30, 50), (-40, 50)], 45)
    building("bâtiment-ü", [(110, 10), (130, 12), (120, 30)], 9)
    building("flat", [(0, 100), (5, 100), (5, 105)], 0)
    building("two-points", [(0, 110), (5, 110)], 10)
    building("star", [(100, 100), (104, 108), (112, 108), (106, 113), (108, 121), (100, 116), (92, 121), (94, 113),
                      (88, 108), (96, 108)], 22)
    w.parked.add(position=world_pb2.Point2(x=50, y=-3), heading=0.0, length_m=4.6, width_m=1.9)
    w.spawn_points.add(position=world_pb2.Point2(x=10, y=-2.5), heading=0.0, road_id="r0")
    return w


# ---- the TypeScript shapes --------------------------------------------------------------------------------------------

def vec(p: Vec2) -> dict:
    return {"x": p.x, "y": p.y}


def quad(q) -> list:
    return [vec(p) for p in q]


def mesh_json(m: geo.MeshData) -> dict:
    return {"positions": m.positions.ravel().tolist(), "normals": m.normals.ravel().tolist(), "uvs": m.uvs.ravel().tolist(),
            "colors": m.colors.ravel().tolist(), "indices": m.indices.astype(int).tolist()}


def running_sum(values) -> float:
    total = 0.0
    for v in values:  # left to right, as the test's loop adds them
        total += v
    return total


def mesh_summary(m: geo.MeshData) -> dict:
    """Counts, sums and every MESH_SAMPLE_STRIDE-th vertex (all attributes) of a large mesh."""
    flat = mesh_json(m)
    samples = []
    for k in range(0, m.vertex_count, MESH_SAMPLE_STRIDE):
        samples.append({"index": k, "position": m.positions[k].tolist(), "normal": m.normals[k].tolist(),
                        "uv": m.uvs[k].tolist(), "color": m.colors[k].tolist()})
    return {
        "vertexCount": m.vertex_count, "indexCount": len(m.indices),
        "sums": {key: running_sum(values) for key, values in flat.items()},
        "samples": samples,
        "firstIndices": flat["indices"][:60], "lastIndices": flat["indices"][-60:],
    }


def world_outputs(world: world_pb2.World) -> dict:
    surfaces = geo.road_surfaces(world)
    roads = geo.roads_by_id(world)
    inters = geo.intersections_by_id(world)
    prisms = geo.building_prisms(world)
    return {
        "roadSurfaces": {
            "roads": [{"roadId": r.road_id, "corners": quad(r.corners)} for r in surfaces.roads],
            "sidewalks": [{"roadId": s.road_id, "side": s.side, "corners": quad(s.corners)} for s in surfaces.sidewalks],
        },
        "sidewalkTrims": {r.id: [geo.sidewalk_trim(r, inters.get(r.from_intersection), roads),
                                 geo.sidewalk_trim(r, inters.get(r.to_intersection), roads)] for r in world.roads},
        "roadFrames": {r.id: {"u": vec(f.u), "n": vec(f.n), "length": f.length, "start": vec(f.start), "end": vec(f.end)}
                       for r in world.roads for f in [geo.road_frame(r)]},
        "roadAxes": {r.id: geo.road_axis(r) for r in world.roads},
        "intersectionBoxes": [{"id": b.id, "center": vec(b.center), "halfSize": b.half_size, "control": b.control}
                              for b in geo.intersection_boxes(world)],
        "buildingPrisms": [{"id": p.id, "footprint": [vec(v) for v in p.footprint], "heightM": p.height_m, "color": p.color}
                           for p in prisms],
        "buildingMesh": mesh_summary(geo.building_mesh(prisms)),
        "buildingMeshFirst": mesh_json(geo.building_mesh(prisms[:3], 5, 3)),
        "controlPoles": [{"intersectionId": c.intersection_id, "roadId": c.road_id, "control": c.control,
                          "position": vec(c.position), "facing": c.facing, "axis": c.axis} for c in geo.control_poles(world)],
        "signalHeads": [{"intersectionId": h.intersection_id, "roadId": h.road_id, "axis": h.axis, "facing": h.facing,
                         "far": h.far, "center": list(h.center), "size": list(h.size), "lampRadius": h.lamp_radius,
                         "lamps": [list(v) for v in h.lamps],
                         "mounts": [[list(c), list(z), yaw] for c, z, yaw in h.mounts],
                         "visors": [[list(c), list(z), yaw] for c, z, yaw in h.visors]} for h in geo.signal_heads(world)],
        "laneMarkings": [{"color": m.color, "corners": quad(m.corners)} for m in geo.lane_markings(world)],
        "laneMarkingsShortDashes": len(geo.lane_markings(world, 1, 2)),
    }


def helper_outputs() -> dict:
    polygons = {
        "square": [(0, 0), (1, 0), (1, 1), (0, 1)],
        "cw-square": [(0, 0), (0, 1), (1, 1), (1, 0)],
        "l-shape": [(0, 0), (3, 0), (3, 1), (1, 1), (1, 3), (0, 3)],
        "comb": [(0, 0), (5, 0), (5, 3), (4, 3), (4, 1), (3, 1), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)],
        "collinear": [(0, 0), (1, 0), (2, 0), (2, 2), (0, 2)],
        "flat": [(0, 0), (1, 1), (2, 2)],
        "bow-tie": [(0, 0), (2, 2), (2, 0), (0, 2)],
        "two": [(0, 0), (1, 0)],
    }
    rings = {
        "closed-cw": [(0, 0), (0, 2), (2, 2), (2, 0), (0, 0)],
        "duplicates": [(0, 0), (0, 0), (3, 0), (3, 0.0000000005), (3, 3), (0, 3), (0, 1e-10)],
        "single": [(4, 4)],
        "empty": [],
    }
    mesh = geo.empty_mesh()
    geo.add_flat_quads(mesh, [geo.square_quad(Vec2(3, -2), 1.5), ((Vec2(0, 0), Vec2(4, 0), Vec2(4, 2), Vec2(0, 1)))], 0.12, 0xA9A8A2, 4)
    geo.add_box(mesh, (10, 20, 1.25), (0.08, 0.08, 2.5), 0, 0x2E3235)
    geo.add_box(mesh, (-3.5, 7.25, 4.5), (0.3, 0.4, 1.1), 2.35, 0x1D1F21)
    geo.add_upright_polygon(mesh, (1.06, 2, 2.45), 0.4, 8, -1.2, 0xC4161C)
    geo.add_upright_polygon(mesh, (0, 0, 1), 1.0, 3, math.pi, 0xFFFFFF)
    geo.add_flat_quads(mesh, [], 0, 0x123456)
    strings = ["", "a", "foobar", "b0_0_0_0", "b2_6_1_9", "bâtiment-ü", "日本", "🚗", "\ud83d"]
    return {
        "hashString": [[s, geo.hash_string(s)] for s in strings],
        "signedArea": {k: geo.signed_area([Vec2(*p) for p in v]) for k, v in polygons.items()},
        "triangulate": {k: geo.triangulate([Vec2(*p) for p in v]) for k, v in polygons.items()},
        "normaliseRing": {k: [vec(p) for p in geo.normalise_ring([{"x": x, "y": y} for x, y in v])] for k, v in rings.items()},
        "squareQuad": quad(geo.square_quad(Vec2(12.5, -7), 6.25)),
        "mesh": mesh_json(mesh),
    }


LIGHT_TIMES = [-100.5, -3.0, 0.0, 1.5, 12.5, 26.9, 27.0, 29.99, 30.0, 42.5, 56.9, 57.0, 59.999, 60.0, 61.0, 3600.25, 1e6 + 0.1]
LIGHT_WORLDS = [(60.0, 3.0), (0.0, 3.0), (20.0, 15.0), (45.0, -1.0), (40.0, 4.0)]
LIGHT_OFFSETS = [0.0, 7.0, 12.5, 49.0, 56.5]


def light_outputs() -> dict:
    cases = []
    for k, (cycle, yellow) in enumerate(LIGHT_WORLDS):
        world = world_pb2.World(light_cycle_s=cycle, light_yellow_s=yellow)
        for offset in LIGHT_OFFSETS:
            for axis in ("ns", "ew"):
                cases.append([k, offset, axis, [geo.light_color(world, offset, axis, t) for t in LIGHT_TIMES]])
    return {"worlds": [{"lightCycleS": c, "lightYellowS": y} for c, y in LIGHT_WORLDS], "times": LIGHT_TIMES, "cases": cases}


class _State:
    def __init__(self, x: float, y: float, theta: float) -> None:
        self.x, self.y, self.theta, self.speed = x, y, theta, 0.0


def camera_outputs(world: world_pb2.World) -> list:
    states = [(0.0, 0.0, 0.0), (12.5, -3.25, 1.2), (-140.0, 377.7, -2.9), (283.5, 98.0, math.pi / 2), (5.0, 5.0, 3.14159)]
    states += [(s.position.x, s.position.y, s.heading) for s in world.spawn_points]
    out = []
    for x, y, theta in states:
        for mode in ("dash", "chase"):
            for fov, yaw in ((60.0, None), (75.0, theta + 0.3)):
                p = camera_pose(_State(x, y, theta), mode, fov, yaw)
                out.append({"state": {"x": x, "y": y, "theta": theta, "speed": 0.0}, "mode": mode, "fovDeg": fov, "yaw": yaw,
                            "pose": {"x": p.x, "y": p.y, "z": p.z, "yaw": p.yaw, "pitch": p.pitch, "roll": p.roll,
                                     "fovDeg": p.fov_deg, "target": {"x": p.target.x, "y": p.target.y, "z": p.target.z}}})
    return out


def lerp_outputs() -> list:
    cases = [(0.0, 1.0, 0.5), (3.0, -3.0, 0.25), (-3.0, 3.0, 1.0), (0.1, 6.2, 0.5), (10.0, -10.0, 2.0), (1.0, 2.0, -1.0)]
    return [[a, b, t, lerp_angle(a, b, t)] for a, b, t in cases]


def golden() -> str:
    grid = catalog.get_world(catalog.DEFAULT_WORLD)
    edge = edge_world()
    doc = {
        "generatedBy": "tools/gen_render_golden.py",
        "gridWorldId": grid.world_id,
        "gridVersion": grid.version,
        "edgeWorld": json_format.MessageToDict(edge),
        "grid": world_outputs(grid),
        "edge": world_outputs(edge),
        "helpers": helper_outputs(),
        "lightColor": light_outputs(),
        "cameraPose": camera_outputs(grid),
        "lerpAngle": lerp_outputs(),
    }
    return dumps(doc) + "\n"


def dumps(value, indent: int = 0, width: int = 120) -> str:
    """JSON with short values on one line and longer ones broken per item: compact yet diff-friendly."""
    flat = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    if len(flat) + indent <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (indent + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k, ensure_ascii=True)}:{dumps(v, indent + 1, width)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    if all(not isinstance(v, (dict, list)) for v in value):  # numbers: several to a line
        lines, line = [], []
        for v in value:
            line.append(json.dumps(v, ensure_ascii=True))
            if sum(len(s) + 1 for s in line) + indent > width:
                lines.append(",".join(line))
                line = []
        if line:
            lines.append(",".join(line))
        return "[\n" + ",\n".join(pad + ln for ln in lines) + "\n" + " " * indent + "]"
    return "[\n" + ",\n".join(pad + dumps(v, indent + 1, width) for v in value) + "\n" + " " * indent + "]"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(golden(), encoding="utf-8")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
