"""The front door: tokens, ownership, presigned POST policies enforced by S3 itself, limits, expiry."""

from __future__ import annotations

import time

import grpc
import pytest
import urllib3

from scalediffusion.uploader import UploadRejected, upload_session, upload_to_target
from scalediffusion.v1 import ingest_pb2
from services.ingest.auth import PLAYER, TokenSigner
from tests.integration.conftest import unique_video
from tests.integration.test_ingest_rpcs import rpc_error

GOOD_WALLET = "7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV"  # a well-formed 32-byte base58 key


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


# -- tokens ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata, reason",
    [
        ((), "missing"),
        ((("authorization", "Basic abc"),), "malformed"),
        (bearer("not.a.jwt"), "signature"),
        (bearer(TokenSigner(b"k" * 32).issue("p1", PLAYER, 3600, time.time())[0]), "signature"),
    ],
)
def test_calls_without_valid_credentials_are_unauthenticated(ingest, metadata, reason):
    err = rpc_error(ingest.StartSession, ingest_pb2.StartSessionRequest(), metadata=metadata)
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.details().startswith(reason)


def test_expired_token_is_unauthenticated(stack, ingest):
    signer = TokenSigner(stack.state.credentials["token_key"].encode())
    token, _ = signer.issue("p-old", PLAYER, ttl_s=60, now=time.time() - 3600)
    err = rpc_error(ingest.StartSession, ingest_pb2.StartSessionRequest(), metadata=bearer(token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and err.details().startswith("expired")


def test_operator_issues_and_revokes_tokens_and_a_revoked_token_is_unauthenticated(stack, ingest):
    ops = stack.auth("ops", operator=True)
    issued = ingest.IssueToken(ingest_pb2.IssueTokenRequest(player_id="p-revoke", wallet_address=GOOD_WALLET), metadata=ops)
    assert issued.player.wallet_address == GOOD_WALLET and issued.token_id
    ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=bearer(issued.token))
    ingest.RevokeToken(ingest_pb2.RevokeTokenRequest(token_id=issued.token_id), metadata=ops)
    err = rpc_error(ingest.StartSession, ingest_pb2.StartSessionRequest(), metadata=bearer(issued.token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and err.details().startswith("revoked")


def test_players_cannot_issue_tokens(stack, ingest):
    err = rpc_error(ingest.IssueToken, ingest_pb2.IssueTokenRequest(player_id="p-x"), metadata=stack.auth("p-sneaky"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    "wallet, reason",
    [
        ("0OIl" * 10, "not a Solana address"),
        ("abc", "32-44 base58 characters"),
        ("1111111111111111111111111111111111", "decodes to 32 bytes"),  # 34 chars that decode to 34 zero bytes
    ],
)
def test_bad_wallet_addresses_are_invalid_argument_with_a_reason(stack, ingest, wallet, reason):
    err = rpc_error(ingest.RegisterWallet, ingest_pb2.RegisterWalletRequest(wallet_address=wallet), metadata=stack.auth("p-wallet"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason in err.details()


def test_a_good_wallet_is_recorded(stack, ingest):
    reply = ingest.RegisterWallet(ingest_pb2.RegisterWalletRequest(wallet_address=GOOD_WALLET), metadata=stack.auth("p-wallet-ok"))
    assert reply.player.player_id == "p-wallet-ok" and reply.player.wallet_address == GOOD_WALLET


def test_another_players_session_is_permission_denied(stack, ingest):
    alice, bob = stack.auth("alice"), stack.auth("bob")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=alice)
    for call, request in (
        (ingest.GetSession, ingest_pb2.GetSessionRequest(session_id=started.session_id)),
        (ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id)),
    ):
        err = rpc_error(call, request, metadata=bob)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=started.session_id), metadata=alice).player_id == "alice"


# -- upload targets: S3 enforces them -----------------------------------------------------------------------


def post_with_key(target: ingest_pb2.UploadTarget, key: str, data: bytes, content_type: str | None = None) -> urllib3.BaseHTTPResponse:
    fields = dict(target.form_fields)
    fields["key"] = key
    if content_type:
        fields["Content-Type"] = content_type
    fields["file"] = ("upload", data, fields["Content-Type"])
    return urllib3.PoolManager().request("POST", target.url, fields=fields)


def test_upload_target_cannot_write_another_players_key_or_any_other_key(stack, ingest):
    a = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=stack.auth("upload-a"))
    b = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=stack.auth("upload-b"))
    a_video = next(t for t in a.targets if t.kind == ingest_pb2.UPLOAD_KIND_VIDEO)
    b_video = next(t for t in b.targets if t.kind == ingest_pb2.UPLOAD_KIND_VIDEO)
    assert a_video.method == "POST" and a_video.key.startswith("upload-a/")
    for key in (b_video.key, "upload-a/other-session/video.webm", f"upload-a/{a.session_id}/telemetry.pb", "_sessions/evil.json"):
        response = post_with_key(a_video, key, b"\x1aE\xdf\xa3 bytes")
        assert response.status == 403, (key, response.status)
        assert b"AccessDenied" in response.data
    assert stack.store().stat("raw", b_video.key) is None
    # The policy also pins the content type.
    response = post_with_key(a_video, a_video.key, b"bytes", content_type="text/html")
    assert response.status == 403
    # And its own key works.
    assert post_with_key(a_video, a_video.key, b"\x1aE\xdf\xa3 bytes").status in (200, 201, 204)


def test_expired_policy_is_refused_and_abandoned_sessions_expire_with_their_objects_removed(stack, extra_ingest):
    ingest, _ = extra_ingest({"SD_INGEST_UPLOAD_WINDOW_S": "2", "SD_INGEST_EXPIRY_GRACE_S": "0", "SD_INGEST_RECONCILE_S": "0.5"})
    me = stack.auth("p-expire")
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    video = next(t for t in started.targets if t.kind == ingest_pb2.UPLOAD_KIND_VIDEO)
    upload_to_target(video, b"\x1aE\xdf\xa3 in time")
    assert stack.store().stat("raw", video.key) is not None
    time.sleep(3)
    telemetry = next(t for t in started.targets if t.kind == ingest_pb2.UPLOAD_KIND_TELEMETRY)
    with pytest.raises(UploadRejected) as info:
        upload_to_target(telemetry, b"late")
    assert info.value.status == 403
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=started.session_id), metadata=me).state
        if state == ingest_pb2.SESSION_STATE_EXPIRED:
            break
        time.sleep(0.3)
    assert state == ingest_pb2.SESSION_STATE_EXPIRED
    assert stack.store().stat("raw", video.key) is None, "an expired session's objects are removed"
    err = rpc_error(ingest.CompleteSession, ingest_pb2.CompleteSessionRequest(session_id=started.session_id), metadata=me)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_object_over_the_size_limit_is_refused_by_s3_itself(stack, extra_ingest):
    ingest, _ = extra_ingest({"SD_INGEST_MAX_VIDEO_BYTES": "20000"})
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=stack.auth("p-big"))
    video = next(t for t in started.targets if t.kind == ingest_pb2.UPLOAD_KIND_VIDEO)
    assert video.max_bytes == 20000
    with pytest.raises(UploadRejected) as info:
        upload_to_target(video, b"x" * 20001)
    assert "EntityTooLarge" in info.value.body
    assert stack.store().stat("raw", video.key) is None
    upload_to_target(video, b"x" * 20000)


def test_large_videos_take_the_multipart_path(stack, extra_ingest, small_session):
    video, telemetry = small_session
    ingest, _ = extra_ingest({"SD_INGEST_MULTIPART_THRESHOLD_BYTES": "1000", "SD_INGEST_PART_BYTES": str(5 * 1024 * 1024)})
    big = unique_video(video, "multipart") + b"\xec" + b"\x01\x00\x00\x00\x00\x60\x00\x00" + bytes(6 * 1024 * 1024)  # Void padding past one part
    uploaded = upload_session(ingest, big, telemetry, metadata=stack.auth("p-multipart"))
    assert uploaded.session.state in (ingest_pb2.SESSION_STATE_UPLOADED, ingest_pb2.SESSION_STATE_REJECTED)
    stored = stack.store().stat("raw", f"p-multipart/{uploaded.session_id}/video.webm")
    assert stored is not None and stored.size == len(big)


def test_open_session_and_hourly_limits(stack, extra_ingest):
    ingest, _ = extra_ingest({"SD_INGEST_MAX_OPEN_SESSIONS": "2", "SD_INGEST_MAX_SESSIONS_PER_HOUR": "100"})
    me = stack.auth("p-open-limit")
    for _ in range(2):
        ingest.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    err = rpc_error(ingest.StartSession, ingest_pb2.StartSessionRequest(), metadata=me)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and err.details().startswith("open_sessions")
    hourly, _ = extra_ingest({"SD_INGEST_MAX_OPEN_SESSIONS": "100", "SD_INGEST_MAX_SESSIONS_PER_HOUR": "3"}, name="ingest-hourly")
    me = stack.auth("p-hour-limit")
    for _ in range(3):
        hourly.StartSession(ingest_pb2.StartSessionRequest(), metadata=me)
    err = rpc_error(hourly.StartSession, ingest_pb2.StartSessionRequest(), metadata=me)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and err.details().startswith("sessions_per_hour")
