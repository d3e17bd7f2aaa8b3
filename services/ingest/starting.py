"""StartSession's work, run in a worker thread: the player's rate limits, the upload targets S3 will enforce
(presigned POST policies, or a multipart upload for large videos), and the new session's records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc

from scalediffusion.platform.manifests import Manifest, ManifestStore
from scalediffusion.platform.rpc import RpcError
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.v1 import ingest_pb2
from services.ingest import sessions
from services.ingest.records import IngestRecords


class Starting:
    def __init__(self, store: ObjectStore, bucket: str, manifests: ManifestStore, records: IngestRecords,
                 limits: sessions.Limits) -> None:
        self.store, self.bucket, self.manifests, self.records, self.limits = store, bucket, manifests, records, limits

    def check_rate_limits(self, player_id: str, now: float) -> None:
        limits = self.limits
        open_count = sum(1 for _ in self.records.open_sessions(player_id))
        if open_count >= limits.max_open_sessions:
            raise RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"open_sessions: {open_count} sessions are still open (limit {limits.max_open_sessions}); complete them or wait for them to expire")
        recent = self.records.count_player_sessions_since(player_id, sessions.session_id_floor(now - 3600))
        if recent >= limits.max_sessions_per_hour:
            raise RpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"sessions_per_hour: {recent} sessions in the last hour (limit {limits.max_sessions_per_hour})")

    def upload_targets(self, manifest: Manifest, expected_video_bytes: int, now: float) -> list[ingest_pb2.UploadTarget]:
        limits = self.limits
        session = manifest.session
        expires_at = datetime.fromtimestamp(now + limits.upload_window_s, tz=UTC)
        targets = []
        for (kind, stream), key in sessions.expected_objects(session).items():
            target = ingest_pb2.UploadTarget(
                kind=kind, key=key, max_bytes=sessions.max_bytes(kind, limits), expires_at=session.upload_deadline, label_stream=stream
            )
            ctype = sessions.content_type(kind)
            if kind == ingest_pb2.UPLOAD_KIND_VIDEO and expected_video_bytes > limits.multipart_threshold_bytes:
                upload_id = self.store.create_multipart(self.bucket, key, ctype)
                manifest.multipart[key] = upload_id
                window = timedelta(seconds=limits.upload_window_s)
                target.method = "MULTIPART"
                target.multipart.upload_id = upload_id
                target.multipart.part_size = limits.part_size_bytes
                target.multipart.part_urls.extend(
                    self.store.presigned_part_url(self.bucket, key, upload_id, n, window)
                    for n in range(1, sessions.part_count(expected_video_bytes, limits) + 1)
                )
            else:
                url, fields = self.store.presigned_post(self.bucket, key, ctype, sessions.max_bytes(kind, limits), expires_at)
                target.method = "POST"
                target.url = url
                target.form_fields.update(fields)
            target.headers["Content-Type"] = ctype
            targets.append(target)
        return targets

    def record_new_session(self, manifest: Manifest, now: float) -> None:
        session = manifest.session
        self.manifests.save(manifest, now)
        self.records.add_player_index(session.player_id, session.session_id)
        self.records.add_open(session.player_id, session.session_id, session.upload_deadline.ToMilliseconds())
