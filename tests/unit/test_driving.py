"""Waypoints -> controls (scalediffusion/driving.py), the front range sensor, and the evaluator showing a policy the
camera its metadata names."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from scalediffusion.city.grid import manhattan_grid
from scalediffusion.driving import CameraSpec, ControllerConfig, WaypointController
from scalediffusion.sim.autopilot import Control
from scalediffusion.sim.episode import Episode
from scalediffusion.sim.evaluate import OnnxDriver, build_report, camera_setup, evaluate_suite
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.suites import suite
from services.trainer.model import build_model, preset
from services.trainer.onnx_export import export_onnx

STOPPED = [(0.0, 0.0)] * 4  # a policy that wants to stand still


def test_straight_waypoints_give_straight_steering_and_throttle():
    c = WaypointController()
    out = c.step([(2.0, 0.0), (4.0, 0.0), (6.0, 0.0), (8.0, 0.0)], speed=2.0)
    assert out.desired_speed == pytest.approx(4.0) and out.throttle > 0 and out.brake == 0
    assert out.steer == pytest.approx(0.0, abs=1e-9)


def test_waypoints_to_the_right_steer_right_and_to_the_left_steer_left():
    right = WaypointController().step([(3.0, 1.0), (5.0, 3.0), (6.0, 5.0), (6.5, 7.0)], speed=4.0)
    left = WaypointController().step([(3.0, -1.0), (5.0, -3.0), (6.0, -5.0), (6.5, -7.0)], speed=4.0)
    assert right.steer > 0.1 and left.steer < -0.1  # y is to the right; positive steer turns right (CARLA)


def test_waypoints_that_stop_brake():
    out = WaypointController().step(STOPPED, speed=5.0)
    assert out.brake == 1.0 and out.throttle == 0.0


def test_stuck_creep_engages_only_when_nothing_is_ahead():
    config = ControllerConfig(stuck_after_s=2.0, creep_s=1.0, control_hz=20.0, creep_clearance_m=6.0)
    steps = round(config.stuck_after_s * config.control_hz)
    blocked = WaypointController(config)
    assert not any(blocked.step(STOPPED, 0.0, front_range_m=3.0).creeping for _ in range(10 * steps))
    clear = WaypointController(config)
    outs = [clear.step(STOPPED, 0.0, front_range_m=math.inf) for _ in range(steps)]
    assert not any(o.creeping for o in outs[:-1]) and outs[-1].creeping  # only after stuck_after_s standing still
    assert outs[-1].throttle > 0 and outs[-1].brake == 0
    # Something appears ahead while creeping: the creep stops at once.
    assert not clear.step(STOPPED, 0.5, front_range_m=2.0).creeping
    lazy, reads = WaypointController(config), []
    for _ in range(steps - 1):
        lazy.step(STOPPED, 0.0, front_range_m=lambda: reads.append(1) or math.inf)
    assert not reads  # the sensor is read only once the car has stood still long enough
    assert lazy.step(STOPPED, 0.0, front_range_m=lambda: reads.append(1) or math.inf).creeping and reads == [1]
    moving = WaypointController(config)
    assert not any(moving.step(STOPPED, 1.0, math.inf).creeping for _ in range(3 * steps))  # rolling is not stuck


GOING = [(2.0, 0.0), (4.0, 0.0), (6.0, 0.0), (8.0, 0.0)]  # a policy that wants 4 m/s straight on
RED, GREEN, YELLOWISH = [0.0, 0.0, 0.1, 0.9], [0.05, 0.9, 0.05, 0.0], [0.5, 0.1, 0.25, 0.15]


def test_a_light_head_that_sees_red_or_yellow_stops_the_car_and_green_lets_it_go():
    c = WaypointController()
    red = c.step(GOING, 6.0, light=RED)
    assert red.light_stop and red.brake == 1.0 and red.throttle == 0.0 and red.desired_speed == 0.0
    green = WaypointController().step(GOING, 2.0, light=GREEN)
    assert not green.light_stop and green.throttle > 0 and green.brake == 0.0
    assert not WaypointController().step(GOING, 2.0, light=YELLOWISH).light_stop  # 0.25 + 0.15 < 0.5
    assert WaypointController(ControllerConfig(light_stop_prob=0.4)).step(GOING, 2.0, light=YELLOWISH).light_stop
    assert not WaypointController(ControllerConfig(light_stop_prob=0.0)).step(GOING, 2.0, light=RED).light_stop  # off
    assert not WaypointController().step(GOING, 2.0).light_stop  # a policy without a light head


def test_a_light_stop_holds_a_standing_car_at_most_the_longest_red_then_lets_it_pass_the_junction():
    config = ControllerConfig(light_hold_max_s=3.0, light_release_m=10.0, stuck_after_s=100.0, control_hz=20.0)
    c = WaypointController(config)
    held = [c.step(GOING, 0.0, light=RED) for _ in range(round(3.0 * 20.0))]
    assert all(o.light_stop for o in held[:-1]) and not held[-1].light_stop  # released after 3 s standing
    driving = [c.step(GOING, 5.0, light=RED) for _ in range(round(2.0 * 20.0))]  # 10 m at 5 m/s, head ignored
    assert not any(o.light_stop for o in driving[:-1])
    assert c.step(GOING, 5.0, light=RED).light_stop  # past the release distance the head counts again
    moving = WaypointController(config)  # a car that is still rolling toward the line is not held, whatever the time
    assert all(moving.step(GOING, 3.0, light=RED).light_stop for _ in range(200))


def test_a_light_misread_as_red_holds_the_car_only_until_the_stuck_creep():
    config = ControllerConfig(stuck_after_s=2.0, creep_s=1.0, control_hz=20.0)
    c = WaypointController(config)
    outs = [c.step(GOING, 0.0, front_range_m=math.inf, light=RED) for _ in range(round(config.stuck_after_s * config.control_hz))]
    assert all(o.light_stop and o.brake == 1.0 for o in outs[:-1])
    assert outs[-1].creeping and outs[-1].throttle > 0 and not outs[-1].light_stop


class _RouteWaypoints:
    """Waypoints taken from the route itself at a fixed speed: the controller's ceiling without a model."""

    def __init__(self, speed: float = 6.0) -> None:
        self.controller, self.speed = WaypointController(), speed

    def __call__(self, obs) -> Control:
        ego, line = obs.ego, obs.episode.path.line
        c, s = math.cos(ego.theta), math.sin(ego.theta)
        wps = []
        for k in range(1, 5):
            x, y, _ = line.point_at(obs.route_s + k * 0.5 * self.speed)
            wps.append(((x - ego.x) * c + (y - ego.y) * s, (x - ego.x) * s - (y - ego.y) * c))
        out = self.controller.step(wps, obs.speed)
        return Control(out.steer, out.throttle, out.brake)


def test_the_controller_drives_a_route_on_waypoints_without_touching_anything():
    report = build_report(evaluate_suite(_RouteWaypoints, suite("smoke@1")), eval_id="t", model_run="wp", suite_key="smoke@1")
    route = report.routes[0]
    assert route.route_completion == pytest.approx(100.0)
    hits = {i.kind: i.count for i in route.infractions}
    assert not any(hits.get(k) for k in ("collisions_layout", "collisions_vehicle", "outside_route_lanes", "route_dev"))


def test_front_range_sees_a_building_ahead_and_nothing_on_an_open_road():
    world = manhattan_grid(suite("easy@1").world)
    lanes = LaneMap(world)
    episode = Episode(world, lanes, suite("easy@1").routes[0], suite("easy@1"), seed=1)
    assert episode.front_range() == math.inf or episode.front_range() > 10  # starts on a clear lane
    from dataclasses import replace

    # Turn the car towards the kerb side: the buildings along the street are close.
    episode.ego = replace(episode.ego, theta=episode.ego.theta - math.pi / 2)
    assert episode.front_range() < 25


def test_the_evaluator_renders_the_camera_in_the_policy_metadata(tmp_path):
    torch.manual_seed(0)
    camera = {"width": 160, "height": 90, "vertical_fov_deg": 45.0, "mode": "chase"}
    path = export_onnx(build_model(preset("aim-resnet18-tiny")).eval(), tmp_path / "m.onnx", {"camera": json.dumps(camera)})
    driver = OnnxDriver(path)
    assert driver.camera == CameraSpec.from_dict(camera)
    world = manhattan_grid(suite("smoke@1").world)
    renderer, config = camera_setup(driver, world)
    assert (config.camera_mode, config.fov_deg) == ("chase", 45.0)
    episode = Episode(world, LaneMap(world), suite("smoke@1").routes[0], suite("smoke@1"), 1, renderer=renderer, config=config)
    obs = episode.observe(front_range=True)
    assert obs.image.shape == (90, 160, 3) and obs.front_range_m() > 0
    control = driver(obs)
    assert -1 <= control.steer <= 1 and not (control.throttle > 0 and control.brake > 0)
    assert len(driver.driver.last_waypoints) == 4


def test_policies_without_camera_metadata_get_the_games_default_camera(tmp_path):
    path = export_onnx(build_model(preset("cilrs-resnet18-tiny")).eval(), tmp_path / "old.onnx")
    assert OnnxDriver(path).camera == CameraSpec(width=640, height=360, vertical_fov_deg=60.0, mode="dash")


def test_camera_spec_rejects_nonsense():
    with pytest.raises(ValueError, match="mode"):
        CameraSpec.from_dict({"mode": "drone"})
    with pytest.raises(ValueError, match="FOV"):
        CameraSpec.from_dict({"vertical_fov_deg": 0})
    spec = CameraSpec.from_dict({"width": 320, "height": 180, "resize": {"width": 128, "height": 128}})
    assert (spec.resize_width, spec.resize_height) == (128, 128)
    assert np.isclose(CameraSpec().horizontal_fov_deg, 91.49, atol=0.01)


def test_a_car_pressed_against_an_obstacle_backs_off_and_one_waiting_behind_it_does_not():
    config = ControllerConfig(unstick_after_s=1.0, reverse_s=0.5, control_hz=20.0)
    go = [(2.0, 0.0), (4.0, 0.0), (6.0, 0.0), (8.0, 0.0)]  # the policy wants to drive on
    pressed = WaypointController(config)
    outs = [pressed.step(go, 0.0, front_range_m=0.5) for _ in range(30)]
    reversing = [o.reverse for o in outs]
    assert not any(reversing[:19]) and all(reversing[19:29])  # after 1 s pressed: 0.5 s of reverse
    assert outs[19].throttle > 0 and outs[19].brake == 0 and not reversing[29]
    waiting = WaypointController(config)  # the policy itself stops behind the obstacle: nothing to undo
    assert not any(waiting.step(STOPPED, 0.0, front_range_m=0.5).reverse for _ in range(100))
    clear = WaypointController(config)  # wants to go, nothing ahead, picks up speed as a car does: just accelerates
    assert not any(clear.step(go, min(0.25 * k, 4.0), front_range_m=math.inf).reverse for k in range(100))
    # Grinding along a wall at an angle: straight ahead reads 2 m (no AEB, nothing "within blocked range"), the
    # throttle pushes and the car does not move: stuck all the same, it backs off.
    grinding = WaypointController(config)
    outs = [grinding.step(go, 0.05, front_range_m=2.0) for _ in range(30)]
    assert outs[0].throttle > 0 and not outs[0].reverse and any(o.reverse for o in outs)


def _arc_waypoints(radius: float, speed: float, right: bool = True, n: int = 4, step_s: float = 0.5):
    """Where a car on a circle of `radius` at `speed` will be every step_s, ego frame (x forward, y right)."""
    side = 1.0 if right else -1.0
    out = []
    for k in range(1, n + 1):
        phi = speed * step_s * k / radius
        out.append((radius * math.sin(phi), side * radius * (1 - math.cos(phi))))
    return out


@pytest.mark.parametrize("radius,speed", [(7.0, 4.0), (12.0, 6.0), (25.0, 8.0)])
def test_pursuit_steers_the_wheel_angle_that_the_predicted_arc_needs(radius, speed):
    from scalediffusion.sim.vehicle import DEFAULT_PARAMS, max_steer_angle

    needed = math.atan(DEFAULT_PARAMS.wheelbase_m / radius) / max_steer_angle(speed)  # the steer that drives the arc
    right = WaypointController().step(_arc_waypoints(radius, speed), speed)
    left = WaypointController().step(_arc_waypoints(radius, speed, right=False), speed)
    assert right.steer == pytest.approx(min(1.0, needed), rel=0.1) and left.steer == pytest.approx(-right.steer)
    # TransFuser's vehicle-agnostic PID asked for much less in a narrow-street turn (the cars ran wide).
    pid = WaypointController(ControllerConfig(lateral="pid")).step(_arc_waypoints(7.0, 4.0), 4.0)
    assert pid.steer < 0.6 * WaypointController().step(_arc_waypoints(7.0, 4.0), 4.0).steer


def test_pursuit_does_not_steer_a_car_that_wants_to_stand():
    jitter = [(0.1, 0.05), (0.2, 0.1), (0.3, 0.12), (0.4, 0.15)]  # a stop with noise: no direction to follow
    assert WaypointController().step(jitter, 0.0).steer == 0.0
    with pytest.raises(ValueError):
        ControllerConfig(lateral="stanley")


def test_backing_off_swings_the_nose_toward_the_routes_target_point():
    from scalediffusion.sim import vehicle as vm

    config = ControllerConfig(unstick_after_s=1.0, reverse_s=1.5, control_hz=20.0)
    go = [(2.0, 0.0), (4.0, 0.0), (6.0, 0.0), (8.0, 0.0)]
    for target, expect in (((200.0, 80.0), -1.0), ((200.0, -80.0), 1.0), ((200.0, 5.0), 0.0), (None, 0.0)):
        controller, state = WaypointController(config), vm.VehicleState(x=0.0, y=0.0, theta=0.0, speed=0.0)
        steers = []
        for _ in range(60):
            out = controller.step(go, state.speed, front_range_m=0.5, target=target)
            if out.reverse:
                steers.append(out.steer)
                state = vm.step(state, vm.DriveInput(out.steer, out.throttle, out.brake, reverse=True), 0.05)
        assert steers and all(s == expect for s in steers), (target, steers[:3])
        if expect:  # the nose turned toward the target: city theta grows to the left, the ego's y is to the right
            assert -math.copysign(1.0, target[1]) * state.theta > math.radians(5)


def test_the_emergency_brake_overrides_a_policy_closing_on_an_obstacle_and_only_then():
    config = ControllerConfig(aeb_time_s=1.0, aeb_gap_m=1.5, control_hz=20.0)
    go = [(3.0, 0.0), (6.0, 0.0), (9.0, 0.0), (12.0, 0.0)]  # the policy wants 6 m/s
    # At 6 m/s the brake acts under 1.5 + 6 * 1.0 = 7.5 m ahead, not beyond; without a sensor never.
    assert WaypointController(config).step(go, 6.0, front_range_m=7.0).emergency_brake
    out = WaypointController(config).step(go, 6.0, front_range_m=7.0)
    assert out.brake == 1.0 and out.throttle == 0.0
    assert not WaypointController(config).step(go, 6.0, front_range_m=8.0).emergency_brake
    assert not WaypointController(config).step(go, 6.0, front_range_m=math.inf).emergency_brake
    assert not WaypointController(config).step(go, 6.0).emergency_brake
    off = WaypointController(ControllerConfig(aeb_time_s=0.0))
    assert off.step(go, 4.0, front_range_m=2.0).throttle > 0  # turned off: the policy's own control
    # Standing 2 m behind a stopped car: the policy may roll up to the gap, not into it.
    assert not WaypointController(config).step(go, 0.0, front_range_m=2.0).emergency_brake
    assert WaypointController(config).step(go, 0.0, front_range_m=1.2).emergency_brake
    # Held by the brake in front of something it wants to pass: after unstick_after_s it backs off.
    held = WaypointController(replace_config(config, unstick_after_s=1.0, reverse_s=0.5))
    outs = [held.step(go, 0.0, front_range_m=1.6) for _ in range(25)]
    assert any(o.reverse for o in outs) and not outs[0].reverse


def replace_config(config: ControllerConfig, **changes) -> ControllerConfig:
    from dataclasses import replace

    return replace(config, **changes)


def test_evaluator_controller_overrides_are_applied_and_unknown_ones_refused(tmp_path):
    path = export_onnx(build_model(preset("aim-resnet18-tiny")).eval(), tmp_path / "wp.onnx", metadata={"camera": json.dumps(CameraSpec(width=160, height=90).to_dict()),
                                       "controller": json.dumps(ControllerConfig(aeb_time_s=0.0).to_dict())})
    assert OnnxDriver(path).driver.controller_config.aeb_time_s == 0.0
    driver = OnnxDriver(path, {"aeb_time_s": 1.25})
    assert driver.driver.controller_config.aeb_time_s == 1.25 and driver.driver.controller_config.control_hz == 20.0
    with pytest.raises(ValueError, match="unknown controller settings"):
        OnnxDriver(path, {"aeb": 1.0})
