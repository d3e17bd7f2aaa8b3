"""Driving targets on hand-built 60 Hz telemetry of known drives: future waypoints in the ego frame (x forward,
y right), how many of them are real, the target speed and the expert's action."""

import json
import math

import pytest

from scalediffusion.v1 import telemetry_pb2
from services.processor import targets
from services.processor.align import TickTimeline, align_frames
from services.processor.targets import TargetSettings

HZ = 60.0


def drive(seconds: float, pose, speed=lambda t_s: 10.0) -> telemetry_pb2.Telemetry:
    """Ticks at 60 Hz from t = 0; pose(t_s) -> (x, y, theta) in the world frame (theta counter-clockwise from +x)."""
    tel = telemetry_pb2.Telemetry(schema_version=1, video_fps=30)
    for i in range(int(seconds * HZ) + 1):
        t_s = i / HZ
        tick = tel.ticks.add(t_ms=i * 1000.0 / HZ)
        tick.vehicle.x, tick.vehicle.y, tick.vehicle.theta = pose(t_s)
        tick.vehicle.speed = speed(t_s)
    return tel


def east(t_s: float) -> tuple[float, float, float]:
    return 10.0 * t_s, 0.0, 0.0


R = 20.0  # m
V = 10.0  # m/s


def right_turn(t_s: float) -> tuple[float, float, float]:
    """Starts at the origin heading north and turns right (clockwise) at V on a circle of radius R around (R, 0)."""
    phi = V * t_s / R
    return R - R * math.cos(phi), R * math.sin(phi), math.pi / 2 - phi


def entries(tel: telemetry_pb2.Telemetry, display_ms: list[float], settings: TargetSettings = TargetSettings()) -> list[dict]:
    """measurements.json entries for frames shown at these telemetry times (no RTT: render time = display time)."""
    aligned = align_frames(display_ms, tel, nominal_frame_ms=100.0)
    return targets.measurements(list(range(len(aligned))), aligned, TickTimeline(tel), settings)


def test_driving_straight_east_gives_waypoints_straight_ahead():
    (m,) = entries(drive(4.0, east), [1000.0])
    assert m["waypoints"] == [[5.0, 0.0], [10.0, 0.0], [15.0, 0.0], [20.0, 0.0]]
    assert m["waypoints_valid"] == 4
    assert m["target_speed"] == 10.0
    assert "expert" not in m, "human sessions have no expert action"
    assert (m["x"], m["y"], m["frame"]) == (10.0, 0.0, 0), "the alignment's fields are kept"


def test_a_right_turn_puts_the_waypoints_to_the_right():
    tel = drive(4.0, right_turn)
    for r_ms in (0.0, 1000.0):  # heading north (theta = pi/2), then part-way round the turn
        (m,) = entries(tel, [r_ms])
        # On a circle turning right, the point a further arc angle phi along is R sin(phi) ahead, R (1 - cos(phi))
        # to the right, wherever the car is on it.
        expected = [(R * math.sin(V * 0.5 * k / R), R * (1 - math.cos(V * 0.5 * k / R))) for k in range(1, 5)]
        assert [tuple(p) for p in m["waypoints"]] == [pytest.approx(p, abs=1e-3) for p in expected]
        assert all(y > 0 for _, y in m["waypoints"]), "right is positive y"
    (north,) = entries(tel, [0.0])
    assert north["theta"] == pytest.approx(math.pi / 2)


def test_a_left_turn_puts_the_waypoints_to_the_left():
    def left_turn(t_s: float) -> tuple[float, float, float]:  # the mirror image of right_turn
        x, y, theta = right_turn(t_s)
        return -x, y, math.pi - theta

    (m,) = entries(drive(4.0, left_turn), [0.0])
    assert all(y < 0 for _, y in m["waypoints"]) and all(x > 0 for x, _ in m["waypoints"])


def test_waypoints_past_the_end_of_the_telemetry_are_invalid_but_still_written():
    tel = drive(4.0, east)  # last tick at 4000 ms
    near_end, at_end = entries(tel, [3000.0, 3800.0])
    assert near_end["waypoints_valid"] == 2  # 3500 and 4000 ms exist; 4500 and 5000 do not
    # Invalid points continue at constant velocity from the last valid one: same shape, plausible values.
    assert near_end["waypoints"] == [[5.0, 0.0], [10.0, 0.0], [15.0, 0.0], [20.0, 0.0]]
    assert at_end["waypoints_valid"] == 0
    assert at_end["waypoints"] == [[5.0, 0.0], [10.0, 0.0], [15.0, 0.0], [20.0, 0.0]], "extrapolated from the pose"


def test_a_reset_or_a_pause_ends_the_valid_waypoints():
    tel = drive(4.0, east)
    for tick in tel.ticks:
        if tick.t_ms >= 2000.0:
            tick.vehicle.x += 500.0  # teleported at 2000 ms
    next(t for t in tel.ticks if t.t_ms >= 2000.0).reset = True
    before, after = entries(tel, [1000.0, 2000.0])
    assert before["waypoints_valid"] == 1, "the waypoint at 2000 ms is on the reset tick"
    assert before["waypoints"] == [[5.0, 0.0], [10.0, 0.0], [15.0, 0.0], [20.0, 0.0]], "never across the teleport"
    assert after["waypoints_valid"] == 4, "a frame at the reset looks ahead from there"

    tel = drive(4.0, east)
    for tick in tel.ticks:
        tick.paused = 2200.0 <= tick.t_ms <= 2400.0
    (m,) = entries(tel, [1000.0])
    assert m["waypoints_valid"] == 2


def test_a_lapse_off_the_expert_action_ends_the_valid_waypoints_and_the_recovery_after_it_is_kept():
    """A bot's lapse (applied steering far from the expert's) makes the poses after it show the lapse, not the path to
    learn: waypoints stop being real there. Frames after the lapse keep their waypoints: the recovery from off the
    path is the label those states need."""
    tel = drive(5.0, east)
    for tick in tel.ticks:
        tick.expert_controls.steer = 0.3
        lapse = 2000.0 <= tick.t_ms < 2500.0
        tick.controls.steer = -0.2 if lapse else 0.3 + 0.1  # a small wander everywhere, a lapse for half a second
    before, early, inside, after = entries(tel, [900.0, 1400.0, 2200.0, 2600.0])
    assert before["waypoints_valid"] == 2, "0.5 s and 1.0 s ahead are before the lapse, 1.5 s ahead is after it"
    assert early["waypoints_valid"] == 1
    assert inside["waypoints_valid"] == 0, "the frame's own controls are the lapse's"
    assert after["waypoints_valid"] == 4, "the recovery is the expert's"
    assert before["expert"]["steer"] == 0.3 and inside["expert"]["steer"] == 0.3, "the expert label stays on every frame"
    (loose,) = entries(tel, [900.0], TargetSettings(off_expert_steer=0.6))
    assert loose["waypoints_valid"] == 4, "a gap within the setting is a wander, not a lapse"

    human = drive(5.0, east)  # no expert recorded: the applied controls are the label, nothing is a lapse
    for tick in human.ticks:
        tick.controls.steer = 1.0
    (m,) = entries(human, [900.0])
    assert m["waypoints_valid"] == 4


def test_target_speed_is_the_speed_one_horizon_later_clamped_at_the_end():
    tel = drive(4.0, east, speed=lambda t_s: 5.0 + t_s)
    mid, end = entries(tel, [1000.0, 3500.0])
    assert mid["target_speed"] == pytest.approx(7.0)
    assert end["target_speed"] == pytest.approx(9.0), "the last recorded speed"
    (short,) = entries(tel, [1000.0], TargetSettings(target_speed_horizon_s=0.5))
    assert short["target_speed"] == pytest.approx(6.5)


def test_expert_action_comes_from_the_tick_whose_controls_the_frame_got():
    tel = drive(4.0, east)
    for tick in tel.ticks:
        tick.controls.steer = 0.5  # the noisy action the bot applied
        if tick.t_ms <= 2000.0:
            tick.expert_controls.steer = tick.t_ms / 10000.0  # the clean one, encoding the tick's time
            tick.expert_controls.throttle = 0.75
    (with_expert,), (without,) = entries(tel, [1000.0]), entries(tel, [3000.0])
    # Shown 1000-1100 ms (one nominal frame): controls (and the expert's) of the tick in effect at 1050 ms.
    assert with_expert["expert"] == {"steer": 0.105, "throttle": 0.75, "brake": 0.0}
    assert with_expert["steer"] == 0.5, "the applied controls stay as they were"
    assert "expert" not in without


def test_the_route_target_point_is_written_in_the_ego_frame_where_recorded():
    tel = drive(4.0, east)
    for tick in tel.ticks:
        if tick.t_ms <= 2000.0:
            tick.target_point.x, tick.target_point.y = 60.0, -5.0  # the next junction, 5 m to the south: right
    (m,), (later,) = entries(tel, [1000.0]), entries(tel, [3000.0])
    assert m["target_point"] == [50.0, 5.0]  # seen from (10, 0) heading east
    assert "target_point" not in later, "no target recorded (older game builds): none written"


def test_the_number_of_waypoints_and_their_spacing_are_settings():
    (m,) = entries(drive(4.0, east), [0.0], TargetSettings(waypoint_count=2, waypoint_step_s=1.0))
    assert m["waypoints"] == [[10.0, 0.0], [20.0, 0.0]] and m["waypoints_valid"] == 2


def test_entries_are_byte_deterministic_and_have_no_negative_zero():
    tel = drive(4.0, right_turn)
    a = json.dumps(entries(tel, [0.0, 500.0, 3900.0]))
    assert a == json.dumps(entries(tel, [0.0, 500.0, 3900.0]))
    assert "-0.0," not in json.dumps(entries(drive(4.0, east), [0.0]))


def test_to_ego():
    assert targets.ego_frame(1.0, 1.0, math.pi / 2, 1.0, 3.0) == pytest.approx((2.0, 0.0))  # straight ahead
    assert targets.ego_frame(0.0, 0.0, math.pi / 2, 3.0, 0.0) == pytest.approx((0.0, 3.0))  # east of a car facing north: right
    assert targets.ego_frame(0.0, 0.0, 0.0, 0.0, 2.0) == pytest.approx((0.0, -2.0))  # north of a car facing east: left


def test_settings_are_validated_and_described():
    TargetSettings().validate()
    for bad in (TargetSettings(waypoint_count=0), TargetSettings(waypoint_step_s=0), TargetSettings(target_speed_horizon_s=-1),
                TargetSettings(off_expert_steer=0)):
        with pytest.raises(ValueError):
            bad.validate()
    assert TargetSettings().describe() == {
        "waypoint_count": 4,
        "waypoint_step_s": 0.5,
        "target_speed_horizon_s": 1.0,
        "off_expert_steer": 0.35,
        "frame": "ego: x forward, y right, metres",
    }


def test_settings_come_from_the_environment(monkeypatch):
    from scalediffusion.platform.settings import SettingsError
    from services.processor.server import worker_settings_from_env

    for name in ("SD_OUTPUT_FPS", "SD_WAYPOINTS", "SD_WAYPOINT_STEP_S"):
        monkeypatch.delenv(name, raising=False)
    defaults = worker_settings_from_env()
    assert defaults.targets == TargetSettings() and defaults.splice.output_fps == 10.0
    monkeypatch.setenv("SD_WAYPOINTS", "6")
    monkeypatch.setenv("SD_WAYPOINT_STEP_S", "0.25")
    assert worker_settings_from_env().targets == TargetSettings(waypoint_count=6, waypoint_step_s=0.25)
    monkeypatch.setenv("SD_WAYPOINTS", "0")
    with pytest.raises(SettingsError, match="SD_WAYPOINTS"):
        worker_settings_from_env()
