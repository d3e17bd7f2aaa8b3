"""Ingest service process: IngestService over gRPC and gRPC-Web.

The transport here is thin: S3/Kafka calls and status mapping; the rules live in services/ingest/sessions.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import grpc
from prometheus_client import Counter

from scalediffusion import events, keys
from scalediffusion.kafka import EventBus
from scalediffusion.paging import decode_page_token, encode_page_token
from scalediffusion.logs import event, get_logger
from scalediffusion.rpc import CallContext, RpcError, ServiceBinding, checked_id
from scalediffusion.s3 import ObjectStore
from scalediffusion.server import ServiceApp, run_main
from scalediffusion.settings import KafkaSettings, S3Settings, ServerSettings, env_int
from scalediffusion.v1 import events_pb2, ingest_connect, ingest_pb2
from services.ingest import sessions

log = get_logger("ingest")

SESSIONS_STARTED = Counter("sd_ingest_sessions_started_total", "Sessions started (upload targets issued)")
SESSIONS_UPLOADED = Counter("sd_ingest_sessions_uploaded_total", "Sessions verified and recorded as UPLOADED")
COMPLETE_REFUSED = Counter("sd_ingest_complete_refused_total", "CompleteSession calls refused, by failed check", ["check"])

GRPC_PORT, GRPCWEB_PORT, METRICS_PORT = 50051, 8080, 9400
DEFAULT_PLAYER = "anonymous"


@dataclass(frozen=True)
class IngestSettings:
    server: ServerSettings
    s3: S3Settings
    kafka: KafkaSettings
    limits: sessions.Limits

    @classmethod
    def from_env(cls) -> IngestSettings:
        return cls(
            server=ServerSettings.from_env(grpc_port=GRPC_PORT, grpcweb_port=GRPCWEB_PORT, metrics_port=METRICS_PORT),
            s3=S3Settings.from_env(),
            kafka=KafkaSettings.from_env(),
            limits=sessions.Limits(
                max_video_bytes=env_int("SD_INGEST_MAX_VIDEO_BYTES", sessions.Limits.max_video_bytes),
                max_telemetry_bytes=env_int("SD_INGEST_MAX_TELEMETRY_BYTES", sessions.Limits.max_telemetry_bytes),
                upload_window_s=env_int("SD_INGEST_UPLOAD_WINDOW_S", sessions.Limits.upload_window_s),
            ),
        )


class IngestServicer:
    """IngestService: one object served on both transports (see scalediffusion.rpc)."""

    def __init__(self, settings: IngestSettings, store: ObjectStore, bus: EventBus) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.bucket = settings.s3.bucket_raw
        self._locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle hooks -------------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.store.ensure_buckets)
        await asyncio.to_thread(self.bus.ensure_topics, events.ALL_TOPICS)

    async def stop(self) -> None:
        await asyncio.to_thread(self.bus.close)

    # -- RPCs -------------------------------------------------------------------------------------------------

    async def start_session(self, request: ingest_pb2.StartSessionRequest, ctx: CallContext) -> ingest_pb2.StartSessionResponse:
        player_id = checked_id("player_id", request.player_id or DEFAULT_PLAYER)
        if request.label_streams:
            raise RpcError(grpc.StatusCode.UNIMPLEMENTED, "label stream uploads are not accepted yet (they land with the ingest issue)")
        session_id = sessions.new_session_id()
        session = sessions.new_session(player_id, session_id, self.bucket)
        await asyncio.to_thread(self._write_manifest, session, False)
        expires = timedelta(seconds=self.settings.limits.upload_window_s)
        expires_at = sessions.timestamp()
        expires_at.FromSeconds(expires_at.seconds + self.settings.limits.upload_window_s)
        targets = []
        for kind, key in sessions.expected_objects(player_id, session_id).items():
            url = await asyncio.to_thread(self.store.presigned_put, self.bucket, key, expires)
            is_video = kind == ingest_pb2.UPLOAD_KIND_VIDEO
            targets.append(
                ingest_pb2.UploadTarget(
                    kind=kind,
                    key=key,
                    method="PUT",
                    url=url,
                    headers={"Content-Type": sessions.VIDEO_CONTENT_TYPE if is_video else sessions.TELEMETRY_CONTENT_TYPE},
                    max_bytes=self.settings.limits.max_video_bytes if is_video else self.settings.limits.max_telemetry_bytes,
                    expires_at=expires_at,
                )
            )
        SESSIONS_STARTED.inc()
        event(log, "session_started", session_id=session_id, player_id=player_id)
        return ingest_pb2.StartSessionResponse(session_id=session_id, player_id=player_id, targets=targets)

    async def complete_session(
        self, request: ingest_pb2.CompleteSessionRequest, ctx: CallContext
    ) -> ingest_pb2.CompleteSessionResponse:
        session_id = checked_id("session_id", request.session_id)
        # One completion at a time per session in this process; S3 state makes repeats idempotent.
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            try:
                session, published = await self._load(session_id)
                if session.state == ingest_pb2.SESSION_STATE_CREATED:
                    session = await self._verify_and_mark_uploaded(session, list(request.objects))
                    published = False
                if session.state == ingest_pb2.SESSION_STATE_UPLOADED and not published:
                    await self._publish_uploaded(session)
            finally:
                self._locks.pop(session_id, None)
        return ingest_pb2.CompleteSessionResponse(session=session)

    async def get_session(self, request: ingest_pb2.GetSessionRequest, ctx: CallContext) -> ingest_pb2.Session:
        session, _ = await self._load(checked_id("session_id", request.session_id))
        return session

    async def list_sessions(self, request: ingest_pb2.ListSessionsRequest, ctx: CallContext) -> ingest_pb2.ListSessionsResponse:
        page_size = min(request.page.page_size or 50, 500)
        start_after = decode_page_token(request.page.page_token)
        return await asyncio.to_thread(self._list_sessions, request, page_size, start_after)

    async def issue_token(self, request: ingest_pb2.IssueTokenRequest, ctx: CallContext) -> ingest_pb2.IssueTokenResponse:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, "player tokens are not issued yet: authentication lands with the ingest issue")

    async def revoke_token(self, request: ingest_pb2.RevokeTokenRequest, ctx: CallContext) -> ingest_pb2.RevokeTokenResponse:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, "player tokens are not issued yet: authentication lands with the ingest issue")

    async def register_wallet(self, request: ingest_pb2.RegisterWalletRequest, ctx: CallContext) -> ingest_pb2.RegisterWalletResponse:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, "wallets are not registered yet: players land with the ingest issue")

    async def get_rewards(self, request: ingest_pb2.GetRewardsRequest, ctx: CallContext) -> ingest_pb2.GetRewardsResponse:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, "rewards are not credited yet: they land with the ingest issue")

    # -- helpers ----------------------------------------------------------------------------------------------

    def _write_manifest(self, session: ingest_pb2.Session, published: bool) -> None:
        self.store.put_json(self.bucket, keys.manifest_key(session.session_id), sessions.manifest_doc(session, published))

    async def _load(self, session_id: str) -> tuple[ingest_pb2.Session, bool]:
        doc = await asyncio.to_thread(self.store.get_json, self.bucket, keys.manifest_key(session_id))
        if doc is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"session {session_id} does not exist; call StartSession first")
        try:
            return sessions.parse_manifest(doc)
        except ValueError as err:
            raise RpcError(grpc.StatusCode.DATA_LOSS, f"session {session_id} manifest is unreadable: {err}") from None

    async def _verify_and_mark_uploaded(
        self, session: ingest_pb2.Session, claimed: list[ingest_pb2.UploadedObject]
    ) -> ingest_pb2.Session:
        try:
            objects = sessions.check_claimed_objects(session, claimed)
            for obj in objects.values():
                info = await asyncio.to_thread(self.store.stat, self.bucket, obj.key)
                sessions.check_stored_size(obj, info.size if info else None, self.settings.limits)
                obj.size_bytes = info.size
        except sessions.CheckFailed as err:
            COMPLETE_REFUSED.labels(err.check).inc()
            code = grpc.StatusCode.INVALID_ARGUMENT if err.check in ("object_kind", "object_key") else grpc.StatusCode.FAILED_PRECONDITION
            raise RpcError(code, f"{err.check}: {err}") from None
        updated = ingest_pb2.Session()
        updated.CopyFrom(session)
        updated.state = ingest_pb2.SESSION_STATE_UPLOADED
        updated.updated_at.CopyFrom(sessions.timestamp())
        del updated.objects[:]
        updated.objects.extend(objects[k] for k in sorted(objects))
        # The manifest is written before the event: it is the record of truth if the publish is lost.
        await asyncio.to_thread(self._write_manifest, updated, False)
        SESSIONS_UPLOADED.inc()
        event(log, "session_uploaded", session_id=session.session_id, player_id=session.player_id)
        return updated

    async def _publish_uploaded(self, session: ingest_pb2.Session) -> None:
        by_kind = {o.kind: o.key for o in session.objects}
        message = events_pb2.SessionUploaded(
            session_id=session.session_id,
            player_id=session.player_id,
            bucket=session.bucket,
            video_key=by_kind[ingest_pb2.UPLOAD_KIND_VIDEO],
            telemetry_key=by_kind[ingest_pb2.UPLOAD_KIND_TELEMETRY],
            uploaded_at=session.updated_at,
            attempt=1,
        )
        try:
            partition, offset = await asyncio.to_thread(self.bus.publish, events.SESSIONS_UPLOADED, session.session_id, message)
        except Exception as err:  # noqa: BLE001 - the manifest says UPLOADED; a retry of CompleteSession re-publishes
            event(log, "publish_failed", session_id=session.session_id, error=repr(err))
            raise RpcError(grpc.StatusCode.UNAVAILABLE, "the session is recorded but its event could not be published; retry CompleteSession") from None
        await asyncio.to_thread(self._write_manifest, session, True)
        event(log, "session_published", session_id=session.session_id, partition=partition, offset=offset)

    def _list_sessions(
        self, request: ingest_pb2.ListSessionsRequest, page_size: int, start_after: str
    ) -> ingest_pb2.ListSessionsResponse:
        response = ingest_pb2.ListSessionsResponse()
        last_key = ""
        for key in self.store.list_keys(self.bucket, "_sessions/", start_after=start_after):
            doc = self.store.get_json(self.bucket, key)
            if doc is None:
                continue
            session, _ = sessions.parse_manifest(doc)
            last_key = key
            if request.player_id and session.player_id != request.player_id:
                continue
            if request.state and session.state != request.state:
                continue
            response.sessions.append(session)
            if len(response.sessions) >= page_size:
                response.next_page_token = encode_page_token(last_key)
                break
        return response


def build_app(settings: IngestSettings) -> ServiceApp:
    store = ObjectStore(settings.s3)
    bus = EventBus(settings.kafka, client_id="ingest")
    servicer = IngestServicer(settings, store, bus)
    binding = ServiceBinding(ingest_pb2.DESCRIPTOR.services_by_name["IngestService"], servicer)
    return ServiceApp("ingest", settings.server, [binding], [ingest_connect.IngestServiceASGIApplication], hooks=servicer)


def main() -> None:
    run_main("ingest", IngestSettings.from_env, build_app)


if __name__ == "__main__":
    main()
