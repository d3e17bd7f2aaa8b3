"""Traffic-light labels by replay: the lane a pose is in, the stop line ahead, and the light's colour on the world
clock the session recorded."""

from __future__ import annotations

import math

import pytest

from scalediffusion.city.catalog import DEFAULT_WORLD, get_world
from scalediffusion.sim.geometry import light_color
from scalediffusion.v1 import telemetry_pb2, world_pb2
from services.processor.lights import LightLabeler, LightSettings, _world_lanes

LANES, CLOCK = _world_lanes(DEFAULT_WORLD)
WORLD = get_world(DEFAULT_WORLD)


def _lane_into(control: int):
    """A lane segment ending at an intersection with this control, longer than 40 m."""
    for seg in LANES.segments.values():
        length = math.hypot(seg.end[0] - seg.start[0], seg.end[1] - seg.start[1])
        if LANES.intersections[seg.to_node].control == control and length > 40:
            return seg, length
    raise AssertionError("no such lane in the default world")


def _before_line(seg, metres: float) -> tuple[float, float, float]:
    return (seg.end[0] - metres * math.cos(seg.heading), seg.end[1] - metres * math.sin(seg.heading), seg.heading)


def _labeler(offset_ms: float = 0.0) -> LightLabeler:
    return LightLabeler(LANES, CLOCK, offset_ms, LightSettings(range_m=30.0))


def test_a_car_heading_for_a_light_within_range_gets_its_colour_on_the_world_clock():
    seg, _ = _lane_into(world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT)
    x, y, theta = _before_line(seg, 12.0)
    offset = LANES.intersections[seg.to_node].light_offset_s
    seen = set()
    for t_s in range(0, 60, 2):
        expected = light_color(WORLD, offset, seg.axis, t_s + 17.0)
        label = _labeler(offset_ms=17_000.0).label(x, y, theta, t_s * 1000.0)  # world time = t + 17 s
        assert label["light"] == expected and label["stop_ahead"]["light"] == expected
        assert label["stop_ahead"]["control"] == "traffic_light" and label["stop_ahead"]["intersection"] == seg.to_node
        assert label["stop_ahead"]["distance_m"] == pytest.approx(12.0, abs=1e-3)
        seen.add(expected)
    assert seen == {"red", "yellow", "green"}  # a full cycle passes


def test_no_light_beyond_range_inside_the_box_or_against_the_lane():
    seg, length = _lane_into(world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT)
    labeler = _labeler()
    assert labeler.label(*_before_line(seg, 35.0), 0.0) == {"light": "none"}  # 35 m > range 30 m
    x, y, theta = _before_line(seg, -3.0)  # past the stop line, in the junction box
    assert labeler.label(x, y, theta, 0.0) == {"light": "none"}
    x, y, theta = _before_line(seg, 10.0)
    assert labeler.label(x, y, theta + math.pi, 0.0) == {"light": "none"}  # wrong way down the lane
    assert labeler.label(x + 30 * math.sin(theta), y - 30 * math.cos(theta), theta, 0.0) == {"light": "none"}  # off the road


def test_a_stop_sign_is_a_stop_ahead_without_a_light():
    seg, _ = _lane_into(world_pb2.INTERSECTION_CONTROL_STOP_SIGN)
    label = _labeler().label(*_before_line(seg, 8.0), 0.0)
    assert label["light"] == "none" and label["stop_ahead"]["control"] == "stop_sign" and "light" not in label["stop_ahead"]


def test_sessions_without_a_world_clock_or_on_an_unknown_world_get_no_labels():
    settings = LightSettings()
    assert LightLabeler.for_session(telemetry_pb2.Telemetry(world_id=DEFAULT_WORLD), settings) is None
    assert LightLabeler.for_session(telemetry_pb2.Telemetry(world_id="atlantis", world_clock_offset_ms=5.0), settings) is None
    zero = LightLabeler.for_session(telemetry_pb2.Telemetry(world_id=DEFAULT_WORLD, world_clock_offset_ms=0.0), settings)
    assert zero is not None and zero.offset_ms == 0.0  # 0 recorded is a clock, not a missing one
    with pytest.raises(ValueError, match="SD_LIGHT_RANGE_M"):
        LightSettings(range_m=0).validate()
