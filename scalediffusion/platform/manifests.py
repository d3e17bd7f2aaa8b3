"""The session manifest in S3 (raw bucket, `_sessions/<session>.json`): the record of truth for a session.

Written by ingest (CREATED -> UPLOADED, ACCEPTED/REJECTED, EXPIRED) and by the processor (PROCESSING). The event
that announces a session is published only after its manifest says so, which is what lets the ingest reconciler
re-publish anything the broker lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from scalediffusion.platform import keys
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.v1 import ingest_pb2


@dataclass
class Manifest:
    session: ingest_pb2.Session
    event_published: bool = False  # sessions.uploaded acknowledged by the broker for the current state
    publish_attempts: int = 0  # how often sessions.uploaded was published (reconciler re-publishes count up)
    multipart: dict[str, str] = field(default_factory=dict)  # object key -> S3 multipart upload id

    def to_doc(self) -> dict:
        return {
            "session": json_format.MessageToDict(self.session),
            "event_published": self.event_published,
            "publish_attempts": self.publish_attempts,
            "multipart": self.multipart,
        }

    @classmethod
    def from_doc(cls, doc: object) -> Manifest:
        """Raises ValueError when doc is not a manifest."""
        if not isinstance(doc, dict) or not isinstance(doc.get("session"), dict):
            raise ValueError("not a session manifest document")
        try:
            session = json_format.ParseDict(doc["session"], ingest_pb2.Session())
        except json_format.ParseError as err:
            raise ValueError(f"session manifest does not parse: {err}") from None
        return cls(
            session=session,
            event_published=bool(doc.get("event_published")),
            publish_attempts=int(doc.get("publish_attempts", 0)),
            multipart={str(k): str(v) for k, v in (doc.get("multipart") or {}).items()},
        )


def now_timestamp(now: float | None = None) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(int((time.time() if now is None else now) * 1000))
    return ts


class ManifestStore:
    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store = store
        self.bucket = bucket

    def load(self, session_id: str) -> Manifest | None:
        doc = self.store.get_json(self.bucket, keys.manifest_key(session_id))
        return None if doc is None else Manifest.from_doc(doc)

    def save(self, manifest: Manifest, now: float | None = None) -> None:
        manifest.session.updated_at.CopyFrom(now_timestamp(now))
        self.store.put_json(self.bucket, keys.manifest_key(manifest.session.session_id), manifest.to_doc())

    def mark_processing(self, session_id: str) -> bool:
        """UPLOADED -> PROCESSING (the processor picked it up); False when the manifest is missing or in another state."""
        manifest = self.load(session_id)
        if manifest is None or manifest.session.state != ingest_pb2.SESSION_STATE_UPLOADED:
            return False
        manifest.session.state = ingest_pb2.SESSION_STATE_PROCESSING
        self.save(manifest)
        return True
