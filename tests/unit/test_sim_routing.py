"""The simulator's routing (scalediffusion/sim/routing.py, a port of the game's src/world/routing.ts): the cases of
the game's routing.test.ts on the same 3x3 grid, plus the seeded random planner. Equality with the game itself is
the golden fixture's job (test_sim_vehicle.py checks it is current; src/sim/golden.test.ts replays it)."""

from __future__ import annotations

import math

import pytest

from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim import routing
from scalediffusion.sim.geometry_core import Vec2
from scalediffusion.sim.routing import LANEFOLLOW, LEFT, RIGHT, STRAIGHT
from tests.unit.sim_grid3x3 import grid3x3


def deg(d: float) -> float:
    return d * math.pi / 180


# ---- road graph and shortest paths ----


def test_has_an_edge_each_way_per_two_way_road():
    g = routing.build_road_graph(grid3x3())
    assert len(g.nodes) == 9
    assert sum(len(e) for e in g.edges.values()) == 24
    assert sorted(e.to_node for e in g.edges["i1_1"]) == ["i0_1", "i1_0", "i1_2", "i2_1"]
    # Sorted by road id, then target.
    assert [e.road_id for e in g.edges["i1_1"]] == ["ew1_0", "ew1_1", "ns1_0", "ns1_1"]


def test_finds_the_shortest_path_by_length():
    g = routing.build_road_graph(grid3x3())
    straight = routing.shortest_path(g, "i0_0", "i2_0")
    assert straight.nodes == ("i0_0", "i1_0", "i2_0") and straight.roads == ("ew0_0", "ew0_1")
    assert straight.length_m == pytest.approx(200)
    diagonal = routing.shortest_path(g, "i0_0", "i2_2")
    assert diagonal.length_m == pytest.approx(400) and len(diagonal.nodes) == 5
    assert routing.shortest_path(g, "i0_0", "i2_2").nodes == diagonal.nodes  # deterministic tie-breaking
    assert routing.shortest_path(g, "i1_1", "i1_1") == routing.Path(nodes=("i1_1",), roads=(), length_m=0.0)
    assert routing.shortest_path(g, "i0_0", "nowhere") is None


def test_routes_around_a_missing_road_and_respects_one_way_streets():
    world = grid3x3()
    kept = [r for r in world.roads if r.id != "ew0_0"]
    del world.roads[:]
    world.roads.extend(kept)
    around = routing.shortest_path(routing.build_road_graph(world), "i0_0", "i1_0")
    assert around.length_m == pytest.approx(300) and around.nodes == ("i0_0", "i0_1", "i1_1", "i1_0")

    one_way = grid3x3()
    next(r for r in one_way.roads if r.id == "ew0_0").lanes_forward = 0  # only i1_0 -> i0_0 (westbound)
    g = routing.build_road_graph(one_way)
    assert routing.shortest_path(g, "i1_0", "i0_0").length_m == pytest.approx(100)
    assert routing.shortest_path(g, "i0_0", "i1_0").length_m == pytest.approx(300)
    assert routing.shortest_path(routing.build_road_graph(one_way, respect_one_way=False), "i0_0", "i1_0").length_m == pytest.approx(100)


def test_the_default_city_is_connected():
    g = routing.build_road_graph(manhattan_grid())
    ids = sorted(g.nodes)
    assert all(routing.shortest_path(g, ids[0], to) is not None for to in ids[1:])


# ---- turn classification ----


def test_signs_the_turn_angle_counter_clockwise_positive():
    o = Vec2(0, 0)
    assert routing.turn_angle(Vec2(-1, 0), o, Vec2(0, 1)) == pytest.approx(deg(90))  # east then north: left
    assert routing.turn_angle(Vec2(-1, 0), o, Vec2(0, -1)) == pytest.approx(deg(-90))  # east then south: right
    assert routing.turn_angle(Vec2(-1, 0), o, Vec2(1, 0)) == pytest.approx(0)


def test_uses_a_30_degree_threshold():
    assert routing.classify_turn(deg(31)) == LEFT
    assert routing.classify_turn(deg(-31)) == RIGHT
    assert routing.classify_turn(deg(29)) == STRAIGHT
    assert routing.classify_turn(deg(-29)) == STRAIGHT
    assert routing.classify_turn(deg(29), threshold_deg=20) == LEFT


# ---- navigation commands on the 3x3 grid ----


@pytest.fixture(scope="module")
def g():
    return routing.build_road_graph(grid3x3())


@pytest.fixture(scope="module")
def route(g):
    # From the spawn on ns0_0 heading north: right at i0_1 (east on ew1_0), left at i1_1 (north), end at i1_2.
    return routing.make_route(g, ["i0_1", "i1_1", "i1_2"], {"x": 2.5, "y": 25})


def test_the_target_point_is_the_next_route_point_beyond_7_5_m(route):
    """TransFuser's target point: the next intersection centre until 7.5 m before it, then the one after it; inside a
    turn it points down the road the turn leads into, also once the command is LANEFOLLOW again."""
    def target(pos, hint=0):
        return routing.target_point(route, routing.navigate(route, pos, hint))

    assert target(Vec2(2.5, 30)) == Vec2(0, 100)  # approaching the right turn at i0_1
    assert target(Vec2(2.5, 92)) == Vec2(0, 100)  # 8 m before its centre
    assert target(Vec2(2.5, 93)) == Vec2(100, 100)  # 7 m before: the far end of the road east
    after_turn = routing.navigate(route, Vec2(12, 97), 1)
    assert after_turn.command == LANEFOLLOW and routing.target_point(route, after_turn) == Vec2(100, 100)
    assert target(Vec2(101, 195), 2) == Vec2(100, 200)  # nothing beyond the end: the destination
    assert routing.TARGET_MIN_M == 7.5


def test_marks_manoeuvres_per_intersection(route):
    assert route.maneuvers == (LANEFOLLOW, RIGHT, LEFT, LANEFOLLOW)
    assert route.node_ids == (None, "i0_1", "i1_1", "i1_2")
    assert route.length_m == pytest.approx(math.hypot(2.5, 75) + 200)


def test_says_lanefollow_between_intersections_and_the_turn_within_40_m(route):
    far = routing.navigate(route, Vec2(2.5, 30))
    assert far.command == LANEFOLLOW and far.next_intersection_id == "i0_1"
    assert far.distance_to_next_m == pytest.approx(70, abs=0.5)
    assert far.next_turn.command == RIGHT

    near = routing.navigate(route, Vec2(2.5, 65))
    assert near.command == RIGHT and near.distance_to_next_m < 40

    # Just through the junction the right turn still holds, then it is lane following again.
    through = routing.navigate(route, Vec2(5, 100), near.segment)
    assert through.command == RIGHT and through.next_intersection_id == "i1_1"
    # Announced until NAV_EXIT_M (10 m) past the junction's centre, lane following after it.
    crossing = routing.navigate(route, Vec2(8, 97), through.segment)
    assert crossing.command == RIGHT
    assert routing.navigate(route, Vec2(12, 97), crossing.segment).command == LANEFOLLOW
    mid = routing.navigate(route, Vec2(50, 101), through.segment)
    assert mid.command == LANEFOLLOW and mid.distance_to_next_m == pytest.approx(50)
    assert mid.next_turn.command == LEFT and mid.next_turn.distance_m == pytest.approx(50, abs=1e-5)

    left = routing.navigate(route, Vec2(70, 101), mid.segment)
    assert left.command == LEFT

    last = routing.navigate(route, Vec2(101, 180), left.segment)
    assert last.command == LANEFOLLOW  # the destination is not a manoeuvre
    assert last.next_turn is None and last.remaining_m == pytest.approx(20, abs=0.5)
    done = routing.navigate(route, Vec2(100, 205), last.segment)
    assert done.finished and done.next_index is None and done.remaining_m == 0


def test_says_straight_when_crossing_an_intersection_without_turning(g):
    r = routing.make_route(g, ["i0_0", "i1_0", "i2_0"])
    assert r.maneuvers[1] == STRAIGHT
    assert routing.navigate(r, Vec2(20, -2)).command == LANEFOLLOW
    assert routing.navigate(r, Vec2(70, -2)).command == STRAIGHT
    assert routing.navigate(r, Vec2(105, -2), 0).command == STRAIGHT
    assert routing.navigate(r, Vec2(150, -2), 1).command == LANEFOLLOW
    assert routing.navigate(r, Vec2(150, -2), 1).next_turn is None
    assert routing.navigate(r, Vec2(70, -2), approach_m=20).command == LANEFOLLOW


def test_a_start_on_the_first_intersection_merges_with_it_and_unknown_nodes_fail(g):
    r = routing.make_route(g, ["i0_0", "i1_0"], Vec2(0, 0))
    assert r.node_ids == ("i0_0", "i1_0") and r.length_m == 100
    with pytest.raises(ValueError, match="unknown intersection"):
        routing.make_route(g, ["i0_0", "nowhere"])


def test_degenerate_routes_are_finished(g):
    single = routing.make_route(g, ["i1_1"])
    nav = routing.navigate(single, Vec2(103, 104))
    assert nav.finished and nav.command == LANEFOLLOW and nav.lateral_m == pytest.approx(5)
    assert routing.navigate(routing.make_route(g, []), Vec2(3, 4)).lateral_m == 0


def test_extends_a_route_and_re_derives_the_manoeuvre_at_the_old_end(g):
    r = routing.make_route(g, ["i0_0", "i1_0"])
    longer = routing.extend_route(g, r, ["i1_0", "i1_1"])
    assert longer.node_ids == ("i0_0", "i1_0", "i1_1") and longer.maneuvers[1] == LEFT
    with_start = routing.extend_route(g, routing.make_route(g, ["i1_0"], Vec2(50, -2)), ["i2_0"])
    assert with_start.node_ids == (None, "i1_0", "i2_0") and with_start.points[0] == Vec2(50, -2)


# ---- locating and planning ----


def test_finds_the_road_and_the_intersection_ahead():
    w = grid3x3()
    north = routing.locate_on_road(w, Vec2(2.5, 25), math.pi / 2)
    assert (north.road_id, north.ahead_node, north.behind_node) == ("ns0_0", "i0_1", "i0_0")
    assert north.along_m == pytest.approx(25) and north.lateral_m == pytest.approx(2.5)
    south = routing.locate_on_road(w, Vec2(2.5, 25), -math.pi / 2)
    assert (south.road_id, south.ahead_node) == ("ns0_0", "i0_0")
    assert routing.locate_on_road(w, Vec2(50, 50), 0) is None  # inside a block


def test_nearest_node():
    g = routing.build_road_graph(grid3x3())
    assert routing.nearest_node(g, Vec2(140, 160)) == "i1_2"
    assert routing.nearest_node(routing.RoadGraph(nodes={}, edges={}), Vec2(0, 0)) is None


def test_mulberry32_is_the_games_sequence():
    rng = routing.mulberry32(1)
    # The first values of the game's mulberry32(1) (node: [rng(), rng(), rng()]).
    assert [rng() for _ in range(3)] == [0.6270739405881613, 0.002735721180215478, 0.5274470399599522]
    a, b = routing.mulberry32(42), routing.mulberry32(42 + 2**32)  # seeds are taken mod 2^32, as seed >>> 0
    assert [a() for _ in range(5)] == [b() for _ in range(5)]
    assert all(0 <= v < 1 for v in (routing.mulberry32(-5)() for _ in range(3)))


def test_keeps_a_route_ahead_of_the_car_and_re_plans_when_it_leaves_it():
    planner = routing.RoutePlanner(grid3x3(), seed=7, min_leg_m=200)
    nav = planner.update(Vec2(2.5, 25), math.pi / 2)
    assert nav is not None
    assert planner.route.node_ids[1] == "i0_1" and planner.route.length_m > 200
    # Drive somewhere else entirely: the planner starts again from the road the car is on.
    planner.route = routing.make_route(planner.graph, ["i0_1", "i0_2"], Vec2(2.5, 25))
    away = planner.update(Vec2(197.5, 150), -math.pi / 2)
    assert away.lateral_m < 25 and planner.route.node_ids[1] == "i2_1"


def test_the_planner_extends_the_route_before_its_end_and_is_seeded():
    def drive(seed: int) -> list[tuple[str | None, ...]]:
        planner = routing.RoutePlanner(grid3x3(), seed=seed, min_leg_m=200, extend_below_m=160)
        seen = []
        planner.update(Vec2(2.5, 25), math.pi / 2)
        for _ in range(12):  # jump along the route to 10 m before its end, again and again
            r = planner.route
            target = r.length_m - 10
            k = max(i for i, c in enumerate(r.cumulative) if c <= target)
            a, b = r.points[k], r.points[min(k + 1, len(r.points) - 1)]
            f = (target - r.cumulative[k]) / max(r.cumulative[min(k + 1, len(r.points) - 1)] - r.cumulative[k], 1e-9)
            nav = planner.update(Vec2(a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f), 0.0)
            assert not nav.finished and nav.remaining_m >= 160 - 10
            seen.append(planner.route.node_ids)
        return seen

    assert drive(3) == drive(3)
    assert drive(3) != drive(4)


def test_road_option_names():
    assert [routing.road_option_name(o) for o in range(8)] == [
        "UNSPECIFIED", "LEFT", "RIGHT", "STRAIGHT", "LANEFOLLOW", "CHANGELANELEFT", "CHANGELANERIGHT", "UNSPECIFIED"]
