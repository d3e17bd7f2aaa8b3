"""Session rules for the ingest service: ids, expected objects, upload sizes, limits. Pure: no I/O, the clock is
passed in."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from scalediffusion.platform import keys
from scalediffusion.platform.manifests import now_timestamp
from scalediffusion.v1 import ingest_pb2, processor_pb2

VIDEO_CONTENT_TYPE = "video/webm"
TELEMETRY_CONTENT_TYPE = "application/x-protobuf"
LABEL_CONTENT_TYPE = "video/webm"
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last


@dataclass(frozen=True)
class Limits:
    max_video_bytes: int = 256 * 1024 * 1024  # a 1-minute 1280x720 VP8 recording is ~10-60 MB
    max_telemetry_bytes: int = 16 * 1024 * 1024
    max_label_bytes: int = 128 * 1024 * 1024
    max_label_streams: int = 4
    upload_window_s: int = 15 * 60  # upload targets expire after this
    expiry_grace_s: int = 5 * 60  # a CREATED session past its window + grace is expired and its objects removed
    multipart_threshold_bytes: int = 64 * 1024 * 1024  # expected videos above this get a multipart target
    part_size_bytes: int = 16 * 1024 * 1024
    max_open_sessions: int = 4  # CREATED sessions per player at once
    max_sessions_per_hour: int = 60  # StartSession calls per player per rolling hour

    def validate(self) -> None:
        if self.part_size_bytes < MIN_PART_BYTES:
            raise ValueError(f"SD_INGEST_PART_BYTES must be at least {MIN_PART_BYTES} (S3's minimum part size)")
        if self.max_video_bytes > 10_000 * self.part_size_bytes:
            raise ValueError("SD_INGEST_MAX_VIDEO_BYTES needs more than S3's 10000 parts at SD_INGEST_PART_BYTES")


class CheckFailed(ValueError):
    """A session check failed; `check` names it (machine-readable), the message says what to do."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


# The checks whose failure rejects a verified upload for good, and the reason they record on the session (the
# processor's enum: one set of reasons for the whole path). The check's own name stays in Rejection.metric.
REJECTING_CHECKS: dict[str, processor_pb2.RejectionReason] = {
    "duplicate_video": processor_pb2.REJECTION_REASON_DUPLICATE,
    "video_format": processor_pb2.REJECTION_REASON_VIDEO_UNDECODABLE,
    "video_empty": processor_pb2.REJECTION_REASON_VIDEO_UNDECODABLE,
    "video_frame_records": processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH,
    "video_duration_mismatch": processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH,
    "video_frame_rate": processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH,
}


def as_rejection(failed: CheckFailed) -> processor_pb2.Rejection:
    """The typed record of a rejecting check; a check that is not a rejecting one is a programming error."""
    if failed.check not in REJECTING_CHECKS:
        raise KeyError(f"check {failed.check!r} does not reject a session (it is a request error)")
    return processor_pb2.Rejection(reason=REJECTING_CHECKS[failed.check], metric=failed.check, detail=str(failed))


def new_session_id(now: float | None = None) -> str:
    """Time-ordered, unguessable id: 12 hex digits of milliseconds then 12 random hex digits."""
    return f"{session_id_floor(time.time() if now is None else now)}{secrets.token_hex(6)}"


def session_id_floor(at: float) -> str:
    """The 12-hex-digit time prefix of ids made at `at`: ids made later sort after it."""
    return f"{int(at * 1000):012x}"


def new_session(
    player_id: str, session_id: str, bucket: str, label_streams: list[str], limits: Limits, now: float
) -> ingest_pb2.Session:
    ts = now_timestamp(now)
    deadline = now_timestamp(now + limits.upload_window_s)
    return ingest_pb2.Session(
        session_id=session_id,
        player_id=player_id,
        state=ingest_pb2.SESSION_STATE_CREATED,
        created_at=ts,
        updated_at=ts,
        bucket=bucket,
        label_streams=label_streams,
        upload_deadline=deadline,
    )


def check_label_streams(names: list[str], limits: Limits) -> list[str]:
    if len(names) > limits.max_label_streams:
        raise CheckFailed("label_streams", f"at most {limits.max_label_streams} label streams, got {len(names)}")
    if len(set(names)) != len(names):
        raise CheckFailed("label_streams", "label stream names must be unique")
    for name in names:
        try:
            keys.check_id("label stream", name)
        except keys.InvalidId as err:
            raise CheckFailed("label_streams", str(err)) from None
    return list(names)


def expected_objects(session: ingest_pb2.Session) -> dict[tuple[ingest_pb2.UploadKind, str], str]:
    """(UploadKind, label stream or "") -> key, for every object the session may have."""
    p, s = session.player_id, session.session_id
    expected = {
        (ingest_pb2.UPLOAD_KIND_VIDEO, ""): keys.video_key(p, s),
        (ingest_pb2.UPLOAD_KIND_TELEMETRY, ""): keys.telemetry_key(p, s),
    }
    for stream in session.label_streams:
        expected[(ingest_pb2.UPLOAD_KIND_LABELS, stream)] = keys.label_key(p, s, stream)
    return expected


def required(kind: ingest_pb2.UploadKind) -> bool:
    return kind in (ingest_pb2.UPLOAD_KIND_VIDEO, ingest_pb2.UPLOAD_KIND_TELEMETRY)


def max_bytes(kind: ingest_pb2.UploadKind, limits: Limits) -> int:
    return {
        ingest_pb2.UPLOAD_KIND_VIDEO: limits.max_video_bytes,
        ingest_pb2.UPLOAD_KIND_TELEMETRY: limits.max_telemetry_bytes,
    }.get(kind, limits.max_label_bytes)


def content_type(kind: ingest_pb2.UploadKind) -> str:
    return TELEMETRY_CONTENT_TYPE if kind == ingest_pb2.UPLOAD_KIND_TELEMETRY else VIDEO_CONTENT_TYPE


def check_claimed_objects(
    session: ingest_pb2.Session, claimed: list[ingest_pb2.UploadedObject]
) -> dict[tuple[int, str], ingest_pb2.UploadedObject]:
    """Validates what the client says it uploaded against the session's expected keys.

    Returns (kind, label stream) -> claimed object with the expected key filled in; required objects the client
    did not list are included with their expected keys (their existence is checked next).

    Raises:
        CheckFailed: object_kind (unknown kind or stream, listed twice) or object_key (a key outside the session).
    """
    expected = expected_objects(session)
    by_slot: dict[tuple[int, str], ingest_pb2.UploadedObject] = {}
    for obj in claimed:
        stream = obj.label_stream if obj.kind == ingest_pb2.UPLOAD_KIND_LABELS else ""
        slot = (obj.kind, stream)
        name = ingest_pb2.UploadKind.Name(obj.kind) if obj.kind in ingest_pb2.UploadKind.values() else str(obj.kind)
        if slot not in expected:
            raise CheckFailed("object_kind", f"object {name} {stream!r} was not announced for this session")
        if obj.key and obj.key != expected[slot]:
            raise CheckFailed("object_key", f"{name} key must be {expected[slot]!r}, got {obj.key[:200]!r}")
        if slot in by_slot:
            raise CheckFailed("object_kind", f"{name} {stream!r} listed twice")
        filled = ingest_pb2.UploadedObject()
        filled.CopyFrom(obj)
        filled.key = expected[slot]
        by_slot[slot] = filled
    for slot, key in expected.items():
        if required(slot[0]):
            by_slot.setdefault(slot, ingest_pb2.UploadedObject(kind=slot[0], key=key))
    return by_slot


def check_stored_size(obj: ingest_pb2.UploadedObject, stored_size: int | None, limits: Limits) -> None:
    """Raises CheckFailed when the object is missing, empty, over its limit, or not the size the client declared."""
    name = ingest_pb2.UploadKind.Name(obj.kind)
    if stored_size is None:
        raise CheckFailed("object_missing", f"{name} object {obj.key!r} was not found in the bucket; upload it to its target before CompleteSession")
    if stored_size == 0:
        raise CheckFailed("object_empty", f"{name} object {obj.key!r} is empty")
    limit = max_bytes(obj.kind, limits)
    if stored_size > limit:
        raise CheckFailed("object_too_large", f"{name} object is {stored_size} bytes, over the {limit}-byte limit")
    if obj.size_bytes and obj.size_bytes != stored_size:
        raise CheckFailed("object_size", f"{name} object is {stored_size} bytes but the request declared {obj.size_bytes}")


def check_parts(obj: ingest_pb2.UploadedObject, part_count: int) -> list[tuple[int, str]]:
    """The (number, etag) list to complete a multipart upload; every part 1..n exactly once."""
    numbers = sorted(p.part_number for p in obj.parts)
    if not numbers or numbers != list(range(1, len(numbers) + 1)) or len(numbers) > part_count:
        raise CheckFailed("multipart_parts", f"send parts 1..n (n <= {part_count}) each once with its ETag; got {numbers[:20]}")
    if any(not p.etag.strip().strip('"') for p in obj.parts):
        raise CheckFailed("multipart_parts", "every part needs the ETag S3 returned for it")
    return [(p.part_number, p.etag.strip().strip('"')) for p in sorted(obj.parts, key=lambda p: p.part_number)]


def part_count(expected_bytes: int, limits: Limits) -> int:
    size = min(max(expected_bytes, 1), limits.max_video_bytes)
    return -(-size // limits.part_size_bytes)
