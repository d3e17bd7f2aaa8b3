"""IngestService over a real gRPC socket against real S3 and the broker: bad input gets a status with a reason."""

from __future__ import annotations

import grpc
import pytest

from scalediffusion import events, synthetic
from scalediffusion.uploader import upload_session, upload_to_target
from scalediffusion.v1 import ingest_pb2


def rpc_error(call, *args) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value


def test_complete_session_for_unknown_session_is_not_found(ingest):
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id="0000000000000000dead"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "does not exist" in err.details()


def test_complete_session_with_objects_missing_is_failed_precondition(ingest):
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(player_id="p-missing"))
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("object_missing:")
    # Only the video uploaded: still refused, naming the telemetry object.
    video = next(t for t in started.targets if t.kind == ingest_pb2.UPLOAD_KIND_VIDEO)
    upload_to_target(video, b"\x1aE\xdf\xa3 not really a webm")
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TELEMETRY" in err.details()
    assert ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=started.session_id)).state == ingest_pb2.SESSION_STATE_CREATED


def test_declared_size_that_differs_from_the_stored_object_is_refused(ingest):
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(player_id="p-size"))
    for target in started.targets:
        upload_to_target(target, b"x" * 100)
    request = ingest_pb2.CompleteSessionRequest(
        session_id=started.session_id,
        objects=[ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO, size_bytes=99)],
    )
    err = rpc_error(ingest.CompleteSession, request)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("object_size:")


@pytest.mark.parametrize("session_id", ["", "../etc/passwd", "a/b", "x" * 200])
def test_malformed_session_ids_are_invalid_argument(ingest, session_id):
    err = rpc_error(ingest.GetSession, ingest_pb2.GetSessionRequest(session_id=session_id))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_key_outside_the_session_is_invalid_argument(ingest):
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(player_id="p-key"))
    request = ingest_pb2.CompleteSessionRequest(
        session_id=started.session_id,
        objects=[ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO, key="someone-else/123/video.webm")],
    )
    err = rpc_error(ingest.CompleteSession, request)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "object_key" in err.details()


def test_complete_session_twice_records_one_session_and_one_event(stack, ingest, tmp_path):
    telemetry = synthetic.make_telemetry("twice", seconds=1.0).SerializeToString()
    uploaded = upload_session(ingest, b"\x1aE\xdf\xa3" + b"0" * 1000, telemetry, player_id="p-twice")
    again = ingest.CompleteSession(ingest_pb2.CompleteSessionRequest(session_id=uploaded.session_id))
    assert again.session.state == ingest_pb2.SESSION_STATE_UPLOADED
    assert again.session.session_id == uploaded.session_id
    published = stack.read_topic(events.SESSIONS_UPLOADED, lambda r: r.key == uploaded.session_id.encode(), timeout_s=10)
    assert len(published) == 1


def test_list_sessions_filters_by_player_and_pages(ingest):
    ids = [ingest.StartSession(ingest_pb2.StartSessionRequest(player_id="p-list")).session_id for _ in range(3)]
    first = ingest.ListSessions(ingest_pb2.ListSessionsRequest(player_id="p-list", page=dict(page_size=2)))
    assert len(first.sessions) == 2 and first.next_page_token
    second = ingest.ListSessions(ingest_pb2.ListSessionsRequest(player_id="p-list", page=dict(page_size=2, page_token=first.next_page_token)))
    assert [s.session_id for s in [*first.sessions, *second.sessions]] == ids
    err = rpc_error(ingest.ListSessions, ingest_pb2.ListSessionsRequest(page=dict(page_token="%%%")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_rpcs_not_built_yet_say_so(ingest, diffusion):
    from scalediffusion.v1 import diffusion_pb2

    err = rpc_error(ingest.IssueToken, ingest_pb2.IssueTokenRequest(player_id="p"))
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED and "ingest issue" in err.details()
    err = rpc_error(diffusion.OpenStream, diffusion_pb2.OpenStreamRequest())
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED and "not built yet" in err.details()
