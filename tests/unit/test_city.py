"""The city model: proportions of the procedural grid, the GeoJSON importer, and the golden files the game's own
tests compare with (the game draws and drives exactly these streets)."""

import copy
import json
import math

import pytest
from google.protobuf import json_format

from scalediffusion.city import GridSpec, catalog, manhattan_grid, world_stats
from scalediffusion.city.geojson import GeoJsonError, ImportSpec, import_geojson
from scalediffusion.v1 import world_pb2
from tests.conftest import REPO

FIXTURES = REPO / "clients" / "web" / "src" / "world" / "fixtures"


def test_the_grid_is_deterministic_and_has_manhattan_proportions():
    a, b = manhattan_grid(), manhattan_grid()
    assert a == b
    spec = GridSpec()
    avenues = [r for r in a.roads if r.kind == world_pb2.ROAD_KIND_AVENUE]
    streets = [r for r in a.roads if r.kind == world_pb2.ROAD_KIND_STREET]
    assert len(avenues) == spec.avenues * (spec.streets - 1) and len(streets) == spec.streets * (spec.avenues - 1)
    assert all(r.start.x == r.end.x and r.end.y - r.start.y == pytest.approx(80.0) for r in avenues), "avenues run north-south, 80 m blocks"
    assert all(r.start.y == r.end.y and r.end.x - r.start.x == pytest.approx(280.0) for r in streets)
    assert avenues[0].width_m + 2 * avenues[0].sidewalk_m == pytest.approx(30.0) and streets[0].width_m + 2 * streets[0].sidewalk_m == pytest.approx(18.0)
    assert manhattan_grid(GridSpec(seed=2)) != a, "the seed changes heights and parked cars"


def test_intersections_have_lights_and_stop_signs_and_know_their_roads():
    world = manhattan_grid()
    controls = {i.control for i in world.intersections}
    assert controls == {world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT, world_pb2.INTERSECTION_CONTROL_STOP_SIGN}
    roads = {r.id: r for r in world.roads}
    for i in world.intersections:
        assert 2 <= len(i.road_ids) <= 4
        for rid in i.road_ids:
            assert i.id in (roads[rid].from_intersection, roads[rid].to_intersection)


def test_buildings_stand_inside_blocks_and_never_on_a_road():
    world = manhattan_grid()
    heights = [b.height_m for b in world.buildings]
    assert min(heights) >= 12 and max(heights) <= 180 and len(set(heights)) > 100, "varied heights"
    for building in world.buildings:
        xs = [p.x for p in building.footprint]
        ys = [p.y for p in building.footprint]
        for road in world.roads:
            half = road.width_m / 2 + road.sidewalk_m
            if road.kind == world_pb2.ROAD_KIND_AVENUE:
                assert max(xs) <= road.start.x - half or min(xs) >= road.start.x + half or max(ys) <= road.start.y or min(ys) >= road.end.y
            else:
                assert max(ys) <= road.start.y - half or min(ys) >= road.start.y + half or max(xs) <= road.start.x or min(xs) >= road.end.x


def test_parked_cars_sit_at_the_kerb_of_streets_and_spawns_are_on_avenues():
    world = manhattan_grid()
    streets = [r for r in world.roads if r.kind == world_pb2.ROAD_KIND_STREET]
    assert world.parked
    for car in world.parked:
        assert any(abs(abs(car.position.y - r.start.y) - (r.width_m / 2 - 1.2)) < 1e-6 and r.start.x < car.position.x < r.end.x for r in streets)
    assert world.spawn_points and all(s.heading == pytest.approx(math.pi / 2) for s in world.spawn_points)


def test_geojson_sample_imports_with_projected_metres_and_feet_converted():
    world = catalog.get_world("nyc-sample")
    stats = world_stats(world)
    assert stats["buildingCount"] == 6 and stats["roadCount"] == 7 and stats["intersectionCount"] == 6
    assert stats["roadLengthM"] == pytest.approx(2 * 160 + 3 * 250, rel=1e-4), "lon/lat projected to metres"
    assert world.buildings[0].height_m == pytest.approx(420 * 0.3048, abs=1e-3)
    one_way = [r for r in world.roads if r.name == "7 AVENUE"]
    assert all(r.lanes_forward == 1 and r.lanes_backward == 0 for r in one_way)
    for building in world.buildings:  # counter-clockwise, not closed
        ring = [(p.x, p.y) for p in building.footprint]
        assert ring[0] != ring[-1]
        assert sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1])) > 0
    lights = [i for i in world.intersections if i.control == world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT]
    assert len(lights) == 2, "the two three-way junctions in the middle"


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": [{"geometry": {"type": "Point", "coordinates": [0, 0]}}]}, "unsupported geometry"),
        ({"type": "FeatureCollection", "features": [{"geometry": {"type": "LineString", "coordinates": [[0, 0]]}}]}, "fewer than 2 points"),
        ({"type": "FeatureCollection", "features": [{"geometry": {"type": "LineString", "coordinates": [[0, 0], [500, 0]]}}]}, "outside lon/lat"),
        ({"type": "FeatureCollection", "features": [{"properties": {}}]}, "no geometry"),
        ({"type": "FeatureCollection", "features": [{"geometry": {"type": "Polygon", "coordinates": [[0, 0], [1, 1]]}}]}, r"not \[lon, lat\]"),
    ],
)
def test_bad_geojson_names_the_feature_and_the_problem(doc, message):
    with pytest.raises(GeoJsonError, match=message):
        import_geojson(copy.deepcopy(doc), ImportSpec())


def test_golden_world_files_for_the_game_are_current():
    """clients/web's tests compute worldStats from golden_world.json and compare with golden_stats.json; both must be
    what Python generates today (regenerate with tools/gen_world_golden.py)."""
    world = catalog.get_world(catalog.DEFAULT_WORLD)
    committed = json_format.ParseDict(json.loads((FIXTURES / "golden_world.json").read_text()), world_pb2.World())
    assert committed == world
    stats = json.loads((FIXTURES / "golden_stats.json").read_text())
    assert stats == json.loads(json.dumps(world_stats(world)))


def test_moving_actors_loop_on_their_timetables():
    from scalediffusion.city.actors import actor_pose

    world = manhattan_grid()
    kinds = [a.kind for a in world.actors]
    assert kinds.count(world_pb2.ACTOR_KIND_VEHICLE) == 6 and kinds.count(world_pb2.ACTOR_KIND_PEDESTRIAN) == 6
    for actor in world.actors:
        assert actor.keyframes[0].t_s == 0 and [k.t_s for k in actor.keyframes] == sorted(k.t_s for k in actor.keyframes)
        for t in (0.0, 3.3, 17.0):
            here, later = actor_pose(actor, t), actor_pose(actor, t + actor.period_s)
            assert here == pytest.approx(later), "periodic"
    car = next(a for a in world.actors if a.kind == world_pb2.ACTOR_KIND_VEHICLE)
    # Moving at the NPC speed along a side, and heading where it goes.
    x0, y0, h0 = actor_pose(car, 1.0)
    x1, y1, _ = actor_pose(car, 2.0)
    assert math.hypot(x1 - x0, y1 - y0) == pytest.approx(GridSpec().npc_speed_mps, rel=1e-6)
    assert math.atan2(y1 - y0, x1 - x0) == pytest.approx(h0)


def test_golden_actor_poses_for_the_game_are_current():
    from scalediffusion.city.actors import actor_pose

    golden = json.loads((FIXTURES / "golden_actor_poses.json").read_text())
    world = catalog.get_world(catalog.DEFAULT_WORLD)
    for actor in world.actors:
        for t, pose in zip(golden["times"], golden["poses"][actor.id]):
            assert list(actor_pose(actor, t)) == pytest.approx(pose, abs=1e-9)
