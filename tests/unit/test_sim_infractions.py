"""The route monitor on constructed drives: each Leaderboard infraction the simulator applies, exactly once, with
the right numbers; and the lanes it measures against."""

from __future__ import annotations

import math

import pytest

from scalediffusion import leaderboard
from scalediffusion.city.grid import GridSpec, manhattan_grid
from scalediffusion.sim.infractions import RouteMonitor
from scalediffusion.sim.lanes import LaneMap

DT = 0.05


@pytest.fixture(scope="module")
def lanes():
    return LaneMap(manhattan_grid(GridSpec(npc_vehicles=0, pedestrians=0)))


def path_of(lanes, nodes):
    return lanes.path(lanes.route_segments(list(nodes)))


def drive(monitor, path, speed=8.0, lateral=0.0, t0=0.0, until_s=None, collision_at=None, traffic=()):
    """Drives along the path at constant speed and lateral offset (left positive) until the route ends."""
    t, s = t0, 0.0
    end = path.line.length if until_s is None else until_s
    while not monitor.ended and s <= end + 2:
        x, y, heading = path.line.point_at(s)
        x, y = x - math.sin(heading) * lateral, y + math.cos(heading) * lateral
        collision = collision_at(t, s) if collision_at else None
        t += DT
        monitor.observe(t, DT, x, y, speed, collision, list(traffic))
        s += speed * DT
    return t


def always(color):
    return lambda intersection, axis, t: color


def test_lanes_follow_right_hand_traffic(lanes):
    seg = lanes.segment("ave1_1", "i1_1", 1)  # northbound, outer lane of two
    assert seg.start[0] == pytest.approx(280 + 1.5 * 21 / 4) and seg.heading == pytest.approx(math.pi / 2)
    back = lanes.segment("ave1_1", "i1_2", 0)  # southbound, inner lane: west of the centre line
    assert back.start[0] == pytest.approx(280 - 0.5 * 21 / 4)
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3", "i2_3"))
    assert [s.intersection_id for s in path.stop_lines] == ["i1_2", "i1_3", "i2_3"]
    x, y, heading = path.line.point_at(path.line.length)
    assert heading == pytest.approx(0.0) and y < 240  # ends eastbound in the lane south of the street's centre
    s, lateral = path.line.project(300.0, 100.0)
    assert lateral < 0  # east of a northbound path is to its right


def test_a_clean_drive_on_green_is_perfect(lanes):
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3"))
    monitor = RouteMonitor("r", path, always("green"))
    t = drive(monitor, path)
    run = monitor.finish(t)
    assert run.status == "Perfect" and run.infractions == () and run.completion_percent == pytest.approx(100.0)
    assert leaderboard.score_route(run).driving_score == pytest.approx(100.0)


def test_red_lights_count_once_per_crossing(lanes):
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3", "i1_4"))  # lights at i1_2 and i1_3, a stop sign at i1_4 (the end)
    monitor = RouteMonitor("r", path, lambda i, axis, t: "red" if i == "i1_2" else "green")
    run = monitor.finish(drive(monitor, path))
    assert [e.kind for e in run.infractions] == ["red_light"]
    assert leaderboard.score_route(run).infraction_penalty == pytest.approx(0.7)


def test_stop_signs_need_a_stop_before_the_line(lanes):
    nodes = ("i1_3", "i1_4", "i1_5")  # i1_4 has a stop sign
    path = path_of(lanes, nodes)
    stop_s = path.stop_lines[0].s
    rolled = RouteMonitor("r", path, always("green"))
    run = rolled.finish(drive(rolled, path))
    assert [e.kind for e in run.infractions] == ["stop_infraction"]
    assert leaderboard.score_route(run).infraction_penalty == pytest.approx(0.8)

    stopped = RouteMonitor("r", path, always("green"))
    t, s = 0.0, 0.0
    while not stopped.ended:
        front = s + 2.3
        speed = 0.0 if stop_s - 3.0 <= front <= stop_s - 2.5 and t < 40 else 8.0
        x, y, _ = path.line.point_at(s)
        t += DT
        stopped.observe(t, DT, x, y, speed, None, [])
        s += max(speed, 0.0) * DT if speed else (0.0 if t < 20 else 0.5)
        if speed == 0.0 and t >= 20:
            s += 1.0  # then drives on
    assert [e.kind for e in stopped.finish(t).infractions] == []


def test_collisions_with_one_object_count_once_while_in_contact(lanes):
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3"))
    monitor = RouteMonitor("r", path, always("green"))

    def contact(t, s):
        if 20 <= s < 40:
            return ("parked", "p1")
        if 100 <= s < 104:
            return ("pedestrian", "ped3")
        return None

    run = monitor.finish(drive(monitor, path, collision_at=contact))
    kinds = [e.kind for e in run.infractions]
    assert kinds == ["collisions_vehicle", "collisions_pedestrian"]
    assert leaderboard.score_route(run).infraction_penalty == pytest.approx(0.6 * 0.5)


def test_leaving_the_route_ends_it(lanes):
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3", "i2_3"))
    monitor = RouteMonitor("r", path, always("green"))
    t, x, y = 0.0, *path.line.point_at(0.0)[:2]
    while not monitor.ended and t < 60:  # straight north, never taking the right turn at i1_3
        t += DT
        y += 8.0 * DT
        monitor.observe(t, DT, x, y, 8.0, None, [])
    run = monitor.finish(t)
    assert run.status == "Failed - Agent deviated from the route"
    # Past the junction the ego is on another road, outside the route's lanes (as upstream counts it) until 30 m.
    assert [e.kind for e in run.infractions] == ["route_dev", "outside_route_lanes"]
    assert run.infractions[1].distance_m < 31
    score = leaderboard.score_route(run)
    assert score.infraction_penalty == pytest.approx(1 - run.infractions[1].percent / 100)  # route_dev has no factor
    assert 0 < score.route_completion < 60


def test_standing_still_is_blocked_after_180_s_with_no_completion(lanes):
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3", "i1_4", "i1_5", "i1_6"))  # long enough not to time out first
    monitor = RouteMonitor("r", path, always("green"))
    x, y, _ = path.line.point_at(0.0)
    t = 0.0
    while not monitor.ended:
        t += DT
        monitor.observe(t, DT, x, y, 0.0, None, [])
    run = monitor.finish(t)
    assert run.status == "Failed - Agent got blocked" and t == pytest.approx(180.0, abs=0.1)
    assert leaderboard.score_route(run).driving_score == pytest.approx(0.0)


def test_driving_in_the_oncoming_lane_is_outside_route_lanes(lanes):
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3"))  # northbound outer lane; lanes are 5.25 m wide
    monitor = RouteMonitor("r", path, always("green"))
    run = monitor.finish(drive(monitor, path, lateral=2.5 * 5.25))  # two and a half lanes left: across the centre line
    outside = [e for e in run.infractions if e.kind == "outside_route_lanes"]
    assert len(outside) == 1
    # Everything but the junction box at i1_2 (21 m) is outside: (139 - 21) / 139 of the route.
    assert outside[0].percent == pytest.approx(100 * (path.line.length - 21.0) / path.line.length, abs=1.5)
    lane_change = RouteMonitor("r", path, always("green"))
    assert lane_change.finish(drive(lane_change, path, lateral=5.25)).infractions == ()  # the inner lane, same way


def test_min_speed_compares_with_surrounding_traffic(lanes):
    path = path_of(lanes, ("i1_1", "i1_2", "i1_3", "i1_4"))
    monitor = RouteMonitor("r", path, always("green"))
    run = monitor.finish(drive(monitor, path, speed=5.0, traffic=[(280.0, 120.0, 10.0)]))  # traffic nearby at 10 m/s
    slow = [e for e in run.infractions if e.kind == "min_speed_infractions"]
    assert 1 <= len(slow) <= 4 and all(e.percent == pytest.approx(50.0) for e in slow)
    assert leaderboard.score_route(run).infraction_penalty == pytest.approx((1 - 0.3 * 0.5) ** len(slow))
