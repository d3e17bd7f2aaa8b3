"""The simulator's vehicle model (scalediffusion/sim/vehicle.py, a port of the game's src/sim/vehicle.ts): the cases
of the game's vehicle.test.ts, and the golden fixture the game's src/sim/golden.test.ts replays being current."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import replace
from pathlib import Path

import pytest

from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.geometry_core import Vec2, js_hypot
from scalediffusion.v1 import world_pb2
from tests.unit.sim_grid3x3 import grid3x3

REPO = Path(__file__).resolve().parents[2]
DT = 1 / 60
FULL = vm.DriveInput(steer=0, throttle=1, brake=0)
P = vm.DEFAULT_PARAMS


def at(x: float, y: float, theta: float = 0.0, speed: float = 0.0) -> vm.VehicleState:
    return vm.VehicleState(x=x, y=y, theta=theta, speed=speed)


def run(s: vm.VehicleState, drive: vm.DriveInput, seconds: float) -> vm.VehicleState:
    for _ in range(round(seconds / DT)):
        s = vm.step(s, drive, DT)
    return s


# ---- longitudinal dynamics ----


def test_accelerates_in_a_straight_line_within_the_acceleration_limit():
    s = at(0, 0)
    prev = s.speed
    for _ in range(60 * 5):
        s = vm.step(s, FULL, DT)
        a = (s.speed - prev) / DT
        assert 0 < a <= P.max_accel + 1e-9
        prev = s.speed
    assert s.y == 0 and s.theta == 0
    assert 12 < s.speed < 17.5  # ~3.3 m/s^2 net at first
    assert s.x > 25


def test_tops_out_below_the_speed_limit_and_falls_off_with_power_at_speed():
    s = run(at(0, 0), FULL, 120)
    assert 25 < s.speed <= P.max_speed
    slow = vm.step(at(0, 0, 0, 5), FULL, DT).speed - 5
    fast = vm.step(at(0, 0, 0, 30), FULL, DT).speed - 30
    assert fast < slow


def test_brakes_to_a_stop_and_never_rolls_backwards_without_reverse():
    brake = vm.DriveInput(steer=0, throttle=0, brake=1)
    s, t = at(0, 0, 0, 20), 0.0
    while s.speed > 0 and t < 10:
        s = vm.step(s, brake, DT)
        t += DT
    assert s.speed == 0
    assert 2 < t < 2.7 and 20 < s.x < 27  # 20 m/s at ~8 m/s^2 (+ drag): about 2.5 s, about 25 m
    assert run(s, brake, 2).speed == 0
    assert run(at(0, 0, 0, 1), vm.DriveInput(steer=0, throttle=0, brake=0), 20).speed == 0  # coasting stops at 0


def test_reverses_only_with_reverse_gear_up_to_the_reverse_limit():
    back_gear = vm.DriveInput(steer=0, throttle=1, brake=0, reverse=True)
    back = run(at(0, 0), back_gear, 10)
    assert -P.max_reverse_speed <= back.speed < 0 and back.x < 0
    # Reverse gear while rolling forward slows the car, stops it for a step, then backs up.
    s, speeds = at(0, 0, 0, 3), []
    for _ in range(300):
        s = vm.step(s, back_gear, DT)
        speeds.append(s.speed)
    assert 0 in speeds and s.speed < 0
    assert all(v > 0 for v in speeds[: speeds.index(0)])


def test_a_step_without_time_changes_nothing():
    s = at(1, 2, 0.3, 4)
    assert vm.step(s, FULL, 0) == s and vm.step(s, FULL, -1) == s


def test_inputs_are_clamped_and_non_finite_ones_count_as_zero():
    s = at(0, 0, 0, 10)
    assert vm.step(s, vm.DriveInput(steer=5, throttle=9, brake=-3), DT) == vm.step(s, vm.DriveInput(steer=1, throttle=1, brake=0), DT)
    assert vm.step(s, vm.DriveInput(steer=math.nan, throttle=math.inf, brake=0), DT) == vm.step(s, vm.DriveInput(steer=0, throttle=0, brake=0), DT)


def test_normalise_angle_uses_the_sign_of_the_dividend_like_javascript():
    assert vm.normalise_angle(0.5) == 0.5
    assert vm.normalise_angle(math.pi) == math.pi
    assert vm.normalise_angle(-math.pi) == pytest.approx(math.pi)
    assert vm.normalise_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert vm.normalise_angle(-7.0) == pytest.approx(-7.0 + 2 * math.pi)
    assert math.isnan(vm.normalise_angle(math.inf))


# ---- steering ----


def test_right_steer_turns_clockwise_left_counter_clockwise():
    right = run(at(0, 0, 0, 5), vm.DriveInput(steer=1, throttle=0.3, brake=0), 1)
    assert right.theta < 0 and right.y < 0
    left = run(at(0, 0, 0, 5), vm.DriveInput(steer=-1, throttle=0.3, brake=0), 1)
    assert left.theta > 0 and left.y > 0
    assert left.theta == pytest.approx(-right.theta, abs=1e-9)


def test_limits_the_steering_angle_more_at_speed():
    assert vm.max_steer_angle(0) == pytest.approx(P.max_steer_rad)
    assert vm.max_steer_angle(3) == pytest.approx(P.max_steer_rad)
    assert vm.max_steer_angle(10) < vm.max_steer_angle(5)
    assert vm.max_steer_angle(30) < vm.max_steer_angle(10)
    for v in (8, 15, 25, 35):  # lateral acceleration at full lock stays at the limit above the full-lock speed
        assert v * v * math.tan(vm.max_steer_angle(v)) / P.wheelbase_m == pytest.approx(P.max_lateral_accel, abs=1e-6)

    def yaw(v: float) -> float:
        return abs(vm.step(at(0, 0, 0, v), vm.DriveInput(steer=1, throttle=0, brake=0), DT).theta) / DT

    assert yaw(30) < yaw(8)


def test_does_not_turn_when_standing_still_and_is_deterministic():
    assert vm.step(at(1, 2, 0.5), vm.DriveInput(steer=1, throttle=0, brake=0), DT) == at(1, 2, 0.5)
    drive = vm.DriveInput(steer=0.37, throttle=0.8, brake=0)
    assert run(at(0, 0), drive, 3) == run(at(0, 0), drive, 3)


def test_drive_accel_is_throttle_limited_by_power():
    assert vm.drive_accel(0, FULL) == P.max_accel
    assert vm.drive_accel(30, FULL) == pytest.approx(P.power_per_mass / 30)
    assert vm.drive_accel(30, vm.DriveInput(steer=0, throttle=0.5, brake=0, reverse=True)) == -0.5 * P.reverse_accel


# ---- collisions ----


def test_geometry_helpers():
    square = vm.oriented_box(0, 0, 0, 2, 2)
    assert vm.point_in_polygon(Vec2(0.5, 0.5), square)
    assert not vm.point_in_polygon(Vec2(1.5, 0), square)
    assert vm.convex_overlap(square, vm.oriented_box(1.9, 0, math.pi / 4, 2, 2))
    assert not vm.convex_overlap(square, vm.oriented_box(3, 0, 0, 2, 2))
    # Corners counter-clockwise, front right first.
    assert vm.car_corners(at(0, 0)) == [Vec2(2.3, -0.95), Vec2(2.3, 0.95), Vec2(-2.3, 0.95), Vec2(-2.3, -0.95)]


def test_is_clear_on_the_road_and_hits_buildings_parked_cars_and_the_world_edge():
    world = grid3x3()
    assert vm.collides(at(2.5, 25, math.pi / 2), world) is None
    assert vm.collides(at(10.5, 50, 0), world) == vm.Collision("building", "b0_0")  # b0_0 spans [9, 91]
    assert vm.collides(at(52, -3, 0), world) == vm.Collision("parked", "parked-0")  # parked at (50, -3.8)
    assert vm.collides(at(52, 3, 0), world) is None
    assert vm.collides(at(-49.5, 0, 0), world) == vm.Collision("bounds", "world")


def test_catches_a_building_corner_inside_the_car_even_when_no_car_corner_is_inside():
    w = world_pb2.World(buildings=[world_pb2.Building(id="spike", height_m=10, footprint=[
        world_pb2.Point2(x=0, y=0), world_pb2.Point2(x=10, y=-0.2), world_pb2.Point2(x=10, y=0.2)])])
    assert vm.collides(at(-1, 0, 0), w) == vm.Collision("building", "spike")


def test_a_world_without_bounds_has_no_edge_and_parked_sizes_default():
    w = world_pb2.World(parked=[world_pb2.ParkedVehicle(position=world_pb2.Point2(x=0, y=0))])
    w.max.x, w.max.y = 10, 10  # min unset: no bounds, as in the game
    cw = vm.collision_world(w)
    assert cw.bounds is None
    assert vm.collides(at(500, 500), cw) is None
    assert vm.collides(at(4.5, 0), cw) == vm.Collision("parked", "parked-0")  # 4.6 m default: reaches x = 2.3
    assert vm.collides(at(4.7, 0), cw) is None
    assert vm.collision_world(w) is cw  # the last world's grid is reused


def test_stops_the_car_and_keeps_it_out_of_the_obstacle():
    world = vm.collision_world(grid3x3())
    s, hits = at(2.5, 40, 0, 0), 0
    for _ in range(60 * 6):
        r = vm.step_with_collisions(s, FULL, DT, world)
        hits += r.collision is not None
        s = r.state
        assert vm.collides(s, world) is None
    assert hits > 0 and s.speed == 0
    assert 8.5 < s.x + P.length_m / 2 <= 9  # drove east until its nose reached the building line at x = 9


# ---- collisions with moving actors ----


def pose(**over) -> vm.ActorPose:
    base = {"id": "a", "kind": world_pb2.ACTOR_KIND_VEHICLE, "x": 0.0, "y": 0.0, "heading": 0.0, "length_m": 4.5, "width_m": 1.9}
    return vm.ActorPose(**{**base, **over})


CAR = vm.VehicleState(x=0, y=0, theta=0, speed=10)


def test_circle_overlaps_convex():
    box = vm.oriented_box(0, 0, 0, 4, 2)
    assert vm.circle_overlaps_convex(0, 0, 0.1, box)
    assert vm.circle_overlaps_convex(2.2, 0, 0.25, box)
    assert not vm.circle_overlaps_convex(2.3, 1.3, 0.25, box)  # near the corner, but beyond it diagonally
    assert not vm.circle_overlaps_convex(0, 1.4, 0.25, box)


def test_detects_an_npc_vehicle_by_oriented_box_overlap():
    assert vm.actor_collision(CAR, [pose(x=4.4)]) == vm.Collision("actor", "a")
    assert vm.actor_collision(CAR, [pose(x=4.7)]) is None
    assert vm.actor_collision(CAR, [pose(x=3.1, heading=math.pi / 2)]) is not None  # crossing just ahead
    assert vm.actor_collision(CAR, [pose(x=3.3, heading=math.pi / 2)]) is None
    assert vm.actor_collision(CAR, [pose(x=0, y=2.0)]) is None  # alongside in the next lane
    assert vm.actor_collision(CAR, []) is None


def test_detects_a_pedestrian_as_a_circle_of_its_width():
    def ped(x: float, y: float) -> vm.ActorPose:
        return pose(id="p", kind=world_pb2.ACTOR_KIND_PEDESTRIAN, x=x, y=y, length_m=0.5, width_m=0.5)

    assert vm.actor_collision(CAR, [ped(2.4, 0)]) == vm.Collision("actor", "p")
    assert vm.actor_collision(CAR, [ped(2.6, 0)]) is None
    assert vm.actor_collision(CAR, [ped(0, 1.1)]) is not None
    assert vm.actor_collision(CAR, [ped(0, 1.3)]) is None


def test_actors_stop_the_car_like_a_building_and_a_car_already_hit_may_drive_out():
    w = world_pb2.World()
    r = vm.step_with_collisions(CAR, FULL, DT, w, P, [pose(x=4.6 + 0.05)])
    assert r.collision == vm.Collision("actor", "a")
    assert r.state == replace(CAR, speed=0.0)
    clear = vm.step_with_collisions(CAR, FULL, DT, w, P, [pose(x=20)])
    assert clear.collision is None and clear.state.x > 0
    stuck = vm.step_with_collisions(CAR, vm.DriveInput(steer=0, throttle=0, brake=0, reverse=True), DT, w, P, [pose(x=4)])
    assert stuck.state != replace(CAR, speed=0.0)


def test_uses_actor_poses_at_a_drive_time():
    world = world_pb2.World(actors=[world_pb2.ActorTrack(
        id="npc", kind=world_pb2.ACTOR_KIND_VEHICLE, period_s=20, length_m=4.5, width_m=1.9, keyframes=[
            world_pb2.Keyframe(t_s=0, position=world_pb2.Point2(x=50, y=0), heading=math.pi),
            world_pb2.Keyframe(t_s=10, position=world_pb2.Point2(x=-50, y=0), heading=math.pi)])])
    still = vm.VehicleState(x=0, y=0, theta=0, speed=0)
    assert vm.actor_collision(still, vm.actor_poses(world, 0)) is None
    assert vm.actor_collision(still, vm.actor_poses(world, 5)) == vm.Collision("actor", "npc")


def test_actor_poses_fill_in_default_sizes_and_skip_tracks_without_keyframes():
    world = world_pb2.World(actors=[
        world_pb2.ActorTrack(id="empty", kind=world_pb2.ACTOR_KIND_VEHICLE),
        world_pb2.ActorTrack(id="ped", kind=world_pb2.ACTOR_KIND_PEDESTRIAN, keyframes=[world_pb2.Keyframe(position=world_pb2.Point2(x=1, y=2))]),
        world_pb2.ActorTrack(id="car", kind=world_pb2.ACTOR_KIND_VEHICLE, keyframes=[world_pb2.Keyframe(heading=1.0)]),
    ])
    assert vm.actor_poses(world, 3.0) == [
        vm.ActorPose(id="ped", kind=world_pb2.ACTOR_KIND_PEDESTRIAN, x=1, y=2, heading=0, length_m=0.5, width_m=0.5),
        vm.ActorPose(id="car", kind=world_pb2.ACTOR_KIND_VEHICLE, x=0, y=0, heading=1.0, length_m=4.6, width_m=1.9),
    ]


# ---- equality with the game ----


def test_js_hypot_is_math_hypot_up_to_rounding_and_exact_on_easy_cases():
    assert js_hypot(3, 4) == 5 and js_hypot(0, 0) == 0 and js_hypot(-2.5, 0) == 2.5
    assert js_hypot(math.inf, math.nan) == math.inf and math.isnan(js_hypot(1, math.nan))
    for x, y in ((1e-300, 3e-300), (123.456, -0.001), (1e300, 1e300), (0.1, 0.2)):
        assert js_hypot(x, y) == pytest.approx(math.hypot(x, y), rel=1e-15)


def _generator():
    spec = importlib.util.spec_from_file_location("gen_sim_golden", REPO / "tools" / "gen_sim_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_fixture_for_the_game_is_current():
    """clients/web/src/sim/golden.test.ts replays sim_golden.json against the game's vehicle.ts and routing.ts; it
    must be exactly what this port generates today (regenerate with `python tools/gen_sim_golden.py`)."""
    gen = _generator()
    committed = gen.OUT.read_text()
    assert gen.golden() == committed, "sim_golden.json is stale: run python tools/gen_sim_golden.py"
