"""The video check's pure parts: which frames are compared, how a frame's agreement is measured (textured blocks
only), and when a segment fails. The processor's integration test runs it on real bot drives and forgeries."""

from __future__ import annotations

import numpy as np
import pytest

from scalediffusion.v1 import telemetry_pb2
from services.processor.align import align_frames, raw_frames
from services.processor.videocheck import (
    VideoCheckResult,
    VideoCheckSettings,
    check_segment,
    frame_agreement,
    frames_to_check,
)

S = VideoCheckSettings()


def street(seed: int, width: int = 256, height: int = 144) -> np.ndarray:
    """A frame-like image: flat sky over flat road, a band of textured 'facades' between (random per seed)."""
    img = np.empty((height, width, 3), np.uint8)
    img[: height // 3] = (180, 205, 230)
    img[2 * height // 3:] = (70, 72, 75)
    img[height // 3: 2 * height // 3] = np.random.default_rng(seed).integers(0, 256, (height // 3, width, 3))
    return img


def test_a_frame_agrees_with_itself_through_compression_noise_and_not_with_another_street():
    frame = street(1)
    noisy = np.clip(frame.astype(int) + np.random.default_rng(9).integers(-4, 5, frame.shape), 0, 255).astype(np.uint8)
    assert frame_agreement(frame, frame, S) == 1.0
    assert frame_agreement(noisy, frame, S) > 0.95
    # Same sky and road, other facades: only the textured band counts, so it agrees little though 2/3 is identical.
    assert frame_agreement(street(2), frame, S) < 0.3


def test_a_render_with_nothing_textured_is_not_judged():
    flat = np.full((144, 256, 3), 180, np.uint8)
    assert frame_agreement(street(1), flat, S) is None


def test_one_raw_covered_frame_per_second_is_picked():
    tel = telemetry_pb2.Telemetry(video_fps=10)
    for i in range(501):
        tel.ticks.add(t_ms=i * 10.0, vehicle=telemetry_pb2.VehicleState(x=i * 0.1))
    aligned = align_frames([i * 100.0 for i in range(50)], tel)
    picked = frames_to_check(list(range(50)), aligned, S)
    assert picked == [0, 10, 20, 30, 40]
    tel.rtt_samples.add(t_ms=0.0, rtt_ms=120.0)  # a repainted drive: nothing raw to compare
    assert frames_to_check(list(range(50)), align_frames([i * 100.0 for i in range(50)], tel), S) == []


def test_frame_records_say_which_frames_are_raw():
    tel = telemetry_pb2.Telemetry()
    for i, source in enumerate([telemetry_pb2.FRAME_SOURCE_RAW, telemetry_pb2.FRAME_SOURCE_REPAINTED, telemetry_pb2.FRAME_SOURCE_UNSPECIFIED]):
        tel.frames.add(shown_t_ms=i * 100.0, render_t_ms=i * 100.0, source=source)
    assert raw_frames([0.0, 100.0, 200.0], tel) == [True, False, False]


def test_a_segment_fails_on_its_median_and_only_with_enough_frames():
    tel = telemetry_pb2.Telemetry(video_fps=10)
    for i in range(501):
        tel.ticks.add(t_ms=i * 10.0)
    aligned = align_frames([i * 100.0 for i in range(50)], tel)
    frames = list(range(50))
    good = check_segment(frames, aligned, lambda f: street(f // 10), lambda f, w, h: [street(f // 10)], S)
    bad = check_segment(frames, aligned, lambda f: street(f // 10), lambda f, w, h: [street(100 + f // 10)], S)
    assert good.checked == bad.checked == 5 and good.agreement == 1.0 and not good.failed(S)
    # Re-renders from the ticks around a clock-aligned frame: the best one counts.
    either = check_segment(frames, aligned, lambda f: street(f // 10), lambda f, w, h: [street(100 + f // 10), street(f // 10)], S)
    assert either.agreement == 1.0
    assert bad.failed(S) and "does not show the recorded drive" in bad.detail(S)
    one = VideoCheckResult(checked=1, agreements=(0.1,), frames=(0,))
    assert not one.failed(S), "a single frame is not enough to reject a segment"
    with pytest.raises(ValueError, match="SD_VIDEO_MIN_AGREEMENT"):
        VideoCheckSettings(min_agreement=1.5).validate()


def test_the_worker_re_renders_a_bot_drive_at_every_video_size_on_one_context(tmp_path):
    """The worker's check on a real (short) bot drive through OpenGL: it agrees with its own video, and a second
    video size (a second renderer on the same context, as when sessions of several sizes arrive) works as well."""
    import cv2

    from scalediffusion.city.catalog import get_world
    from scalediffusion.sim.bots import BotConfig, play_session
    from services.processor import pipeline
    from services.processor.align import TickTimeline
    from services.processor.plan import plan_session
    from services.processor.splice import SpliceSettings
    from services.processor.worker import DecodedFrames, SessionWorker, WorkerSettings

    bot = play_session(7, BotConfig(seconds=3.0, width=320, height=180, fps=10, npc_vehicles=0, pedestrians=0))
    (tmp_path / "v.webm").write_bytes(bot.video)
    capture, decoded = cv2.VideoCapture(str(tmp_path / "v.webm")), DecodedFrames()
    while (frame := capture.read()[1]) is not None:
        decoded.times_ms.append(capture.get(cv2.CAP_PROP_POS_MSEC))
        decoded.jpegs.append(pipeline.encode_jpeg(pipeline.downscale(frame)))
        decoded.sizes.append((frame.shape[1], frame.shape[0]))
    timeline = TickTimeline(bot.telemetry)
    plan = plan_session(decoded.times_ms, bot.telemetry, timeline, SpliceSettings())
    worker = SessionWorker(None, None, WorkerSettings(), "clean")  # type: ignore[arg-type]  # no I/O in the check
    try:
        renders = worker._renders("s", bot.telemetry, timeline, get_world(bot.telemetry.world_id))
        assert renders is not None
        frames = list(range(len(plan.aligned)))
        first = renders.video_check(frames, plan.aligned, decoded)
        decoded.sizes = [(640, 360)] * len(decoded.sizes)  # rendered larger, then downscaled to the same dataset size
        second = renders.video_check(frames[:-1], plan.aligned, decoded)
    finally:
        worker.close()
    assert first.checked >= 2 and first.agreement > 0.98 and second.agreement > 0.9, (first, second)
