"""The CARLA leaderboard agent on synthetic sensor input, with the real `carla` client package (no server needed)."""

from __future__ import annotations

import json
import math

import carla
import numpy as np
import pytest
import torch

from services.trainer import carla_agent
from services.trainer.model import build_model, preset
from services.trainer.onnx_export import export_onnx

LAT0, LON0 = 0.001, 0.002
M_PER_DEG = carla_agent.EARTH_RADIUS_M * math.pi / 180


def gps(east_m: float, north_m: float) -> dict:
    lat = LAT0 + north_m / M_PER_DEG
    return {"lat": lat, "lon": LON0 + east_m / (M_PER_DEG * math.cos(math.radians(LAT0))), "z": 0.0}


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    torch.manual_seed(0)
    return export_onnx(build_model(preset("cilrs-resnet18-tiny")).eval(), tmp_path_factory.mktemp("m") / "model.onnx")


@pytest.fixture
def agent(policy_file):
    a = carla_agent.CilrsAgent("127.0.0.1", 2000)
    a.setup(str(policy_file))
    plan = [(gps(0, 0), 4), (gps(20, 0), 4), (gps(30, 0), 1), (gps(30, 20), 4)]
    a.set_global_plan(plan, [(None, o) for _, o in plan])
    return a


def sensor_input(speed: float, east_m: float, north_m: float, width: int = 640, height: int = 360) -> dict:
    rng = np.random.default_rng(0)
    bgra = rng.integers(0, 255, size=(height, width, 4), dtype=np.uint8)
    p = gps(east_m, north_m)
    return {"rgb_front": (10, bgra), "speed": (10, {"speed": speed}), "gps": (10, np.array([p["lat"], p["lon"], 0.0]))}


def test_run_step_returns_a_valid_vehicle_control(agent):
    control = agent.run_step(sensor_input(4.0, 1.0, 0.0), timestamp=0.5)
    assert isinstance(control, carla.VehicleControl)
    assert -1.0 <= control.steer <= 1.0 and 0.0 <= control.throttle <= 1.0 and 0.0 <= control.brake <= 1.0
    assert not (control.throttle > 0 and control.brake > 0)


def test_sensors_are_a_leaderboard_sensor_suite_matching_the_game_camera(agent):
    sensors = {s["id"]: s for s in agent.sensors()}
    assert set(sensors) == {"rgb_front", "gps", "speed", "radar_front", "imu"}
    cam = sensors["rgb_front"]
    assert cam["type"] == "sensor.camera.rgb" and (cam["width"], cam["height"]) == (640, 360)
    # 60 degrees vertical on 16:9 is 91.5 degrees horizontal (CARLA's fov is horizontal).
    assert cam["fov"] == pytest.approx(91.49, abs=0.01)
    assert cam["z"] == pytest.approx(1.3) and cam["pitch"] < 0
    assert sensors["speed"]["type"] == "sensor.speedometer"


def test_the_command_follows_the_global_plan(agent):
    agent.run_step(sensor_input(4.0, 2.0, 0.0), 0.1)
    assert agent.last_command == 4  # heading for the lane-follow waypoint at 20 m
    agent.run_step(sensor_input(4.0, 19.0, 0.0), 0.2)
    assert agent.last_command == 1  # the next waypoint is where the left turn is
    agent.run_step(sensor_input(4.0, 30.0, 12.0), 0.3)
    assert agent.last_command == 4


def test_the_target_point_is_the_next_plan_waypoint_beyond_reach_in_the_ego_frame():
    route = carla_agent.RouteCommands([(gps(0, 0), 4), (gps(20, 0), 4), (gps(30, 0), 1), (gps(30, 20), 4)])
    east = math.pi / 2  # compass: 0 = north, clockwise
    lat, lon = gps(2, 0)["lat"], gps(2, 0)["lon"]
    route.command(lat, lon)
    assert route.target(lat, lon, east) == pytest.approx((18.0, 0.0), abs=1e-3)  # straight ahead
    lat, lon = gps(25, 0)["lat"], gps(25, 0)["lon"]
    route.command(lat, lon)  # (30, 0) is 5 m away, within reach: the target is the waypoint after the left turn
    assert route.target(lat, lon, east) == pytest.approx((5.0, -20.0), abs=1e-3)  # ahead and to the left
    assert route.target(lat, lon, 0.0) == pytest.approx((20.0, 5.0), abs=1e-3)  # facing north it is ahead, right


def test_a_target_point_policy_is_fed_the_plan_target(tmp_path):
    torch.manual_seed(0)
    path = export_onnx(build_model(preset("aim-resnet18-tiny-tp")).eval(), tmp_path / "tp.onnx")
    a = carla_agent.CilrsAgent("127.0.0.1", 2000)
    a.setup(str(path))
    plan = [(gps(0, 0), 4), (gps(20, 0), 4), (gps(30, 0), 1), (gps(30, 20), 4)]
    a.set_global_plan(plan, [(None, o) for _, o in plan])
    data = sensor_input(4.0, 2.0, 0.0) | {"imu": (10, np.array([0, 0, 9.8, 0, 0, 0, math.pi / 2]))}
    control = a.run_step(data, 0.1)
    assert a.last_target == pytest.approx((18.0, 0.0), abs=1e-3)
    assert isinstance(control, carla.VehicleControl)
    nan_compass = sensor_input(4.0, 3.0, 0.0) | {"imu": (10, np.array([0, 0, 9.8, 0, 0, 0, math.nan]))}
    a.run_step(nan_compass, 0.2)  # the first readings in CARLA can be NaN: the last good one is kept
    assert a.last_target == pytest.approx((17.0, 0.0), abs=1e-3)


def test_route_commands_skip_waypoints_the_ego_passed_without_touching():
    route = carla_agent.RouteCommands([(gps(0, 0), 4), (gps(10, 0), 2), (gps(20, 0), 3), (gps(40, 0), 4)])
    assert route.command(gps(25, 3)["lat"], gps(25, 3)["lon"]) == 4  # passed 10 m and 20 m at 3 m to the side
    with pytest.raises(ValueError, match="empty"):
        carla_agent.RouteCommands([])


def test_control_post_processing_brakes_only_when_braking_wins():
    assert carla_agent.control_from_policy(0.2, 0.6, 0.3).brake == 0.0
    c = carla_agent.control_from_policy(-3.0, 0.1, 0.9)
    assert (c.steer, c.throttle, c.brake) == (-1.0, 0.0, pytest.approx(0.9))


def test_an_agent_config_file_can_move_the_camera(tmp_path, policy_file):
    config = tmp_path / "agent.json"
    config.write_text(json.dumps({"model": str(policy_file), "camera": {"width": 256, "height": 256, "vertical_fov_deg": 90}}))
    a = carla_agent.CilrsAgent("127.0.0.1", 2000)
    a.setup(str(config))
    cam = a.sensors()[0]
    assert (cam["width"], cam["fov"]) == (256, pytest.approx(90.0))
    assert isinstance(a.run_step(sensor_input(0.0, 0, 0, 256, 256), 0.0), carla.VehicleControl)  # no plan: follows the lane


def test_the_camera_comes_from_the_policy_metadata(tmp_path):
    import json

    torch.manual_seed(0)
    camera = {"width": 320, "height": 180, "vertical_fov_deg": 50.0, "mode": "chase"}
    path = export_onnx(build_model(preset("aim-resnet18-tiny")).eval(), tmp_path / "wp.onnx", {"camera": json.dumps(camera)})
    a = carla_agent.CilrsAgent("127.0.0.1", 2000)
    a.setup(str(path))
    cam = {s["id"]: s for s in a.sensors()}["rgb_front"]
    assert (cam["width"], cam["height"]) == (320, 180)
    assert cam["fov"] == pytest.approx(2 * math.degrees(math.atan(math.tan(math.radians(25)) * 320 / 180)))
    assert cam["x"] == pytest.approx(-7.5) and cam["z"] == pytest.approx(3.0)  # the game's chase camera
    control = a.run_step(sensor_input(3.0, 0, 0, 320, 180), 0.0)  # a waypoint policy drives through its controller
    assert isinstance(control, carla.VehicleControl) and not (control.throttle > 0 and control.brake > 0)


def test_front_range_reads_the_nearest_radar_return_straight_ahead():
    points = np.array([[12.0, 0.0, 0.02, -1.0], [5.0, 0.0, 0.5, 0.0], [20.0, 0.01, -0.05, 0.0]], np.float32)
    assert carla_agent.front_range(points) == pytest.approx(12.0)  # the 5 m return is off to the side
    assert carla_agent.front_range(np.zeros((0, 4), np.float32)) == math.inf
