"""One session travels the whole path on the real stack: StartSession -> presigned uploads to S3 ->
CompleteSession -> sessions.uploaded -> processor -> clean bucket + segments.ready -> trainer lists the segment."""

from __future__ import annotations

import json
import time

import cv2
import grpc
import numpy as np
import pytest

from scalediffusion import synthetic
from scalediffusion.platform import events
from scalediffusion.uploader import upload_session
from scalediffusion.v1 import events_pb2, ingest_pb2, processor_pb2, trainer_pb2

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def recorded_session(tmp_path_factory):
    """A 6.5 s VP8 webm with moving texture and telemetry with a scripted right turn at 2-4 s."""
    path = tmp_path_factory.mktemp("video") / "video.webm"
    frames = synthetic.write_vp8_webm(path, seconds=6.5, fps=30, width=640, height=360)
    telemetry = synthetic.make_telemetry("", seconds=7.0)
    return path.read_bytes(), telemetry.SerializeToString(), frames


def wait_for_report(processor, session_id: str, timeout_s: float = 90) -> processor_pb2.QualityReport:
    """The processor writes the session report after all of its segments, so once it exists every segment is listed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return processor.GetSessionReport(processor_pb2.GetSessionReportRequest(session_id=session_id))
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND, err
        time.sleep(0.3)
    raise AssertionError(f"session {session_id} was not processed within {timeout_s} s")


def test_session_travels_from_start_session_to_a_listed_segment(stack, ingest, processor, trainer, recorded_session):
    video, telemetry, frames_written = recorded_session
    player = stack.auth("e2e-player")
    uploaded = upload_session(ingest, video, telemetry, metadata=player)
    assert uploaded.session.state == ingest_pb2.SESSION_STATE_UPLOADED

    report = wait_for_report(processor, uploaded.session_id)
    listed = trainer.ListSegments(trainer_pb2.ListSegmentsRequest(dataset="default"))
    segments = [s for s in listed.segments if s.session_id == uploaded.session_id]
    # 6.5 s of video: one 5 s segment plus a 1.5 s tail, kept because it is over the 1 s minimum.
    assert [s.segment_id for s in segments] == [f"route_{uploaded.session_id}_000", f"route_{uploaded.session_id}_001"]
    store = stack.store()
    total_frames = 0
    for seg in segments:
        measurements = json.loads(store.get_bytes(seg.bucket, seg.prefix + "measurements.json"))
        jpeg_keys = sorted(k for k in store.list_keys(seg.bucket, seg.prefix + "rgb_front/"))
        assert len(measurements) == seg.frame_count == len(jpeg_keys), "one measurements entry per frame"
        assert jpeg_keys[0].endswith("rgb_front/00000.jpg")
        for key in jpeg_keys[:: max(1, len(jpeg_keys) // 10)]:
            image = cv2.imdecode(np.frombuffer(store.get_bytes(seg.bucket, key), np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (144, 256, 3), "256 wide, the 640x360 camera's aspect kept"
        assert (seg.width, seg.height) == (256, 144)
        for m in measurements:
            assert set(m) >= {"x", "y", "theta", "speed", "steer", "throttle", "brake", "command", "timestamp_ms"}
        # The scripted controls reach the right frames: hard right 2-4 s, straight before.
        turning = [m for m in measurements if 2100 <= m["timestamp_ms"] <= 3900]
        straight = [m for m in measurements if m["timestamp_ms"] < 1900]
        if turning:
            assert all(m["steer"] == pytest.approx(0.6) and m["command"] == 2 for m in turning)
        if straight:
            assert all(m["steer"] == 0.0 and m["command"] == 4 for m in straight)
        total_frames += seg.frame_count
        assert all(len(m["waypoints"]) == 4 and "target_speed" in m for m in measurements)
    # The processor writes 10 Hz by default: every third frame of the 30 fps recording, none twice.
    assert abs(total_frames - frames_written / 3) <= 2

    # segments.ready was published for it, keyed by session id.
    ready = stack.read_topic(events.SEGMENTS_READY, lambda r: r.key == uploaded.session_id.encode())
    assert {events.decode(r.value, r.headers, events_pb2.SegmentReady).segment.segment_id for r in ready} == {s.segment_id for s in segments}

    assert [s.segment_id for s in report.segments] == [s.segment_id for s in segments]
    assert report.decoded_frames == frames_written
    assert not report.rejections

    # The work shows in the processor's Prometheus metrics.
    import urllib3

    metrics = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{stack.layout.services['processor'].metrics}/metrics").data.decode()
    assert 'sd_processor_sessions_total{outcome="accepted"}' in metrics
    assert 'sd_consumer_records_total{group="processor",outcome="handled",topic="sessions.uploaded"}' in metrics

    datasets = trainer.ListDatasets(trainer_pb2.ListDatasetsRequest())
    assert "default" in [d.name for d in datasets.datasets]

    # Ingest hears segments.ready: the session is ACCEPTED and the player credited once per segment.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        session = ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=uploaded.session_id), metadata=player)
        rewards = ingest.GetRewards(ingest_pb2.GetRewardsRequest(), metadata=player)
        if session.state == ingest_pb2.SESSION_STATE_ACCEPTED and len(rewards.entries) == len(segments):
            break
        time.sleep(0.3)
    assert session.state == ingest_pb2.SESSION_STATE_ACCEPTED
    assert sorted(session.segment_ids) == [s.segment_id for s in segments]
    assert rewards.balance == 10 * len(segments)
    assert {e.segment_id for e in rewards.entries} == {s.segment_id for s in segments}

    # Reprocess runs the finished session again: same keys, same bytes, and no reward is credited twice.
    first_bytes = {k: store.get_bytes("clean", k) for s in segments for k in store.list_keys("clean", s.prefix)}
    ready_before = len(stack.read_topic(events.SEGMENTS_READY, lambda r: r.key == uploaded.session_id.encode(), timeout_s=3))
    assert processor.Reprocess(processor_pb2.ReprocessRequest(session_id=uploaded.session_id)).queued
    deadline = time.monotonic() + 60
    while len(stack.read_topic(events.SEGMENTS_READY, lambda r: r.key == uploaded.session_id.encode(), timeout_s=2)) < ready_before + len(segments):
        assert time.monotonic() < deadline, "the reprocessed session published its segments again"
    assert {k: store.get_bytes("clean", k) for s in segments for k in store.list_keys("clean", s.prefix)} == first_bytes
    time.sleep(1.5)
    assert ingest.GetRewards(ingest_pb2.GetRewardsRequest(), metadata=player).balance == 10 * len(segments)
