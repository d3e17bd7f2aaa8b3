"""Bot players: what a bot session records beside the applied controls, traffic that varies per session, and kept
recordings that are never rendered twice."""

from __future__ import annotations

import random
import tempfile

import pytest

from scalediffusion.sim.bots import BotConfig, play_session
from scalediffusion.sim.loop import _record, recording_dir

SHORT = BotConfig(seconds=3.0, width=160, height=90, fps=10, npc_vehicles=4, pedestrians=0)


@pytest.fixture(scope="module")
def session():
    return play_session(11, SHORT)


def test_a_bot_records_the_experts_clean_action_beside_the_applied_noisy_one(session):
    ticks = [t for t in session.telemetry.ticks if t.HasField("controls")]
    assert ticks and all(t.HasField("expert_controls") for t in ticks)
    steer_gap = max(abs(t.controls.steer - t.expert_controls.steer) for t in ticks)
    assert steer_gap > 1e-3  # the applied steering carries the driver's wander; the expert's does not
    assert all(-1 <= t.expert_controls.steer <= 1 and 0 <= t.expert_controls.throttle <= 1 for t in ticks)
    assert session.frames == 30  # 3 s at 10 fps


def test_without_record_expert_no_expert_field_is_written_and_no_scratch_folder_is_left(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where play_session's scratch folder goes
    quiet = play_session(11, BotConfig(seconds=1.0, width=160, height=90, fps=10, npc_vehicles=0, pedestrians=0, record_expert=False))
    assert not any(t.HasField("expert_controls") for t in quiet.telemetry.ticks)
    assert quiet.video[:4] == b"\x1a\x45\xdf\xa3"  # the WebM (EBML) header: the video was read before its folder went
    assert list(tmp_path.iterdir()) == [], "a bot session leaves no scratch folder behind"


def test_traffic_varies_per_session_within_the_configured_range():
    config = BotConfig(npc_vehicles=20, npc_vehicles_min=0, pedestrians=8, pedestrians_min=2)
    draws = [config.traffic(random.Random(seed)) for seed in range(40)]
    vehicles, walkers = {v for v, _ in draws}, {p for _, p in draws}
    assert min(vehicles) >= 0 and max(vehicles) <= 20 and len(vehicles) > 8
    assert min(walkers) >= 2 and max(walkers) <= 8
    assert BotConfig(npc_vehicles=7, pedestrians=3).traffic(random.Random(0)) == (7, 3)  # fixed when no minimum


def test_kept_recordings_are_reused_and_named_by_configuration(tmp_path):
    folder = recording_dir(tmp_path, SHORT)
    assert folder == recording_dir(tmp_path, BotConfig(**{**SHORT.__dict__, "seconds": 3}))  # 3 == 3.0
    assert folder != recording_dir(tmp_path, BotConfig(**{**SHORT.__dict__, "fps": 20}))
    seed, video, telemetry = _record(5, SHORT, str(folder))
    first = (folder / "bot-5.webm").stat().st_mtime_ns
    again = _record(5, SHORT, str(folder))
    assert again == (seed, video, telemetry) and (folder / "bot-5.webm").stat().st_mtime_ns == first


def test_a_bot_session_prints_no_opencv_vp8_notice(capfd):
    """OpenCV's FFmpeg writer prints a "tag VP80 is not supported" notice per video to fd 2 (then writes the file
    correctly); a fleet of bots printed a screen of them."""
    quiet = play_session(12, BotConfig(seconds=0.5, width=160, height=90, fps=10, npc_vehicles=0, pedestrians=0))
    assert quiet.video[:4] == b"\x1a\x45\xdf\xa3" and quiet.frames == 5
    out, err = capfd.readouterr()
    assert "VP80" not in err and "VP80" not in out
    print("after", file=__import__("sys").stderr)  # fd 2 works again afterwards
    assert "after" in capfd.readouterr().err


def test_a_bot_records_where_the_world_clock_stood_at_its_first_tick(session):
    """Lights and traffic run on the episode's clock, which starts at a random second of the light cycle."""
    assert session.telemetry.HasField("world_clock_offset_ms")
    assert 0.0 <= session.telemetry.world_clock_offset_ms < 60_000.0 and session.telemetry.ticks[0].t_ms == 0.0
