"""IngestService over a real gRPC socket against real S3 and the broker: bad input gets a status with a reason,
and completion is idempotent."""

from __future__ import annotations

import grpc
import pytest

from scalediffusion.platform import events
from scalediffusion.uploader import upload_session, upload_to_target
from scalediffusion.v1 import ingest_pb2
from tests.integration.conftest import unique_video


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, **kwargs)
    return info.value


def test_complete_session_for_unknown_session_is_not_found(stack, ingest):
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id="0000000000000000dead"), metadata=stack.auth("p-unknown"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "does not exist" in err.details()


def test_complete_session_with_objects_missing_is_failed_precondition(stack, ingest):
    me = stack.auth("p-missing")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id), metadata=me)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details().startswith("object_missing:")
    video = next(t for t in started.targets if t.kind == ingest_pb2.UPLOAD_KIND_VIDEO)
    upload_to_target(video, b"\x1aE\xdf\xa3 not really a webm")
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id), metadata=me)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "TELEMETRY" in err.details()
    assert ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=started.session_id), metadata=me).state == ingest_pb2.SESSION_STATE_CREATED


def test_declared_size_or_checksum_that_differs_from_the_stored_object_is_refused(stack, ingest):
    me = stack.auth("p-size")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    for target in started.targets:
        upload_to_target(target, b"x" * 100)
    objects = [ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO, size_bytes=99)]
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id, objects=objects), metadata=me)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and err.details().startswith("object_size:")
    objects = [ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO, sha256="00" * 32)]
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id, objects=objects), metadata=me)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and err.details().startswith("object_checksum:")


@pytest.mark.parametrize("session_id", ["", "../etc/passwd", "a/b", "x" * 200])
def test_malformed_session_ids_are_invalid_argument(stack, ingest, session_id):
    err = rpc_error(ingest.GetSession, ingest_pb2.GetSessionRequest(session_id=session_id), metadata=stack.auth("p-ids"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_key_outside_the_session_is_invalid_argument(stack, ingest):
    me = stack.auth("p-key")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    objects = [ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO, key="someone-else/123/video.webm")]
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id, objects=objects), metadata=me)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "object_key" in err.details()


def test_complete_session_twice_records_one_session_and_one_event(stack, ingest, small_session):
    video, telemetry = small_session
    me = stack.auth("p-twice")
    uploaded = upload_session(ingest, unique_video(video, "twice"), telemetry, metadata=me)
    assert uploaded.session.state == ingest_pb2.SESSION_STATE_UPLOADED, uploaded.session.rejections
    again = ingest.CompleteSession(ingest_pb2.CompleteSessionRequest(session_id=uploaded.session_id), metadata=me)
    assert again.session.session_id == uploaded.session_id
    assert again.session.state != ingest_pb2.SESSION_STATE_CREATED
    published = stack.read_topic(events.SESSIONS_UPLOADED, lambda r: r.key == uploaded.session_id.encode(), timeout_s=10)
    assert len(published) == 1


def test_concurrent_completions_make_one_session_and_one_event(stack, ingest, small_session):
    from concurrent.futures import ThreadPoolExecutor

    video, telemetry = small_session
    me = stack.auth("p-race")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    data = {ingest_pb2.UPLOAD_KIND_VIDEO: unique_video(video, "race"), ingest_pb2.UPLOAD_KIND_TELEMETRY: telemetry}
    for target in started.targets:
        upload_to_target(target, data[target.kind])
    request = ingest_pb2.CompleteSessionRequest(session_id=started.session_id)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _complete_or_code(ingest, request, me), range(4)))
    assert all(r in ("UPLOADED", "PROCESSING", "ACCEPTED", "ABORTED") for r in results), results
    published = stack.read_topic(events.SESSIONS_UPLOADED, lambda r: r.key == started.session_id.encode(), timeout_s=10)
    assert len(published) == 1


def _complete_or_code(ingest, request, metadata) -> str:
    try:
        return ingest_pb2.SessionState.Name(ingest.CompleteSession(request, metadata=metadata).session.state).removeprefix("SESSION_STATE_")
    except grpc.RpcError as err:
        return err.code().name


def test_list_sessions_filters_by_player_and_pages(stack, ingest):
    me = stack.auth("p-list")
    ids = [ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me).session_id for _ in range(3)]
    first = ingest.ListSessions(ingest_pb2.ListSessionsRequest(page=dict(page_size=2)), metadata=me)
    assert len(first.sessions) == 2 and first.next_page_token
    second = ingest.ListSessions(ingest_pb2.ListSessionsRequest(page=dict(page_size=2, page_token=first.next_page_token)), metadata=me)
    assert [s.session_id for s in [*first.sessions, *second.sessions]] == ids
    created = ingest.ListSessions(ingest_pb2.ListSessionsRequest(state=ingest_pb2.SESSION_STATE_CREATED), metadata=me)
    assert [s.session_id for s in created.sessions] == ids
    err = rpc_error(ingest.ListSessions, ingest_pb2.ListSessionsRequest(page=dict(page_token="%%%")), metadata=me)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = rpc_error(ingest.ListSessions, ingest_pb2.ListSessionsRequest(player_id="someone-else"), metadata=me)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    ops = ingest.ListSessions(ingest_pb2.ListSessionsRequest(player_id="p-list"), metadata=stack.auth("ops", operator=True))
    assert [s.session_id for s in ops.sessions] == ids
