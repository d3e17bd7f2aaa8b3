"""The Python port of the game's rendering geometry (scalediffusion/sim/geometry.py <- worldGeometry.ts) and camera
(scalediffusion/sim/camera.py <- camera.ts): what it computes for the default world, and that the golden file the
game's geometryGolden.test.ts compares against is what tools/gen_render_golden.py writes today."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from scalediffusion.city import manhattan_grid
from scalediffusion.sim import geometry as geo
from scalediffusion.sim import geometry_core
from scalediffusion.sim.camera import CHASE, DASH, camera_pose, lerp_angle
from scalediffusion.sim.geometry import Vec2
from scalediffusion.sim.vehicle import VehicleState
from scalediffusion.v1 import world_pb2
from tests.conftest import REPO

GENERATOR = REPO / "tools" / "gen_render_golden.py"
FIXTURE = REPO / "clients" / "web" / "src" / "world" / "fixtures" / "geometry_golden.json"


@pytest.fixture(scope="module")
def world() -> world_pb2.World:
    return manhattan_grid()


def test_the_golden_file_for_the_game_is_current():
    """clients/web/src/world/geometryGolden.test.ts checks worldGeometry.ts / camera.ts against this file; it must be
    exactly what the Python ports give today (regenerate with tools/gen_render_golden.py)."""
    spec = importlib.util.spec_from_file_location("gen_render_golden", GENERATOR)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert FIXTURE.read_bytes() == gen.golden().encode("utf-8")


def test_the_shared_helpers_are_geometry_core_s():
    assert geo.pt is geometry_core.pt and geo.road_frame is geometry_core.road_frame
    assert geo.normalise_ring is geometry_core.normalise_ring and geo.signed_area is geometry_core.signed_area


def test_hash_string_is_fnv1a_over_utf16_code_units():
    assert geo.hash_string("") == 0x811C9DC5
    assert geo.hash_string("a") == 0xE40C292C
    assert geo.hash_string("foobar") == 0xBF9CF968
    assert geo.hash_string("\u00e9") == geo.hash_string("\u00e9")  # BMP characters: one code unit
    assert 0 <= geo.hash_string("🚗") < 2**32 and geo.hash_string("🚗") != geo.hash_string("\ud83d")


def test_road_surfaces_and_trimmed_sidewalks(world):
    surfaces = geo.road_surfaces(world)
    assert len(surfaces.roads) == len(world.roads) and len(surfaces.sidewalks) == 2 * len(world.roads)
    roads = geo.roads_by_id(world)
    avenue, street = roads["ave1_1"], roads["st1_0"]
    quad = geo.road_quad(avenue)
    xs, ys = [p.x for p in quad.corners], [p.y for p in quad.corners]
    assert (min(xs), max(xs)) == (280 - avenue.width_m / 2, 280 + avenue.width_m / 2)
    assert (min(ys), max(ys)) == (80, 160)
    assert geo.signed_area(list(quad.corners)) > 0  # counter-clockwise from above
    # An avenue's sidewalks stop where the crossing street's carriageway starts (and the other way round).
    inters = geo.intersections_by_id(world)
    assert geo.sidewalk_trim(avenue, inters[avenue.from_intersection], roads) == street.width_m / 2
    assert geo.sidewalk_trim(street, inters[street.to_intersection], roads) == avenue.width_m / 2
    right, left = [s for s in surfaces.sidewalks if s.road_id == "ave1_1"]
    assert (right.side, left.side) == ("right", "left")
    assert right.corners[0] == Vec2(280 + avenue.width_m / 2 + avenue.sidewalk_m, 80 + street.width_m / 2)
    assert geo.sidewalk_quads(world_pb2.Road(start=world_pb2.Point2(), end=world_pb2.Point2(x=10), width_m=6)) == []


def test_intersection_boxes_and_control_poles(world):
    boxes = {b.id: b for b in geo.intersection_boxes(world)}
    assert boxes["i1_1"].half_size == geo.roads_by_id(world)["ave1_1"].width_m / 2
    poles = geo.control_poles(world)
    controlled = [i for i in world.intersections if i.control != world_pb2.INTERSECTION_CONTROL_NONE]
    assert len(poles) == sum(len(i.road_ids) for i in controlled)
    for pole in poles:
        c = geo.pt(geo.intersections_by_id(world)[pole.intersection_id].position)
        out = Vec2(math.cos(pole.facing), math.sin(pole.facing))  # facing the arriving traffic = out along the road
        d = Vec2(-out.x, -out.y)  # the arriving traffic's direction
        rel = Vec2(pole.position.x - c.x, pole.position.y - c.y)
        assert rel.x * out.x + rel.y * out.y > boxes[pole.intersection_id].half_size  # before the box
        assert d.x * rel.y - d.y * rel.x < 0  # on the arriving traffic's right
        assert pole.axis == geo.road_axis(geo.roads_by_id(world)[pole.road_id])


def test_triangulate_covers_concave_polygons_once():
    comb = [Vec2(*p) for p in [(0, 0), (5, 0), (5, 3), (4, 3), (4, 1), (3, 1), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]]
    tris = geo.triangulate(comb)
    assert len(tris) == 3 * (len(comb) - 2)
    area = sum(geo.signed_area([comb[a], comb[b], comb[c]]) for a, b, c in zip(tris[::3], tris[1::3], tris[2::3]))
    assert area == pytest.approx(geo.signed_area(comb))
    assert geo.triangulate(list(reversed(comb))) and geo.triangulate(comb[:2]) == []


def test_building_meshes(world):
    prisms = geo.building_prisms(world)
    assert len(prisms) == len(world.buildings)
    assert all(p.color in geo.FACADES and geo.signed_area(p.footprint) > 0 for p in prisms)
    mesh = geo.building_mesh(prisms[:2])
    assert mesh.vertex_count == 2 * (4 * 4 + 4) and len(mesh.indices) == 2 * (4 * 6 + 2 * 3)
    p = prisms[0]
    assert mesh.positions[:20, 2].max() == p.height_m
    walls = mesh.normals[:16]
    centre = np.mean([[v.x, v.y] for v in p.footprint], axis=0)
    mid = (mesh.positions[0:16:4, :2] + mesh.positions[1:16:4, :2]) / 2
    assert (np.sum((mid - centre) * walls[0:16:4, :2], axis=1) > 0).all()  # wall normals point out
    np.testing.assert_allclose(mesh.colors[16], np.array(geo.rgb(p.color)) * 0.7)  # roofs darker
    assert mesh.uvs[2, 1] == p.height_m / 3.5  # one texture row per 3.5 m floor


def test_light_colors_cycle_and_the_axes_alternate(world):
    cycle, yellow = world.light_cycle_s, world.light_yellow_s
    assert [geo.light_color(world, 0.0, "ns", t) for t in (0, cycle / 2 - yellow - 0.01, cycle / 2 - yellow, cycle / 2, cycle - 0.01, cycle)] == [
        "green", "green", "yellow", "red", "red", "green"]
    assert geo.light_color(world, 7.0, "ns", -53.0) == geo.light_color(world, 7.0, "ns", 7.0) == "green"
    for t in np.linspace(-90, 90, 181):
        ns, ew = geo.light_color(world, 14.0, "ns", t), geo.light_color(world, 14.0, "ew", t)
        assert (ns == "red") != (ew == "red")  # exactly one axis is stopped at any time


def test_lane_markings(world):
    marks = geo.lane_markings(world)
    roads = geo.roads_by_id(world)
    yellow = [m for m in marks if m.color == "yellow"]
    assert len(yellow) == 2 * len(world.roads)  # every road is two-way: a double yellow line
    boxes = {b.id: b.half_size for b in geo.intersection_boxes(world)}
    for m in marks:  # nothing is painted inside the intersection boxes
        for p in m.corners:
            for iid, half in boxes.items():
                c = geo.pt(geo.intersections_by_id(world)[iid].position)
                assert not (abs(p.x - c.x) < half - 1e-6 and abs(p.y - c.y) < half - 1e-6)
    white = [m for m in marks if m.color == "white"]
    assert white and all(math.dist((m.corners[0].x, m.corners[0].y), (m.corners[1].x, m.corners[1].y)) == pytest.approx(3) for m in white)
    assert {roads[r].kind for r in roads} == {world_pb2.ROAD_KIND_AVENUE, world_pb2.ROAD_KIND_STREET}


def test_mesh_helpers_append_in_place():
    mesh = geo.empty_mesh()
    assert geo.add_box(mesh, (1, 2, 3), (2, 4, 6), math.pi / 2, 0xFF0000) is mesh
    assert mesh.vertex_count == 24 and len(mesh.indices) == 36
    np.testing.assert_allclose(mesh.positions.min(axis=0), [-1, 1, 0], atol=1e-12)  # rotated: x extent 4, y extent 2
    np.testing.assert_allclose(mesh.positions.max(axis=0), [3, 3, 6], atol=1e-12)
    geo.add_upright_polygon(mesh, (0, 0, 2), 0.4, 8, 0.0, 0xC4161C)
    assert mesh.vertex_count == 24 + 9 and mesh.indices.max() == 32 and (mesh.normals[24:] == [1, 0, 0]).all()
    geo.add_flat_quads(mesh, [geo.square_quad(Vec2(0, 0), 1)], 0.5, 0x00FF00, 2)
    assert mesh.vertex_count == 37 and (mesh.uvs[-4:] == [[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]).all()
    assert mesh.indices.dtype == np.uint32 and list(mesh.indices[-6:]) == [33, 34, 35, 33, 35, 36]


def test_camera_poses(world):
    sp = world.spawn_points[0]
    car = VehicleState(sp.position.x, sp.position.y, sp.heading, 0.0)
    dash = camera_pose(car, "dash", 60.0)
    assert (dash.z, dash.fov_deg, dash.roll) == (DASH.height, 60.0, 0.0)
    assert math.hypot(dash.x - car.x, dash.y - car.y) == pytest.approx(DASH.forward)
    assert dash.pitch == pytest.approx(math.atan2(DASH.look_height - DASH.height, DASH.look_ahead))
    chase = camera_pose(car, "chase", 75.0, yaw=car.theta + 0.1)
    assert chase.z == CHASE.height and chase.yaw == car.theta + 0.1
    assert math.hypot(chase.x - car.x, chase.y - car.y) == pytest.approx(CHASE.back)
    assert chase.target.z == CHASE.look_height and chase.pitch < 0
    assert lerp_angle(3.0, -3.0, 1.0) == pytest.approx(2 * math.pi - 3.0)  # the short way round, through pi
    assert lerp_angle(0.0, 1.0, 2.0) == 1.0 and lerp_angle(0.0, 1.0, -1.0) == 0.0
