"""CompleteSession's work, run in a worker thread: verify what a player uploaded, record the session (manifest first:
it is the record of truth), reject what cannot be genuine play, and announce the rest on sessions.uploaded."""

from __future__ import annotations

import hashlib

import grpc
from prometheus_client import Counter

from scalediffusion.platform import events
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.manifests import Manifest, ManifestStore
from scalediffusion.platform.rpc import RpcError
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.v1 import events_pb2, ingest_pb2
from scalediffusion.webm import WebmError, probe_webm
from services.ingest import checks, sessions
from services.ingest.records import IngestRecords

log = get_logger("ingest.completion")

SESSIONS_UPLOADED = Counter("sd_ingest_sessions_uploaded_total", "Sessions verified and recorded as UPLOADED")
SESSIONS_REJECTED = Counter("sd_ingest_sessions_rejected_total", "Sessions rejected at completion, by check", ["check"])
COMPLETE_REFUSED = Counter("sd_ingest_complete_refused_total", "CompleteSession calls refused, by failed check", ["check"])


def load_manifest(manifests: ManifestStore, session_id: str) -> Manifest:
    """The session's manifest; NOT_FOUND or DATA_LOSS as an RpcError."""
    try:
        manifest = manifests.load(session_id)
    except ValueError as err:
        raise RpcError(grpc.StatusCode.DATA_LOSS, f"session {session_id} manifest is unreadable: {err}") from None
    if manifest is None:
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"session {session_id} does not exist; call StartSession first")
    return manifest


class Completion:
    def __init__(self, store: ObjectStore, bucket: str, manifests: ManifestStore, records: IngestRecords, bus: EventBus,
                 limits: sessions.Limits, telemetry_limits: checks.TelemetryLimits) -> None:
        self.store, self.bucket, self.manifests, self.records, self.bus = store, bucket, manifests, records, bus
        self.limits, self.telemetry_limits = limits, telemetry_limits

    def verify_and_record(self, manifest: Manifest, claimed: list[ingest_pb2.UploadedObject], now: float) -> Manifest:
        """CREATED -> UPLOADED (or REJECTED for good): checks what was uploaded, then writes the manifest. Raises
        RpcError for a request that cannot complete (the session stays CREATED, a fixed retry may succeed)."""
        session = manifest.session
        limits = self.limits
        if now > session.upload_deadline.ToMilliseconds() / 1000 + limits.expiry_grace_s:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "session_expired: the upload window of this session has closed; start a new session")
        try:
            objects = sessions.check_claimed_objects(session, claimed)
            for obj in objects.values():
                upload_id = manifest.multipart.get(obj.key)
                if upload_id and self.store.stat(self.bucket, obj.key) is None:
                    parts = sessions.check_parts(obj, sessions.part_count(limits.max_video_bytes, limits))
                    try:
                        self.store.complete_multipart(self.bucket, obj.key, upload_id, parts)
                    except Exception as err:  # noqa: BLE001 - S3 names what is wrong with the parts
                        raise sessions.CheckFailed("multipart_parts", f"S3 refused to complete the multipart upload: {err}") from None
                info = self.store.stat(self.bucket, obj.key)
                sessions.check_stored_size(obj, info.size if info else None, limits)  # raises when it is missing
                obj.size_bytes = info.size if info else 0
            telemetry_obj = objects[(ingest_pb2.UPLOAD_KIND_TELEMETRY, "")]
            telemetry_bytes = self.store.get_bytes(self.bucket, telemetry_obj.key)
            video_obj = objects[(ingest_pb2.UPLOAD_KIND_VIDEO, "")]
            video_bytes = self.store.get_bytes(self.bucket, video_obj.key)
            for obj, data in ((telemetry_obj, telemetry_bytes), (video_obj, video_bytes)):
                digest = hashlib.sha256(data).hexdigest()
                if obj.sha256 and obj.sha256.lower() != digest:
                    raise sessions.CheckFailed("object_checksum", f"{ingest_pb2.UploadKind.Name(obj.kind)} SHA-256 is {digest}, the request declared {obj.sha256[:64]}")
                obj.sha256 = digest
            telemetry = checks.check_telemetry(telemetry_bytes, session.session_id, self.telemetry_limits)
        except sessions.CheckFailed as err:
            COMPLETE_REFUSED.labels(err.check).inc()
            bad_request = err.check in ("object_kind", "object_key", "multipart_parts") or err.check.startswith("telemetry_")
            code = grpc.StatusCode.INVALID_ARGUMENT if bad_request else grpc.StatusCode.FAILED_PRECONDITION
            raise RpcError(code, f"{err.check}: {err}") from None

        if not self.records.claim_pending(session.session_id):
            current = load_manifest(self.manifests, session.session_id)
            if current.session.state == ingest_pb2.SESSION_STATE_CREATED:
                raise RpcError(grpc.StatusCode.ABORTED, "another CompleteSession for this session is in progress; retry shortly")
            return current

        updated = ingest_pb2.Session()
        updated.CopyFrom(session)
        del updated.objects[:]
        updated.objects.extend(objects[slot] for slot in sorted(objects))
        updated.video_sha256 = video_obj.sha256
        rejection = self.rejection(updated, telemetry, video_bytes)
        if rejection is not None:
            updated.state = ingest_pb2.SESSION_STATE_REJECTED
            updated.rejections.append(sessions.as_rejection(rejection))
            result = Manifest(session=updated, event_published=True, multipart=manifest.multipart)
            self.manifests.save(result)
            self.records.remove_open(session.player_id, session.session_id)
            self.records.remove_pending(session.session_id)
            SESSIONS_REJECTED.labels(rejection.check).inc()
            event(log, "session_rejected", session_id=session.session_id, player_id=session.player_id, check=rejection.check, reason=str(rejection))
            return result

        updated.state = ingest_pb2.SESSION_STATE_UPLOADED
        result = Manifest(session=updated, event_published=False, multipart=manifest.multipart)
        # The manifest is written before the event: it is the record of truth if the publish is lost.
        self.manifests.save(result)
        self.records.remove_open(session.player_id, session.session_id)
        SESSIONS_UPLOADED.inc()
        event(log, "session_uploaded", session_id=session.session_id, player_id=session.player_id)
        return result

    def rejection(self, session: ingest_pb2.Session, telemetry, video_bytes: bytes) -> sessions.CheckFailed | None:
        """Why this verified upload cannot be accepted as genuine play, or None."""
        first = self.records.claim_video(session.video_sha256, session.session_id)
        if first != session.session_id:  # never name the other session: it may be another player's
            return sessions.CheckFailed("duplicate_video", "these video bytes were already uploaded with another "
                                                           "session that was accepted or is being processed")
        try:
            video = probe_webm(video_bytes)
            checks.check_consistency(telemetry, video, self.telemetry_limits)
        except WebmError as err:
            self.records.release_video(session.video_sha256, session.session_id)
            return sessions.CheckFailed("video_format", f"the video is not a readable WebM recording: {err}")
        except sessions.CheckFailed as err:
            self.records.release_video(session.video_sha256, session.session_id)
            return err
        return None

    def publish_uploaded(self, manifest: Manifest) -> None:
        """Announces a verified session on sessions.uploaded and marks the manifest published (the reconciler calls
        this too, for events a crash or the broker lost)."""
        session = manifest.session
        by_slot = {(o.kind, o.label_stream): o.key for o in session.objects}
        message = events_pb2.SessionUploaded(
            session_id=session.session_id,
            player_id=session.player_id,
            bucket=session.bucket,
            video_key=by_slot[(ingest_pb2.UPLOAD_KIND_VIDEO, "")],
            telemetry_key=by_slot[(ingest_pb2.UPLOAD_KIND_TELEMETRY, "")],
            label_keys={stream: key for (kind, stream), key in by_slot.items() if kind == ingest_pb2.UPLOAD_KIND_LABELS},
            uploaded_at=session.updated_at,
            attempt=manifest.publish_attempts + 1,
        )
        self.records.claim_pending(session.session_id)  # no-op when CompleteSession made it; restores it otherwise
        partition, offset = self.bus.publish(events.SESSIONS_UPLOADED, session.session_id, message)
        manifest.event_published = True
        manifest.publish_attempts += 1
        self.manifests.save(manifest)
        event(log, "session_published", session_id=session.session_id, partition=partition, offset=offset, attempt=manifest.publish_attempts)
