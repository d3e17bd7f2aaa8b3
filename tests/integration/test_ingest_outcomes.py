"""What ingest accepts is never lost or double-counted: crash between manifest and event, duplicate videos,
impossible telemetry, rewards credited once, payouts exported per wallet."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from scalediffusion import synthetic
from scalediffusion.platform import events
from scalediffusion.uploader import upload_session
from scalediffusion.v1 import events_pb2, ingest_pb2, processor_pb2
from tests.conftest import REPO
from tests.integration.conftest import unique_video
from tests.integration.test_ingest_security import GOOD_WALLET


def wait_state(ingest, session_id: str, metadata, states, timeout_s: float = 60) -> ingest_pb2.Session:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        session = ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=session_id), metadata=metadata)
        if session.state in states:
            return session
        time.sleep(0.3)
    raise AssertionError(f"session {session_id} stayed {ingest_pb2.SessionState.Name(session.state)}")


def test_same_video_bytes_twice_rejects_the_second_as_duplicate(stack, ingest, small_session):
    video, telemetry = small_session
    video = unique_video(video, "dup")
    first = upload_session(ingest, video, telemetry, metadata=stack.auth("dup-a"))
    assert first.session.state == ingest_pb2.SESSION_STATE_UPLOADED, first.session.rejections
    for player in ("dup-a", "dup-b"):
        second = upload_session(ingest, video, telemetry, metadata=stack.auth(player))
        assert second.session.state == ingest_pb2.SESSION_STATE_REJECTED
        rejection = second.session.rejections[0]
        assert (rejection.reason, rejection.metric) == (processor_pb2.REJECTION_REASON_DUPLICATE, "duplicate_video")
        assert first.session_id not in str(rejection)  # no other player's session id leaks
    assert not stack.read_topic(events.SESSIONS_UPLOADED, lambda r: r.key == second.session_id.encode(), timeout_s=3)


def test_telemetry_that_cannot_have_produced_the_video_is_rejected_and_the_fixed_upload_is_accepted(stack, ingest, small_session):
    video, good_telemetry = small_session
    long_telemetry = synthetic.make_telemetry("", seconds=30.0, video_fps=15, width=160, height=96).SerializeToString()
    uploaded = upload_session(ingest, unique_video(video, "mismatch"), long_telemetry, metadata=stack.auth("p-mismatch"))
    assert uploaded.session.state == ingest_pb2.SESSION_STATE_REJECTED
    rejection = uploaded.session.rejections[0]
    assert (rejection.reason, rejection.metric) == (processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH, "video_duration_mismatch")
    assert "video lasts" in rejection.detail
    fixed = upload_session(ingest, unique_video(video, "mismatch"), good_telemetry, metadata=stack.auth("p-mismatch"))
    assert fixed.session.state == ingest_pb2.SESSION_STATE_UPLOADED, fixed.session.rejections  # not "used up"
    fast = synthetic.make_telemetry("", seconds=2.0, video_fps=2, width=160, height=96).SerializeToString()
    uploaded = upload_session(ingest, unique_video(video, "fps"), fast, metadata=stack.auth("p-mismatch"))
    assert uploaded.session.rejections[0].metric == "video_frame_rate"


def test_crash_between_manifest_and_event_is_recovered_by_the_reconciler_and_processed_once(stack, ingest, processor, extra_ingest, small_session):
    video, telemetry = small_session
    me = stack.auth("p-crash")
    hooks = str(Path(__file__).parent / "crash_hooks") + os.pathsep + os.environ.get("PYTHONPATH", "")
    crashing, record = extra_ingest({"PYTHONPATH": hooks, "SD_TEST_CRASH_POINT": "after_manifest", "SD_INGEST_RECONCILE_S": "3600"},
                                    name="ingest-crash")
    with pytest.raises(grpc.RpcError) as info:
        upload_session(crashing, unique_video(video, "crash"), telemetry, metadata=me)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    deadline = time.monotonic() + 10
    while record.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not record.alive(), "the ingest process died between writing the manifest and publishing"
    session_id = next(
        s.session_id for s in ingest.ListSessions(ingest_pb2.ListSessionsRequest(), metadata=me).sessions
    )
    # Restart ingest (no crash point); it and the stack's own ingest both reconcile the same bucket.
    extra_ingest({"SD_INGEST_RECONCILE_S": "0.5"}, name="ingest-restarted")
    session = wait_state(ingest, session_id, me, (ingest_pb2.SESSION_STATE_ACCEPTED, ingest_pb2.SESSION_STATE_REJECTED))
    assert session.state == ingest_pb2.SESSION_STATE_ACCEPTED
    report = processor.GetSessionReport(processor_pb2.GetSessionReportRequest(session_id=session_id))
    time.sleep(2)  # let any second publish of the event reach the processor
    ready = stack.read_topic(events.SEGMENTS_READY, lambda r: r.key == session_id.encode(), timeout_s=5)
    assert len(ready) == len(report.segments) >= 1, "exactly once downstream: one segments.ready per segment"
    rewards = ingest.GetRewards(ingest_pb2.GetRewardsRequest(), metadata=me)
    assert rewards.balance == 10 * len(report.segments)


def test_the_processors_typed_rejections_land_on_the_session_as_they_were_sent(stack, ingest):
    me = stack.auth("p-typed")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    sent = [processor_pb2.Rejection(reason=processor_pb2.REJECTION_REASON_BLUR, metric="laplacian_var", value=12.5,
                                    threshold=40.0, start_frame=0, end_frame=150),
            processor_pb2.Rejection(reason=processor_pb2.REJECTION_REASON_IMPLAUSIBLE_MOTION, metric="speed_jump",
                                    value=31.0, threshold=15.0, detail="teleport at tick 42")]
    bus = stack.bus()
    bus.publish(events.SESSIONS_REJECTED, started.session_id,
                events_pb2.SessionRejected(session_id=started.session_id, rejections=sent))
    bus.close()
    session = wait_state(ingest, started.session_id, me, (ingest_pb2.SESSION_STATE_REJECTED,), timeout_s=30)
    assert list(session.rejections) == sent  # the enum, the metric, its value and threshold: nothing flattened


def test_rewards_are_credited_once_when_segments_ready_is_delivered_twice(stack, ingest):
    me = stack.auth("p-rewards")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    segment = processor_pb2.SegmentInfo(segment_id=f"route_{started.session_id}_000", session_id=started.session_id, dataset="default", frame_count=75)
    bus = stack.bus()
    for _ in range(2):
        bus.publish(events.SEGMENTS_READY, started.session_id, events_pb2.SegmentReady(segment=segment, player_id="p-rewards"))
    bus.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rewards = ingest.GetRewards(ingest_pb2.GetRewardsRequest(), metadata=me)
        if rewards.entries:
            break
        time.sleep(0.3)
    time.sleep(2)  # the second delivery is handled by now (one consumer, in order)
    rewards = ingest.GetRewards(ingest_pb2.GetRewardsRequest(), metadata=me)
    assert [e.segment_id for e in rewards.entries] == [segment.segment_id]
    assert rewards.balance == 10
    session = ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=started.session_id), metadata=me)
    assert list(session.segment_ids) == [segment.segment_id] and session.segment_count == 1


def test_operator_exports_pending_payouts_per_wallet_as_csv(stack, ingest):
    ops = stack.auth("ops", operator=True)
    ingest.IssueToken(ingest_pb2.IssueTokenRequest(player_id="p-payout", wallet_address=GOOD_WALLET), metadata=ops)
    me = stack.auth("p-payout")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    bus = stack.bus()
    for i in range(3):
        seg = processor_pb2.SegmentInfo(segment_id=f"route_{started.session_id}_{i:03d}", session_id=started.session_id)
        bus.publish(events.SEGMENTS_READY, started.session_id, events_pb2.SegmentReady(segment=seg, player_id="p-payout"))
    bus.close()
    deadline = time.monotonic() + 30
    while ingest.GetRewards(ingest_pb2.GetRewardsRequest(), metadata=me).balance < 30 and time.monotonic() < deadline:
        time.sleep(0.3)
    env = {**os.environ, **stack.local.service_env(stack.state, "ingest")}

    def export(*extra: str) -> dict[str, dict]:
        result = subprocess.run([sys.executable, "-m", "services.ingest.admin", "export-payouts", *extra], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return {row["player_id"]: row for row in csv.DictReader(io.StringIO(result.stdout))}

    rows = export()
    assert rows["p-payout"] == {"wallet_address": GOOD_WALLET, "player_id": "p-payout", "points": "30"}
    export("--mark-paid", "batch-1")
    assert "p-payout" not in export(), "exported points are no longer pending"


def test_label_streams_upload_beside_the_video_and_travel_in_the_event(stack, ingest, small_session):
    video, telemetry = small_session
    labels = {"semantic": b"\x1aE\xdf\xa3 semantic labels", "depth": b"\x1aE\xdf\xa3 depth labels"}
    uploaded = upload_session(ingest, unique_video(video, "labels"), telemetry, metadata=stack.auth("p-labels"), labels=labels)
    assert uploaded.session.state == ingest_pb2.SESSION_STATE_UPLOADED, uploaded.session.rejections
    assert sorted(uploaded.session.label_streams) == ["depth", "semantic"]
    stored = {o.label_stream: o for o in uploaded.session.objects if o.kind == ingest_pb2.UPLOAD_KIND_LABELS}
    assert stored["depth"].key == f"p-labels/{uploaded.session_id}/labels/depth.webm" and stored["depth"].size_bytes == len(labels["depth"])
    published = stack.read_topic(events.SESSIONS_UPLOADED, lambda r: r.key == uploaded.session_id.encode(), timeout_s=10)
    message = events.decode(published[0].value, published[0].headers, events_pb2.SessionUploaded)
    assert dict(message.label_keys) == {name: stored[name].key for name in labels}


def test_impossible_recording_times_are_refused_at_complete_and_the_session_stays_open_for_the_fix(stack, ingest, small_session):
    """A NaN/negative recording start or a stop before it would lose the session in the processor: CompleteSession
    answers INVALID_ARGUMENT naming the check, the session stays CREATED, and re-uploading fixed telemetry to the
    same targets completes it."""
    from scalediffusion.uploader import upload_to_target
    from scalediffusion.v1 import telemetry_pb2

    video, telemetry_bytes = small_session
    me = stack.auth("p-rec-times")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(content_type="video/webm"), metadata=me)
    good = telemetry_pb2.Telemetry.FromString(telemetry_bytes)
    for bad_start, bad_stop in ((float("nan"), 0.0), (-20.0, 0.0), (500.0, 100.0)):
        broken = telemetry_pb2.Telemetry()
        broken.CopyFrom(good)
        broken.recording_start_t_ms, broken.recording_stop_t_ms = bad_start, bad_stop
        payload = {ingest_pb2.UPLOAD_KIND_VIDEO: unique_video(video, "rec-times"),
                   ingest_pb2.UPLOAD_KIND_TELEMETRY: broken.SerializeToString()}
        for target in started.targets:
            upload_to_target(target, payload[target.kind])
        with pytest.raises(grpc.RpcError) as info:
            ingest.CompleteSession(ingest_pb2.CompleteSessionRequest(session_id=started.session_id), metadata=me)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith("telemetry_recording:"), info.value.details()
        session = ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=started.session_id), metadata=me)
        assert session.state == ingest_pb2.SESSION_STATE_CREATED
    for target in started.targets:
        if target.kind == ingest_pb2.UPLOAD_KIND_TELEMETRY:
            upload_to_target(target, telemetry_bytes)
    done = ingest.CompleteSession(ingest_pb2.CompleteSessionRequest(session_id=started.session_id), metadata=me)
    assert done.session.state == ingest_pb2.SESSION_STATE_UPLOADED, done.session.rejections
