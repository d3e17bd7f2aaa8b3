"""The reconciler: what the broker or a crashed replica may have lost, found in S3 and put right. One step(now) per
period; every replica runs it, and every action is idempotent (the manifest is the record of truth).

- A verified session whose sessions.uploaded event was never published (a crash between the manifest and the event)
  or got no outcome for too long (the broker lost it) gets its event again; so does one stuck in PROCESSING.
- A claim left by a CompleteSession that died before its manifest is cleared.
- A CREATED session whose upload deadline passed (plus grace) expires: its objects and multipart uploads are removed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter

from scalediffusion.platform import keys
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.manifests import Manifest, ManifestStore
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.v1 import ingest_pb2
from services.ingest.outcomes import TERMINAL
from services.ingest.records import IngestRecords

log = get_logger("ingest.reconciler")

REPUBLISHED = Counter("sd_ingest_republished_total", "sessions.uploaded events re-published by the reconciler")
EXPIRED = Counter("sd_ingest_sessions_expired_total", "Abandoned sessions expired and their objects removed")


@dataclass(frozen=True)
class ReconcilerSettings:
    every_s: float = 5.0  # SD_INGEST_RECONCILE_S: the period
    republish_after_s: float = 120.0  # SD_INGEST_REPUBLISH_AFTER_S: UPLOADED with no outcome this long
    processing_timeout_s: float = 900.0  # SD_INGEST_PROCESSING_TIMEOUT_S: PROCESSING with no outcome this long
    # A manifest saved as UPLOADED but not marked published this long ago: its CompleteSession died before publishing
    # (a live one publishes within milliseconds of saving).
    unpublished_after_s: float = 2.0
    # A pending claim whose session is still CREATED this long after its last update: the CompleteSession that made
    # the claim died before writing the manifest.
    orphan_claim_after_s: float = 60.0
    expiry_grace_s: float = 3600.0  # after the upload deadline, before a CREATED session expires (Limits)


class Reconciler:
    def __init__(self, store: ObjectStore, bucket: str, manifests: ManifestStore, records: IngestRecords,
                 publish: Callable[[Manifest], None], settings: ReconcilerSettings) -> None:
        self.store, self.bucket, self.manifests, self.records = store, bucket, manifests, records
        self.publish, self.settings = publish, settings

    def step(self, now: float) -> dict[str, int]:
        """One pass; returns what it did (republished, expired, cleared)."""
        done = {"republished": 0, "expired": 0, "cleared": 0}
        s = self.settings
        for session_id in list(self.records.pending_sessions()):
            manifest = self.manifests.load(session_id)
            if manifest is None or manifest.session.state in TERMINAL:
                self.records.remove_pending(session_id)
                done["cleared"] += 1
                continue
            age = now - manifest.session.updated_at.ToMilliseconds() / 1000
            state = manifest.session.state
            stale = (
                (state == ingest_pb2.SESSION_STATE_UPLOADED and not manifest.event_published and age > s.unpublished_after_s)
                or (state == ingest_pb2.SESSION_STATE_UPLOADED and age > s.republish_after_s)
                or (state == ingest_pb2.SESSION_STATE_PROCESSING and age > s.processing_timeout_s)
            )
            if stale:
                if state == ingest_pb2.SESSION_STATE_PROCESSING:
                    manifest.session.state = ingest_pb2.SESSION_STATE_UPLOADED
                self.publish(manifest)
                REPUBLISHED.inc()
                done["republished"] += 1
            elif state == ingest_pb2.SESSION_STATE_CREATED and age > s.orphan_claim_after_s:
                self.records.remove_pending(session_id)
                done["cleared"] += 1
        for player_id, session_id in list(self.records.open_sessions()):
            manifest = self.manifests.load(session_id)
            if manifest is None or manifest.session.state != ingest_pb2.SESSION_STATE_CREATED:
                self.records.remove_open(player_id, session_id)
                continue
            if now > manifest.session.upload_deadline.ToMilliseconds() / 1000 + s.expiry_grace_s:
                self.expire(manifest)
                done["expired"] += 1
        if any(done.values()):
            event(log, "reconciled", **done)
        return done

    def expire(self, manifest: Manifest) -> None:
        session = manifest.session
        for key, upload_id in manifest.multipart.items():
            self.store.abort_multipart(self.bucket, key, upload_id)
        removed = self.store.delete_prefix(self.bucket, keys.session_prefix(session.player_id, session.session_id))
        session.state = ingest_pb2.SESSION_STATE_EXPIRED
        self.manifests.save(manifest)
        self.records.remove_open(session.player_id, session.session_id)
        EXPIRED.inc()
        event(log, "session_expired", session_id=session.session_id, player_id=session.player_id, objects_removed=removed)
