"""The processor as a consumer-group member on the real broker: poison records are dead-lettered and the
consumer keeps going; sessions it cannot use are rejected with a machine-readable reason."""

from __future__ import annotations

import time
import uuid

from scalediffusion import events, synthetic
from scalediffusion.uploader import upload_session
from scalediffusion.v1 import events_pb2, processor_pb2, trainer_pb2


def test_unparsable_message_goes_to_the_dead_letter_topic_and_the_consumer_keeps_going(stack, ingest, trainer, tmp_path):
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
    path = tmp_path / "v.webm"
    synthetic.write_vp8_webm(path, seconds=1.5, fps=20, width=320, height=180)
    uploaded = upload_session(ingest, path.read_bytes(), synthetic.make_telemetry("after", 2.0).SerializeToString(), player_id="p-after-poison")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        segs = trainer.ListSegments(trainer_pb2.ListSegmentsRequest(dataset="default")).segments
        if any(s.session_id == uploaded.session_id for s in segs):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("a valid session after poison records was not processed")


def test_undecodable_video_is_rejected_with_a_reason(stack, ingest, processor):
    telemetry = synthetic.make_telemetry("garbage", seconds=1.0).SerializeToString()
    uploaded = upload_session(ingest, b"\x1aE\xdf\xa3" + bytes(range(256)) * 40, telemetry, player_id="p-garbage")
    rejected = stack.read_topic(events.SESSIONS_REJECTED, lambda r: r.key == uploaded.session_id.encode(), timeout_s=60)
    assert len(rejected) == 1
    message = events.decode(rejected[0].value, rejected[0].headers, events_pb2.SessionRejected)
    assert [r.reason for r in message.rejections] == [processor_pb2.REJECTION_REASON_VIDEO_UNDECODABLE]
    report = processor.GetSessionReport(processor_pb2.GetSessionReportRequest(session_id=uploaded.session_id))
    assert report.rejections[0].metric == "decoded_frames"


def test_unparsable_telemetry_is_rejected_with_a_reason(stack, ingest, tmp_path):
    path = tmp_path / "v.webm"
    synthetic.write_vp8_webm(path, seconds=1.5, fps=20, width=320, height=180)
    uploaded = upload_session(ingest, path.read_bytes(), b"\x08\x07\x12garbage", player_id="p-badtele")
    rejected = stack.read_topic(events.SESSIONS_REJECTED, lambda r: r.key == uploaded.session_id.encode(), timeout_s=60)
    message = events.decode(rejected[0].value, rejected[0].headers, events_pb2.SessionRejected)
    assert message.rejections[0].reason == processor_pb2.REJECTION_REASON_TELEMETRY_INVALID
