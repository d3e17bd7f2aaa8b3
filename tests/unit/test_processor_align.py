"""ALIGN on synthetic telemetry with known RTT profiles: the right control lands on the right frame."""

import math

import pytest

from scalediffusion.v1 import telemetry_pb2
from services.processor.align import ClockMap, RttModel, TickTimeline, align_frames
from services.processor.splice import SpliceSettings, continuous_runs, find_breaks, resample, splice, windows


def telemetry(seconds: float = 4.0, hz: float = 100.0, rtt: list[tuple[float, float]] | None = None, **fields) -> telemetry_pb2.Telemetry:
    """Steer encodes time: at tick time t (ms) steer = t / 10000, so a frame's steer tells which tick it got.
    The car drives along x at 10 m/s: x = t / 100, so a frame's x tells which instant its pose came from."""
    t = telemetry_pb2.Telemetry(schema_version=1, video_fps=30, **fields)
    for i in range(int(seconds * hz) + 1):
        ms = i * 1000.0 / hz
        tick = t.ticks.add(t_ms=ms)
        tick.controls.steer = ms / 10000.0
        tick.vehicle.x, tick.vehicle.speed = ms / 100.0, 10.0
    for at, value in rtt or []:
        t.rtt_samples.add(t_ms=at, rtt_ms=value)
    return t


def test_without_rtt_the_pose_is_the_display_time_and_the_control_mid_frame():
    frames = align_frames([0.0, 100.0, 200.0], telemetry(), nominal_frame_ms=100)
    # Frame at 100 ms is on screen 100-200 ms: the control in effect at 150 ms.
    assert frames[1].steer == pytest.approx(0.015)
    assert frames[1].x == pytest.approx(1.0)  # pose at the display time (no RTT)
    assert frames[2].steer == pytest.approx(0.025)  # the last frame uses a nominal frame length


def test_constant_rtt_moves_the_pose_back_by_one_round_trip_but_not_the_control():
    frames = align_frames([1000.0, 1100.0], telemetry(rtt=[(0, 120.0), (4000, 120.0)]), nominal_frame_ms=100)
    assert frames[0].render_ms == pytest.approx(880.0)
    assert frames[0].x == pytest.approx(8.8)  # what the image shows: the state 120 ms earlier
    assert frames[0].steer == pytest.approx(0.105)  # what the player did while it was on screen (1050 ms)


def test_rtt_is_interpolated_over_time_not_taken_as_one_constant():
    model = RttModel([(0, 50.0), (1000, 150.0), (2000, 50.0)])
    assert model(500) == pytest.approx(100.0)
    assert model(1500) == pytest.approx(100.0)
    assert model(-100) == 50.0 and model(5000) == 50.0
    assert RttModel([])(123) == 0.0
    frames = align_frames([500.0], telemetry(rtt=[(0, 50.0), (1000, 150.0)]), nominal_frame_ms=100)
    assert frames[0].render_ms == pytest.approx(400.0)


def test_an_rtt_spike_affects_only_the_frames_around_it():
    rtt = [(0, 60.0), (1000, 60.0), (1100, 900.0), (1200, 60.0), (4000, 60.0)]
    frames = align_frames([500.0, 1100.0, 2000.0], telemetry(rtt=rtt), nominal_frame_ms=100)
    assert [round(f.rtt_ms) for f in frames] == [60, 900, 60]
    assert frames[1].x == pytest.approx(2.0)  # the spiked frame shows the state at 200 ms
    assert frames[2].x == pytest.approx(19.4)


def test_recorder_clock_offset_and_drift_are_corrected():
    # The recorder started at telemetry time 500 ms and its clock runs 2% fast: 3060 video ms = 3000 telemetry ms.
    t = telemetry(recording_start_t_ms=500.0, recording_stop_t_ms=3500.0)
    clock = ClockMap.from_telemetry(t, last_frame_video_ms=3060.0)
    assert clock.start_ms == 500.0 and clock.scale == pytest.approx(3000 / 3060)
    frames = align_frames([0.0, 1530.0, 3060.0], t, nominal_frame_ms=33)
    assert [round(f.display_ms) for f in frames] == [500, 2000, 3500]
    # An implausible "drift" (20%) is bad data, not drift: only the offset is applied.
    assert ClockMap.from_telemetry(t, last_frame_video_ms=3750.0).scale == 1.0


@pytest.mark.parametrize("stop_after_last_frame_ms", [100.0, 800.0])
def test_a_recorder_that_stops_after_its_last_frame_is_not_drift(stop_after_last_frame_ms):
    """Recorders stop after their last frame (Chromium's MediaRecorder on 2 cores: up to ~800 ms later). Read as
    drift, that tail stretched every display time: the last frames got controls from one or more frames later."""
    frame_times = [i * 100.0 for i in range(101)]  # 10 s at 10 fps, recorder and game clocks identical
    t = telemetry(seconds=12.0, recording_start_t_ms=0.0, recording_stop_t_ms=frame_times[-1] + stop_after_last_frame_ms)
    assert ClockMap.from_telemetry(t, frame_times[-1]).scale == 1.0
    frames = align_frames(frame_times, t, nominal_frame_ms=100)
    # Every frame's control is the tick in effect in the middle of its own 100 ms on screen (steer = t / 10000).
    assert [round(f.steer * 10000) for f in frames] == [round(v + 50) for v in frame_times]
    assert [f.display_ms for f in frames] == frame_times


def test_heading_is_interpolated_the_short_way_round():
    t = telemetry_pb2.Telemetry(schema_version=1)
    for ms, theta in ((0.0, math.pi - 0.1), (100.0, -math.pi + 0.1)):
        tick = t.ticks.add(t_ms=ms)
        tick.vehicle.theta = theta
    x, y, theta, speed = TickTimeline(t).state_at(50.0)
    assert abs(abs(theta) - math.pi) < 1e-9


def test_frames_outside_the_telemetry_are_not_covered():
    frames = align_frames([0.0, 2000.0, 5000.0], telemetry(seconds=4.0), nominal_frame_ms=33)
    assert [f.covered for f in frames] == [True, True, False]


# -- SPLICE ---------------------------------------------------------------------------------------------------


def aligned(times: list[float], tel: telemetry_pb2.Telemetry | None = None):
    tel = tel or telemetry(seconds=20.0, hz=30.0)
    return align_frames(times, tel, nominal_frame_ms=33.3), TickTimeline(tel)


def test_a_continuous_session_is_cut_into_fixed_windows_and_a_short_tail_dropped():
    times = [i * 1000 / 30 for i in range(int(12.5 * 30))]
    frames, timeline = aligned(times)
    candidates, breaks = splice(frames, timeline, SpliceSettings(segment_s=5, min_segment_s=3, output_fps=0))
    assert not breaks
    assert [len(c.frames) for c in candidates] == [150, 150]  # the 2.5 s tail is under 3 s
    assert [c.index for c in candidates] == [0, 1]


@pytest.mark.parametrize("cause", ["gap", "pause", "reset", "teleport", "collision"])
def test_a_segment_never_straddles_a_break(cause):
    tel = telemetry(seconds=20.0, hz=30.0)
    times = [i * 1000 / 30 for i in range(300)]
    if cause == "gap":
        times = times[:150] + [t + 600 for t in times[150:]]
    elif cause == "pause":
        for tick in tel.ticks:
            if 4900 <= tick.t_ms <= 5200:
                tick.paused = True
    elif cause == "collision":
        # The game stops the car where it hit something: speed 0 from one tick to the next.
        for tick in tel.ticks:
            if tick.t_ms >= 5000:
                tick.vehicle.x, tick.vehicle.speed = 50.0, 0.0
        next(t for t in tel.ticks if t.t_ms >= 5000).collision = True
    elif cause == "reset" or cause == "teleport":
        for tick in tel.ticks:
            if tick.t_ms >= 5000:
                tick.vehicle.x += 500.0
        if cause == "reset":
            next(t for t in tel.ticks if t.t_ms >= 5000).reset = True
    frames, timeline = aligned(times, tel)
    candidates, breaks = splice(frames, timeline, SpliceSettings(segment_s=3, min_segment_s=1, output_fps=0))
    assert cause in {b.cause for b in breaks}
    break_frames = {b.frame for b in breaks}
    for c in candidates:
        assert not any(f in break_frames for f in c.frames[1:]), "a break never falls inside a segment"


def test_a_long_contact_breaks_once_where_it_starts():
    """Clients flag every tick in contact; a car pressed against a wall for 2 s is one instant stop, not sixty."""
    tel = telemetry(seconds=20.0, hz=30.0)
    for tick in tel.ticks:
        if tick.t_ms >= 5000:
            tick.vehicle.x, tick.vehicle.speed = 50.0, 0.0
        if 5000 <= tick.t_ms <= 7000:
            tick.collision = True
    frames, timeline = aligned([i * 1000 / 30 for i in range(300)], tel)
    _, breaks = splice(frames, timeline, SpliceSettings(segment_s=3, min_segment_s=1, output_fps=0))
    assert [b.cause for b in breaks].count("collision") == 1


def test_a_busy_machines_uneven_frames_are_kept_and_only_a_real_hole_breaks():
    """Chromium's MediaRecorder on a busy 2-core machine: frames 113-398 ms apart (measured on a 12 s drive). At
    10 Hz output they are data, not damage; a hole of more than SD_MAX_GAP_INTERVALS output intervals still breaks."""
    pattern = [398, 201, 195, 292, 195, 219, 256, 253, 270, 210, 310, 244, 245, 233, 247, 229, 259, 229, 249, 113]
    times = [0.0]
    while times[-1] < 12_000:
        times.append(times[-1] + pattern[len(times) % len(pattern)])
    frames, timeline = aligned(times)
    candidates, breaks = splice(frames, timeline, SpliceSettings())
    assert breaks == []
    kept_s = sum(times[c.frames[-1]] - times[c.frames[0]] for c in candidates) / 1000
    assert kept_s >= 0.8 * (times[-1] - times[0]) / 1000
    assert SpliceSettings().hole_limit_ms == 800.0 and SpliceSettings(output_fps=0).hole_limit_ms == 250.0
    holey = times[:20] + [t + 900 for t in times[20:]]
    frames, timeline = aligned(holey)
    _, breaks = splice(frames, timeline, SpliceSettings())
    assert [(b.frame, b.cause) for b in breaks] == [(20, "gap")]


def test_an_rtt_change_breaks_continuity_instead_of_jumping_the_pose():
    """An 800 ms RTT spike at 8 m/s: interpolating the RTT samples moves the aligned pose back and forth by metres
    between frames 100 ms apart. SPLICE breaks around it, so no segment carries a jump no car made (CLEAN would
    otherwise reject the whole 5 s segment as IMPLAUSIBLE_MOTION)."""
    tel = telemetry(seconds=20.0, hz=60.0, rtt=[(0, 60.0), (6000, 60.0), (6100, 860.0), (6200, 60.0), (20000, 60.0)])
    for tick in tel.ticks:
        tick.vehicle.x, tick.vehicle.speed = tick.t_ms * 0.008, 8.0
    times = [100.0 + i * 100.0 for i in range(150)]
    frames, timeline = aligned(times, tel)
    candidates, breaks = splice(frames, timeline, SpliceSettings())
    assert {b.cause for b in breaks} == {"rtt_jump"}
    for c in candidates:
        for a, b in zip(c.frames, c.frames[1:]):
            step = abs(frames[b].x - frames[a].x)
            assert step <= 8.0 * (times[b] - times[a]) / 1000 + 0.1, (a, b, step)
    assert sum(len(c.frames) for c in candidates) >= 135, "only the frames on the spike are lost"
    with pytest.raises(ValueError):
        SpliceSettings(max_gap_intervals=0.5).validate()


def test_output_fps_resamples_without_inventing_or_repeating_frames():
    times = [i * 1000 / 30 for i in range(90)]
    assert resample(range(0, 90), times, 10) == list(range(0, 90, 3))
    slow = [i * 100.0 for i in range(20)]
    assert resample(range(0, 20), slow, 30) == list(range(20)), "a slower source keeps its own frames"
    assert resample(range(0, 90), times, 0) == list(range(90))


def test_the_default_output_rate_is_10_hz():
    times = [i * 1000 / 30 for i in range(int(12.5 * 30))]
    frames, timeline = aligned(times)
    candidates, _ = splice(frames, timeline, SpliceSettings(segment_s=5, min_segment_s=3))
    assert SpliceSettings().output_fps == 10.0
    assert [len(c.frames) for c in candidates] == [50, 50]
    assert candidates[0].frames[:3] == [0, 3, 6]


def test_runs_and_windows_edge_cases():
    assert continuous_runs(0, []) == []
    frames, timeline = aligned([0.0])
    assert find_breaks(frames, timeline, SpliceSettings()) == []
    assert windows([0], [0.0], SpliceSettings(min_segment_s=0)) == [[0]]
    assert windows([0], [0.0], SpliceSettings(min_segment_s=1)) == []


# -- frame records (WebCodecs recordings) -----------------------------------------------------------------------


def recorded(shown_render: list[tuple[float, float]], start: float = 1000.0, **kwargs) -> telemetry_pb2.Telemetry:
    tel = telemetry(seconds=10.0, recording_start_t_ms=start, **kwargs)
    for shown, render in shown_render:
        tel.frames.add(shown_t_ms=shown, render_t_ms=render, source=telemetry_pb2.FRAME_SOURCE_REPAINTED if render < shown else telemetry_pb2.FRAME_SOURCE_RAW)
    return tel


def test_frame_records_give_each_frame_its_exact_display_and_render_time():
    """A repainted frame shows the state of the tick whose render was sent, whatever RTT samples say; its controls
    are the ones in effect while it was on screen. Frame error 0 by construction."""
    frames_in = [(1000.0, 1000.0), (1230.0, 880.0), (1610.0, 1205.0), (1700.0, 1700.0)]
    tel = recorded(frames_in, rtt=[(0, 5.0), (10000, 5.0)])  # misleading samples: records win
    video_ms = [round(shown - 1000.0) for shown, _ in frames_in]
    frames = align_frames(video_ms, tel, nominal_frame_ms=100)
    assert all(f.exact for f in frames)
    assert [f.display_ms for f in frames] == [1000.0, 1230.0, 1610.0, 1700.0]
    assert [f.render_ms for f in frames] == [1000.0, 880.0, 1205.0, 1700.0]
    assert [f.x for f in frames] == pytest.approx([10.0, 8.8, 12.05, 17.0])  # x = t / 100
    # steer = t / 10000 of the tick in effect mid-screen-time: (1000+1230)/2 = 1115 -> tick 1110 at 100 Hz.
    assert [round(f.steer * 10000) for f in frames] == [1110, 1420, 1650, 1750]


def test_frame_records_that_do_not_describe_the_video_are_refused_and_a_cut_video_uses_the_leading_ones():
    from services.processor.align import FrameRecordsMismatch

    tel = recorded([(1000.0, 1000.0), (1100.0, 1100.0), (1200.0, 1200.0)])
    with pytest.raises(FrameRecordsMismatch, match="4 frames"):
        align_frames([0.0, 100.0, 200.0, 300.0], tel)
    with pytest.raises(FrameRecordsMismatch, match="frame 1"):
        align_frames([0.0, 140.0, 200.0], tel)
    cut = align_frames([0.0, 100.4], tel)  # a truncated upload: the frames before the cut
    assert [f.display_ms for f in cut] == [1000.0, 1100.0] and all(f.exact for f in cut)


def test_recorded_frames_break_only_where_the_picture_goes_back_in_time():
    # raw at 1000, a fresh raw render at 1100, then a repaint of the state at 900 (older than what was shown).
    shown_render = [(1000.0 + 100 * i, 1000.0 + 100 * i) for i in range(30)]
    shown_render[10] = (2000.0, 1500.0)  # repaint of an older state: goes back 400 ms
    shown_render[11] = (2100.0, 2050.0)  # jumps forward 550 ms: exact, no break
    tel = recorded(shown_render)
    tel.recording_start_t_ms = 1000.0
    frames, timeline = aligned([s - 1000.0 for s, _ in shown_render], tel)
    _, breaks = splice(frames, timeline, SpliceSettings())
    assert [(b.frame, b.cause) for b in breaks] == [(10, "rtt_jump")]
