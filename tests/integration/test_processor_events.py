"""The processor as a consumer-group member on the real broker: poison records are dead-lettered and the
consumer keeps going; sessions it cannot use are rejected with a machine-readable reason; a redelivered event
is a no-op. Events are published straight to the broker here so the processor is tested on its own."""

from __future__ import annotations

import time
import uuid

import pytest

from scalediffusion import synthetic
from scalediffusion.platform import events, keys
from scalediffusion.v1 import events_pb2, processor_pb2


def publish_session(stack, tmp_path, video: bytes | None = None, telemetry: bytes | None = None, bus=None, session_id: str = "") -> str:
    """Puts raw objects in S3 like an upload would and announces them on sessions.uploaded."""
    store = stack.store()
    session_id = session_id or uuid.uuid4().hex
    player = "p-proc"
    if video is None:
        path = tmp_path / "v.webm"
        synthetic.write_vp8_webm(path, seconds=1.5, fps=20, width=320, height=180)
        video = path.read_bytes()
    if telemetry is None:
        telemetry = synthetic.make_telemetry(session_id, 2.0).SerializeToString()
    store.put_bytes("raw", keys.video_key(player, session_id), video)
    store.put_bytes("raw", keys.telemetry_key(player, session_id), telemetry)
    bus = bus or stack.bus()
    bus.publish(
        events.SESSIONS_UPLOADED,
        session_id,
        events_pb2.SessionUploaded(
            session_id=session_id, player_id=player, bucket="raw",
            video_key=keys.video_key(player, session_id), telemetry_key=keys.telemetry_key(player, session_id), attempt=1,
        ),
    )
    bus.close()
    return session_id


def wait_report(processor, session_id: str, timeout_s: float = 60) -> processor_pb2.QualityReport:
    import grpc

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return processor.GetSessionReport(processor_pb2.GetSessionReportRequest(session_id=session_id))
        except grpc.RpcError:
            time.sleep(0.3)
    raise AssertionError(f"no report for {session_id}")


def test_unparsable_message_goes_to_the_dead_letter_topic_and_the_consumer_keeps_going(stack, processor, tmp_path):
    bus = stack.bus()
    poison_key = f"poison-{uuid.uuid4().hex[:8]}"
    bus.publish_raw(bus.topic(events.SESSIONS_UPLOADED), poison_key.encode(), b"\xff\xfe not a protobuf", [])
    bus.publish_raw(bus.topic(events.SESSIONS_UPLOADED), (poison_key + "-typed").encode(), b"", [(events.TYPE_HEADER, b"scalediffusion.v1.Telemetry")])
    bus.close()

    letters = stack.read_topic("processor.dlq", lambda r: r.key in (poison_key.encode(), (poison_key + "-typed").encode()), timeout_s=60)
    decoded = {r.key.decode(): events.decode(r.value, r.headers, events_pb2.DeadLetter) for r in letters}
    assert set(decoded) == {poison_key, poison_key + "-typed"}
    assert decoded[poison_key].source_topic == events.SESSIONS_UPLOADED
    assert decoded[poison_key].value == b"\xff\xfe not a protobuf"
    assert "PoisonMessage" in decoded[poison_key].error
    assert "expected scalediffusion.v1.SessionUploaded" in decoded[poison_key + "-typed"].error

    # A good session after the poison still gets processed.
    report = wait_report(processor, publish_session(stack, tmp_path))
    assert report.segments and not report.rejections


def test_undecodable_video_is_rejected_with_a_reason(stack, processor, tmp_path):
    session_id = publish_session(stack, tmp_path, video=b"\x1aE\xdf\xa3" + bytes(range(256)) * 40)
    rejected = stack.read_topic(events.SESSIONS_REJECTED, lambda r: r.key == session_id.encode(), timeout_s=60)
    assert len(rejected) == 1
    message = events.decode(rejected[0].value, rejected[0].headers, events_pb2.SessionRejected)
    assert [r.reason for r in message.rejections] == [processor_pb2.REJECTION_REASON_VIDEO_UNDECODABLE]
    assert wait_report(processor, session_id).rejections[0].metric == "decoded_frames"


def test_unparsable_telemetry_is_rejected_with_a_reason(stack, processor, tmp_path):
    session_id = publish_session(stack, tmp_path, telemetry=b"\x08\x07\x12garbage")
    rejected = stack.read_topic(events.SESSIONS_REJECTED, lambda r: r.key == session_id.encode(), timeout_s=60)
    message = events.decode(rejected[0].value, rejected[0].headers, events_pb2.SessionRejected)
    assert message.rejections[0].reason == processor_pb2.REJECTION_REASON_TELEMETRY_INVALID


def test_a_redelivered_event_does_not_process_the_session_twice(stack, processor, tmp_path):
    session_id = publish_session(stack, tmp_path)
    first = wait_report(processor, session_id)
    store = stack.store()
    while store.stat("clean", keys.report_prefix("default", session_id) + "done.json") is None:
        time.sleep(0.2)
    bus = stack.bus()
    message = events_pb2.SessionUploaded(session_id=session_id, player_id="p-proc", bucket="raw",
                                         video_key=keys.video_key("p-proc", session_id), telemetry_key=keys.telemetry_key("p-proc", session_id), attempt=2)
    bus.publish(events.SESSIONS_UPLOADED, session_id, message)
    bus.close()
    # Wait until the processor has consumed the second copy (the sessions.uploaded offset moves past it)...
    deadline = time.monotonic() + 30
    duplicates_metric = f"http://127.0.0.1:{stack.layout.services['processor'].metrics}/metrics"
    import urllib3

    while time.monotonic() < deadline:
        text = urllib3.PoolManager().request("GET", duplicates_metric).data.decode()
        if "sd_processor_duplicate_events_total" in text and any(
            line.startswith("sd_processor_duplicate_events_total ") and float(line.split()[1]) >= 1 for line in text.splitlines()
        ):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the redelivered event was not seen as a duplicate")
    ready = stack.read_topic(events.SEGMENTS_READY, lambda r: r.key == session_id.encode(), timeout_s=5)
    assert len(ready) == len(first.segments), "segments.ready once per segment, not once per delivery"


def test_truncated_webm_uses_what_decodes_and_says_it_was_cut(stack, processor, tmp_path):
    path = tmp_path / "long.webm"
    synthetic.write_vp8_webm(path, seconds=3.0, fps=20, width=320, height=180)
    data = path.read_bytes()
    session_id = publish_session(stack, tmp_path, video=data[: len(data) // 5], telemetry=synthetic.make_telemetry("", 3.0).SerializeToString())
    report = wait_report(processor, session_id)
    reasons = {processor_pb2.RejectionReason.Name(r.reason) for r in report.rejections}
    assert "REJECTION_REASON_VIDEO_TRUNCATED" in reasons
    assert 0 < report.decoded_frames < 60
    assert not report.segments and "REJECTION_REASON_TOO_SHORT" in reasons, "under a second survives the cut: nothing to keep"
    assert stack.read_topic(events.SESSIONS_REJECTED, lambda r: r.key == session_id.encode(), timeout_s=10)


def test_telemetry_shorter_than_the_video_rejects_the_uncovered_frames(stack, processor, tmp_path):
    path = tmp_path / "v.webm"
    synthetic.write_vp8_webm(path, seconds=3.0, fps=20, width=320, height=180)
    session_id = publish_session(stack, tmp_path, video=path.read_bytes(), telemetry=synthetic.make_telemetry("", 0.5).SerializeToString())
    report = wait_report(processor, session_id)
    mismatch = [r for r in report.rejections if r.reason == processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH]
    assert mismatch and mismatch[0].metric == "uncovered_frames" and mismatch[0].value >= 45
    assert not report.segments
    assert report.breaks["uncovered"] >= 45


def test_report_has_a_png_plot_and_the_dataset_stats_add_up(stack, processor, tmp_path):
    path = tmp_path / "v.webm"
    synthetic.write_vp8_webm(path, seconds=6.5, fps=20, width=320, height=180)  # 5 s + a 1.45 s tail (kept: >= 1 s)
    session_id = publish_session(stack, tmp_path, video=path.read_bytes(), telemetry=synthetic.make_telemetry("", 7.0).SerializeToString())
    report = wait_report(processor, session_id)
    assert report.plot_key.endswith("quality.png")
    assert stack.store().get_bytes("clean", report.plot_key)[:8] == b"\x89PNG\r\n\x1a\n"
    assert report.candidate_segments == 2 and len(report.segments) == 2
    stats = processor.GetDatasetStats(processor_pb2.GetDatasetStatsRequest(dataset="default"))
    assert stats.segment_count >= 2 and stats.frame_count >= sum(s.frame_count for s in report.segments)
    assert sum(stats.speed_bin_counts) == stats.frame_count
    assert sum(stats.command_counts.values()) == stats.frame_count


def test_measurements_carry_driving_targets_and_the_index_records_the_camera(stack, processor, tmp_path):
    session_id = publish_session(stack, tmp_path)  # 1.5 s of 320x180 video at 20 fps, 60 Hz telemetry, dash camera
    report = wait_report(processor, session_id)
    assert report.segments
    store = stack.store()
    seg = report.segments[0]
    measurements = store.get_json("clean", keys.measurements_key("default", seg.segment_id))
    assert seg.fps == pytest.approx(10.0, abs=0.5), "written at the default 10 Hz"
    for m in measurements:
        assert len(m["waypoints"]) == 4 and all(len(p) == 2 for p in m["waypoints"])
        assert {"x", "y", "theta", "speed", "steer", "throttle", "brake", "command", "target_speed", "waypoints_valid"} <= set(m)
        assert "expert" not in m, "a human session has no expert action"
    # The video starts 250 ms into the telemetry and ends ~0.5 s before it: the first frame sees 2 s ahead, the last does not.
    assert measurements[0]["waypoints_valid"] == 4 and measurements[-1]["waypoints_valid"] < 4
    assert measurements[0]["waypoints"][0][0] > 0, "the car drives forward"
    index = store.get_json("clean", keys.dataset_index_key("default", seg.segment_id))
    assert index["camera"] == {
        "width": 320,
        "height": 180,
        "vertical_fov_deg": 60.0,
        "mode": "dash",
        "resize": {"width": 256, "height": 144, "keep_aspect": True, "method": "processor.downscale"},
        "aligned_by": "clock_and_rtt",
    }
    assert index["targets"] == {"waypoint_count": 4, "waypoint_step_s": 0.5, "target_speed_horizon_s": 1.0, "off_expert_steer": 0.35,
                                "frame": "ego: x forward, y right, metres"}


def recorded_session(seconds: float, fps: float, records: int, offset_ms: float = 0.0) -> bytes:
    """Telemetry with one frame record per frame of a write_vp8_webm video (as the game's WebCodecs recorder
    writes them): the first frame the raw render, then repainted ones whose round trips vary (150/180/210 ms)."""
    telemetry = synthetic.make_telemetry("", seconds + 0.5)
    start = telemetry.recording_start_t_ms
    for i in range(records):
        shown = start + i * 1000.0 / fps + offset_ms
        rtt = 0.0 if i == 0 else 150.0 + 30.0 * (i % 3)
        telemetry.frames.add(shown_t_ms=shown, render_t_ms=max(0.0, shown - rtt), source=2 if rtt else 1)
    return telemetry


def test_a_session_with_frame_records_is_aligned_by_them(stack, processor, tmp_path):
    path = tmp_path / "v.webm"
    frames = synthetic.write_vp8_webm(path, seconds=3.0, fps=20, width=320, height=180)
    telemetry = recorded_session(3.0, 20, frames)
    session_id = uuid.uuid4().hex
    telemetry.session_id = session_id
    report = wait_report(processor, publish_session(stack, tmp_path, video=path.read_bytes(), telemetry=telemetry.SerializeToString(), session_id=session_id))
    assert report.segments and not report.rejections, report
    assert dict(report.breaks) == {"rtt_jump": 1}, "only where the picture goes back in time: raw render -> first repaint"
    store = stack.store()
    seg = report.segments[0]
    assert store.get_json("clean", keys.dataset_index_key("default", seg.segment_id))["camera"]["aligned_by"] == "frame_records"
    by_shown = {round(f.shown_t_ms, 3): f for f in telemetry.frames}
    for m in store.get_json("clean", keys.measurements_key("default", seg.segment_id)):
        record = by_shown[m["timestamp_ms"]]  # each frame's display time is its record's, exactly
        assert m["render_ms"] == round(record.render_t_ms, 3)
        assert m["rtt_ms"] == round(record.shown_t_ms - record.render_t_ms, 3) and m["rtt_ms"] in (150.0, 180.0, 210.0)


def test_frame_records_that_do_not_describe_the_video_reject_the_session(stack, processor, tmp_path):
    path = tmp_path / "v.webm"
    frames = synthetic.write_vp8_webm(path, seconds=2.0, fps=20, width=320, height=180)
    for telemetry, detail in ((recorded_session(2.0, 20, frames - 5), "frames but the telemetry describes"),
                              (recorded_session(2.0, 20, frames, offset_ms=40.0), "its record says")):
        session_id = uuid.uuid4().hex
        telemetry.session_id = session_id
        report = wait_report(processor, publish_session(stack, tmp_path, video=path.read_bytes(), telemetry=telemetry.SerializeToString(), session_id=session_id))
        assert [(r.reason, r.metric) for r in report.rejections] == [(processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH, "frame_records")]
        assert detail in report.rejections[0].detail


def test_a_bot_drive_is_replayed_and_labelled_and_the_same_drive_with_edited_controls_is_rejected(stack, processor, tmp_path):
    """The processor replays each tick through the game's vehicle model: a genuine bot session is accepted and its
    frames carry traffic-light labels from the world clock it recorded; with a second of steering edited in after
    the drive, the same session is rejected with the replay's reason and metric."""
    import json

    from scalediffusion.sim.bots import BotConfig, play_session

    bot = play_session(31, BotConfig(seconds=6.0, width=320, height=180, fps=10, npc_vehicles=0, pedestrians=0))
    genuine = publish_session(stack, tmp_path, video=bot.video, telemetry=bot.telemetry.SerializeToString())
    forged_telemetry = type(bot.telemetry)()
    forged_telemetry.CopyFrom(bot.telemetry)
    for tick in forged_telemetry.ticks[120:180]:
        tick.controls.steer = -0.7
    forged = publish_session(stack, tmp_path, video=bot.video, telemetry=forged_telemetry.SerializeToString())

    report = wait_report(processor, genuine)
    assert report.segments and not [r for r in report.rejections if r.reason == processor_pb2.REJECTION_REASON_REPLAY_MISMATCH]
    seg = report.segments[0]
    measurements = json.loads(stack.store().get_bytes("clean", keys.measurements_key(seg.dataset, seg.segment_id)))
    assert all(m["light"] in ("none", "green", "yellow", "red") for m in measurements)

    rejected = stack.read_topic(events.SESSIONS_REJECTED, lambda r: r.key == forged.encode(), timeout_s=60)
    message = events.decode(rejected[0].value, rejected[0].headers, events_pb2.SessionRejected)
    (rejection,) = message.rejections
    assert rejection.reason == processor_pb2.REJECTION_REASON_REPLAY_MISMATCH
    assert rejection.metric == "replay_divergent_fraction" and rejection.value > rejection.threshold > 0
    assert "do not follow from the recorded controls" in rejection.detail


def test_a_video_that_does_not_show_the_recorded_drive_is_rejected(stack, processor, tmp_path):
    """The video check: each segment's raw frames are compared with the city re-rendered from their camera poses.
    Another drive's video under a genuine telemetry, and a genuine video under its own telemetry moved one block
    north (it replays cleanly: the same drive, on another street), are both rejected with VIDEO_MISMATCH and the
    agreement; the genuine pair is accepted with its agreement near 1."""
    from scalediffusion.sim.bots import BotConfig, play_session

    config = BotConfig(seconds=6.0, width=320, height=180, fps=10, npc_vehicles=0, pedestrians=0)
    drive, other = play_session(41, config), play_session(42, config)
    genuine = publish_session(stack, tmp_path, video=drive.video, telemetry=drive.telemetry.SerializeToString())
    swapped = publish_session(stack, tmp_path, video=other.video, telemetry=drive.telemetry.SerializeToString())
    moved = type(drive.telemetry)()
    moved.CopyFrom(drive.telemetry)
    for tick in moved.ticks:  # the block spacing north-south: same lanes, other facades
        tick.vehicle.y += 80.0
        tick.camera.position.y += 80.0
        if tick.HasField("target_point"):
            tick.target_point.y += 80.0
    rerouted = publish_session(stack, tmp_path, video=drive.video, telemetry=moved.SerializeToString())

    report = wait_report(processor, genuine)
    assert report.segments and not report.rejections, report.rejections
    for session in (swapped, rerouted):
        report = wait_report(processor, session)
        assert not report.segments, session
        mismatch = [r for r in report.rejections if r.reason == processor_pb2.REJECTION_REASON_VIDEO_MISMATCH]
        assert mismatch, report.rejections
        if session == rerouted:  # the moved poses replay cleanly: only the video gives it away
            assert {r.reason for r in report.rejections} == {processor_pb2.REJECTION_REASON_VIDEO_MISMATCH}
        rejection = mismatch[0]
        assert rejection.metric == "video_agreement" and rejection.value < rejection.threshold == 0.85
        assert "does not show the recorded drive" in rejection.detail


def test_accepted_frames_get_semantic_depth_and_boxes_by_replay_that_line_up_with_the_video(stack, processor, tmp_path):
    """Labels by replay through the running processor: every accepted frame of a bot drive (with traffic) gets a
    CARLA semantic map and depth image of the dataset frame's size and the boxes of the actors it shows. The semantic
    map's sky and road agree with the video frame itself (IoU over the drive, on pixels of those colours; the drive is
    recorded at the dataset's size, so frame and labels are the same pixels), and depth grows up the road ahead."""
    import json

    import cv2
    import numpy as np

    from scalediffusion.sim.bots import BotConfig, play_session
    from scalediffusion.sim.labels import decode_depth_carla

    bot = play_session(32, BotConfig(seconds=6.0, width=256, height=144, fps=10, npc_vehicles=20, npc_vehicles_min=20, pedestrians=8))
    session = publish_session(stack, tmp_path, video=bot.video, telemetry=bot.telemetry.SerializeToString())
    report = wait_report(processor, session)
    assert report.segments, report.rejections
    store = stack.store()
    sky, road_px, boxes = [0, 0], [0, 0], 0  # (intersection, union) pixel counts over the drive
    for seg in report.segments:
        index = store.get_json("clean", keys.dataset_index_key(seg.dataset, seg.segment_id))
        assert {"semantic", "depth"} <= set(index["label_streams"]) and "boxes" in index["replay_labels"]
        measurements = json.loads(store.get_bytes("clean", keys.measurements_key(seg.dataset, seg.segment_id)))
        for k, m in enumerate(measurements):
            frame = cv2.imdecode(np.frombuffer(store.get_bytes("clean", keys.frame_key(seg.dataset, seg.segment_id, k)), np.uint8), cv2.IMREAD_COLOR)
            semantic = cv2.imdecode(np.frombuffer(store.get_bytes("clean", keys.label_frame_key(seg.dataset, seg.segment_id, "semantic", k)), np.uint8), cv2.IMREAD_UNCHANGED)
            depth_bgr = cv2.imdecode(np.frombuffer(store.get_bytes("clean", keys.label_frame_key(seg.dataset, seg.segment_id, "depth", k)), np.uint8), cv2.IMREAD_COLOR)
            assert semantic.shape == frame.shape[:2] == depth_bgr.shape[:2] and semantic.dtype == np.uint8
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(int)
            # The video's own sky and asphalt colours (VP8's colour conversion shifts them a little): pixels near
            # them are sky / road in the picture. Nothing else is near the sky's colour, so its tolerance can absorb
            # VP8's blur along the thin strips of sky between towers; grey facades come close to the asphalt's.
            sky_video = np.abs(rgb - np.median(rgb[semantic == 11], axis=0)).max(axis=2) <= 16
            sky[0] += int((sky_video & (semantic == 11)).sum())
            sky[1] += int((sky_video | (semantic == 11)).sum())
            road = semantic == 1
            road_video = np.abs(rgb - np.median(rgb[road], axis=0)).max(axis=2) <= 10
            road_px[0] += int((road_video & road).sum())
            road_px[1] += int((road_video | road).sum())
            depth = decode_depth_carla(cv2.cvtColor(depth_bgr, cv2.COLOR_BGR2RGB))
            column = [depth[r, semantic.shape[1] // 2] for r in range(semantic.shape[0] - 1, -1, -1) if road[r, semantic.shape[1] // 2]]
            assert all(b >= a - 0.05 for a, b in zip(column, column[1:])), "depth grows up the road ahead"
            assert (depth[semantic == 11] >= 999.0).all(), "the sky is at CARLA's far plane"
            for box in m["boxes"]:
                x0, y0, x1, y1 = box["box2d"]
                assert 0 <= x0 < x1 <= semantic.shape[1] and 0 <= y0 < y1 <= semantic.shape[0]
                want = 14 if box["class"] == "car" else 12
                assert (semantic[y0:y1, x0:x1] == want).any()
                boxes += 1
    # Measured 0.998 and 0.961 on this drive. The road's colour mask also takes in facade pixels as dark as the
    # asphalt (labelled building, rightly): on a street of dark facades (seed 33) the road's IoU was 0.875, against
    # 0.99 for the uncompressed render (tests/unit/test_sim_labels.py).
    assert sky[0] / sky[1] >= 0.9 and road_px[0] / road_px[1] >= 0.9, (sky[0] / sky[1], road_px[0] / road_px[1])
    assert boxes > 0, "this drive passes cars (its own traffic, from Telemetry.drawn_actors)"


def test_a_cluster_processor_rejects_a_session_on_a_world_it_does_not_know(stack, tmp_path):
    """A drive on an unknown world can be neither replayed nor checked against its video: a processor with the
    cluster's default (SD_UNKNOWN_WORLDS=reject) rejects it with the reason; the local stack's accepts its
    synthetic sessions."""
    from services.processor.worker import SessionWorker, WorkerSettings

    session_id = publish_session(stack, tmp_path)  # a synthetic session, world "synthetic"
    worker = SessionWorker(stack.store(), stack.bus(), WorkerSettings(dataset="unknown-worlds", plot=False), "clean")
    try:
        message = events_pb2.SessionUploaded(session_id=session_id, player_id="p-proc", bucket="raw", attempt=1,
                                             video_key=keys.video_key("p-proc", session_id),
                                             telemetry_key=keys.telemetry_key("p-proc", session_id))
        report = worker.process(message)
    finally:
        worker.close()
    assert not report.segments
    (rejection,) = report.rejections
    assert rejection.reason == processor_pb2.REJECTION_REASON_TELEMETRY_INVALID and rejection.metric == "world_id"
    assert "not one this deployment knows" in rejection.detail
