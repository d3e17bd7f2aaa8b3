"""The replay check: a bot's drive follows from its controls through the game's vehicle model, tick by tick;
edited controls, moved poses, stitched drives and a paused car that moves do not."""

from __future__ import annotations

import pytest

from scalediffusion.city.catalog import DEFAULT_WORLD, get_world
from scalediffusion.sim.bots import BotConfig, play_session
from scalediffusion.v1 import processor_pb2, telemetry_pb2
from services.processor.replay import ReplaySettings, replay_check

WORLD = get_world(DEFAULT_WORLD)
SETTINGS = ReplaySettings()
SHORT = BotConfig(seconds=8.0, width=96, height=54, fps=5, npc_vehicles=0, pedestrians=0)


@pytest.fixture(scope="module")
def drives() -> tuple[telemetry_pb2.Telemetry, telemetry_pb2.Telemetry]:
    return play_session(21, SHORT).telemetry, play_session(22, SHORT).telemetry


def _copy(t: telemetry_pb2.Telemetry) -> telemetry_pb2.Telemetry:
    out = telemetry_pb2.Telemetry()
    out.CopyFrom(t)
    return out


def _rejected(t: telemetry_pb2.Telemetry):
    result = replay_check(t, WORLD, SETTINGS)
    rejection = result.rejection(SETTINGS)
    assert rejection is not None, result
    assert rejection.reason == processor_pb2.REJECTION_REASON_REPLAY_MISMATCH
    assert rejection.metric in ("replay_divergent_fraction", "replay_position_error_m") and rejection.value > rejection.threshold
    return result, rejection


def test_a_genuine_bot_drive_follows_from_its_controls_at_every_tick(drives):
    for telemetry in drives:
        result = replay_check(telemetry, WORLD, SETTINGS)
        assert result.checked == len(telemetry.ticks) - 1 and result.divergent == 0
        assert result.max_position_error_m < 1e-6 and result.rejection(SETTINGS) is None


def test_controls_edited_after_the_drive_are_caught(drives):
    forged = _copy(drives[0])
    for tick in forged.ticks[200:260]:  # a second of steering that never happened
        tick.controls.steer = 0.8
    result, rejection = _rejected(forged)
    assert result.first_divergent_t_ms == pytest.approx(forged.ticks[200].t_ms)
    assert "do not follow from the recorded controls" in rejection.detail


def test_poses_moved_without_a_reset_are_caught_and_a_recorded_reset_is_allowed(drives):
    moved = _copy(drives[0])
    for tick in moved.ticks[300:]:
        tick.vehicle.x += 3.0
    result, rejection = _rejected(moved)
    assert result.divergent == 1 and rejection.metric == "replay_position_error_m"  # one jump is enough
    assert rejection.value == pytest.approx(3.0, abs=0.01)
    reset = _copy(moved)
    reset.ticks[300].reset = True  # the game's reset key: a teleport it records
    result = replay_check(reset, WORLD, SETTINGS)
    assert result.divergent == 0 and result.resets == 1


def test_telemetry_stitched_from_two_drives_is_caught(drives):
    first, second = drives
    stitched = _copy(first)
    del stitched.ticks[240:]
    for tick in second.ticks[240:]:
        stitched.ticks.append(tick)
    assert _rejected(stitched)[0].first_divergent_t_ms == pytest.approx(second.ticks[240].t_ms)


def test_smoothed_speeds_and_a_paused_car_that_moves_are_caught(drives):
    smoothed = _copy(drives[0])
    for tick in smoothed.ticks[100:]:
        tick.vehicle.speed *= 0.9
    assert _rejected(smoothed)[0].divergent > 100
    paused = _copy(drives[0])
    for tick in paused.ticks[100:400]:
        tick.paused = True  # claims the game was paused while the car drove on
    assert _rejected(paused)[0].divergent > 100


def test_a_collision_tick_may_stop_the_car_dead_where_it_was(drives):
    crash = _copy(drives[0])
    k = 300
    before = crash.ticks[k - 1].vehicle
    crash.ticks[k].collision = True  # hit a moving actor the replay does not know about
    crash.ticks[k].vehicle.x, crash.ticks[k].vehicle.y, crash.ticks[k].vehicle.theta = before.x, before.y, before.theta
    crash.ticks[k].vehicle.speed = 0.0
    del crash.ticks[k + 1:]
    assert replay_check(crash, WORLD, SETTINGS).divergent == 0
    crash.ticks[k].collision = False  # the same stop without a collision is no physics
    assert replay_check(crash, WORLD, SETTINGS).divergent == 1


def test_settings_are_validated():
    with pytest.raises(ValueError, match="SD_REPLAY_MAX_DIVERGENT_FRACTION"):
        ReplaySettings(max_divergent_fraction=1.0).validate()
    with pytest.raises(ValueError, match="max_position_error_m"):
        ReplaySettings(max_position_error_m=0.001).validate()
