"""Session records and upload targets: the ingest service's domain logic, with no I/O.

The manifest stored in S3 is the record of truth for a session; these helpers build, check and update it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from scalediffusion import keys
from scalediffusion.v1 import ingest_pb2

VIDEO_CONTENT_TYPE = "video/webm"
TELEMETRY_CONTENT_TYPE = "application/x-protobuf"
REQUIRED_KINDS = (ingest_pb2.UPLOAD_KIND_VIDEO, ingest_pb2.UPLOAD_KIND_TELEMETRY)


@dataclass(frozen=True)
class Limits:
    max_video_bytes: int = 512 * 1024 * 1024  # a 1-minute 1280x720 VP8 recording is ~10-60 MB
    max_telemetry_bytes: int = 32 * 1024 * 1024
    upload_window_s: int = 15 * 60  # presigned targets expire after this


class CheckFailed(ValueError):
    """A session check failed; `check` names it (machine-readable), the message says what to do."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


def new_session_id(now: float | None = None) -> str:
    """Time-ordered, unguessable id: 12 hex digits of milliseconds then 12 random hex digits."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"{ms:012x}{secrets.token_hex(6)}"


def timestamp(now: float | None = None) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(int((time.time() if now is None else now) * 1000))
    return ts


def expected_objects(player_id: str, session_id: str) -> dict[int, str]:
    """UploadKind -> key for the objects every session must have."""
    return {
        ingest_pb2.UPLOAD_KIND_VIDEO: keys.video_key(player_id, session_id),
        ingest_pb2.UPLOAD_KIND_TELEMETRY: keys.telemetry_key(player_id, session_id),
    }


def new_session(player_id: str, session_id: str, bucket: str, now: float | None = None) -> ingest_pb2.Session:
    ts = timestamp(now)
    return ingest_pb2.Session(
        session_id=session_id,
        player_id=player_id,
        state=ingest_pb2.SESSION_STATE_CREATED,
        created_at=ts,
        updated_at=ts,
        bucket=bucket,
    )


def check_claimed_objects(
    session: ingest_pb2.Session, claimed: list[ingest_pb2.UploadedObject]
) -> dict[int, ingest_pb2.UploadedObject]:
    """Validates what the client says it uploaded against the session's expected keys.

    Returns UploadKind -> claimed object (with the expected key filled in when the client left it empty).

    Raises:
        CheckFailed: an unknown kind, a key outside the session, or a duplicate kind.
    """
    expected = expected_objects(session.player_id, session.session_id)
    by_kind: dict[int, ingest_pb2.UploadedObject] = {}
    for obj in claimed:
        if obj.kind not in expected:
            raise CheckFailed("object_kind", f"object kind {ingest_pb2.UploadKind.Name(obj.kind)} is not accepted yet; send VIDEO and TELEMETRY")
        if obj.key and obj.key != expected[obj.kind]:
            raise CheckFailed("object_key", f"{ingest_pb2.UploadKind.Name(obj.kind)} key must be {expected[obj.kind]!r}, got {obj.key!r}")
        if obj.kind in by_kind:
            raise CheckFailed("object_kind", f"{ingest_pb2.UploadKind.Name(obj.kind)} listed twice")
        filled = ingest_pb2.UploadedObject()
        filled.CopyFrom(obj)
        filled.key = expected[obj.kind]
        by_kind[obj.kind] = filled
    for kind, key in expected.items():
        by_kind.setdefault(kind, ingest_pb2.UploadedObject(kind=kind, key=key))
    return by_kind


def check_stored_size(obj: ingest_pb2.UploadedObject, stored_size: int | None, limits: Limits) -> None:
    """Raises CheckFailed when the object is missing, empty, over its limit, or not the size the client declared."""
    name = ingest_pb2.UploadKind.Name(obj.kind)
    if stored_size is None:
        raise CheckFailed("object_missing", f"{name} object {obj.key!r} was not found in the bucket; upload it to its target before CompleteSession")
    if stored_size == 0:
        raise CheckFailed("object_empty", f"{name} object {obj.key!r} is empty")
    limit = limits.max_video_bytes if obj.kind == ingest_pb2.UPLOAD_KIND_VIDEO else limits.max_telemetry_bytes
    if stored_size > limit:
        raise CheckFailed("object_too_large", f"{name} object is {stored_size} bytes, over the {limit}-byte limit")
    if obj.size_bytes and obj.size_bytes != stored_size:
        raise CheckFailed("object_size", f"{name} object is {stored_size} bytes but the request declared {obj.size_bytes}")


# -- the manifest document ------------------------------------------------------------------------------------


def manifest_doc(session: ingest_pb2.Session, event_published: bool) -> dict:
    return {"session": json_format.MessageToDict(session), "event_published": event_published}


def parse_manifest(doc: object) -> tuple[ingest_pb2.Session, bool]:
    if not isinstance(doc, dict) or "session" not in doc:
        raise ValueError("session manifest is not a manifest document")
    session = json_format.ParseDict(doc["session"], ingest_pb2.Session())
    return session, bool(doc.get("event_published", False))
