"""Ingest service process: IngestService over gRPC and gRPC-Web, the reconciler, and the outcome/rewards consumer.

Transport and I/O live here; the rules live in sessions.py (ids, objects, limits), checks.py (telemetry and
video/telemetry consistency), auth.py (tokens, wallets) and records.py (what is kept in S3).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import grpc
from prometheus_client import Counter

from scalediffusion.platform import events, keys
from scalediffusion.platform.kafka import ConsumerConfig, ConsumerLoop, EventBus
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.manifests import Manifest, ManifestStore, now_timestamp
from scalediffusion.platform.paging import decode_page_token, encode_page_token
from scalediffusion.platform.rpc import CallContext, RpcError, ServiceBinding, checked_id
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.platform.server import ServiceApp, run_main
from scalediffusion.platform.settings import (
    KafkaSettings,
    S3Settings,
    ServerSettings,
    SettingsError,
    env_float,
    env_int,
    env_str,
)
from scalediffusion.v1 import ingest_connect, ingest_pb2, world_connect, world_pb2
from services.ingest import admin, auth, checks, sessions
from services.ingest.completion import Completion, load_manifest
from services.ingest.outcomes import OutcomeConsumer, OutcomeSettings
from services.ingest.reconciler import Reconciler, ReconcilerSettings
from services.ingest.records import IngestRecords
from services.ingest.starting import Starting
from services.ingest.world import WorldServicer

log = get_logger("ingest")

SESSIONS_STARTED = Counter("sd_ingest_sessions_started_total", "Sessions started (upload targets issued)")
AUTH_FAILED = Counter("sd_ingest_auth_failures_total", "Calls refused for credentials, by reason", ["reason"])

GRPC_PORT, GRPCWEB_PORT, METRICS_PORT = 50051, 8080, 9400
CONSUMER_GROUP = "ingest"


@dataclass(frozen=True)
class IngestSettings:
    server: ServerSettings
    s3: S3Settings
    kafka: KafkaSettings
    limits: sessions.Limits
    telemetry: checks.TelemetryLimits
    consumer: ConsumerConfig
    token_key: bytes = field(repr=False)
    token_ttl_s: int = 7 * 24 * 3600  # default player token lifetime
    outcomes: OutcomeSettings = OutcomeSettings()
    reconciler: ReconcilerSettings = ReconcilerSettings()

    @classmethod
    def from_env(cls) -> IngestSettings:
        kafka = KafkaSettings.from_env()
        limits = sessions.Limits(
            max_video_bytes=env_int("SD_INGEST_MAX_VIDEO_BYTES", sessions.Limits.max_video_bytes),
            max_telemetry_bytes=env_int("SD_INGEST_MAX_TELEMETRY_BYTES", sessions.Limits.max_telemetry_bytes),
            max_label_bytes=env_int("SD_INGEST_MAX_LABEL_BYTES", sessions.Limits.max_label_bytes),
            upload_window_s=env_int("SD_INGEST_UPLOAD_WINDOW_S", sessions.Limits.upload_window_s),
            expiry_grace_s=env_int("SD_INGEST_EXPIRY_GRACE_S", sessions.Limits.expiry_grace_s),
            multipart_threshold_bytes=env_int("SD_INGEST_MULTIPART_THRESHOLD_BYTES", sessions.Limits.multipart_threshold_bytes),
            part_size_bytes=env_int("SD_INGEST_PART_BYTES", sessions.Limits.part_size_bytes),
            max_open_sessions=env_int("SD_INGEST_MAX_OPEN_SESSIONS", sessions.Limits.max_open_sessions),
            max_sessions_per_hour=env_int("SD_INGEST_MAX_SESSIONS_PER_HOUR", sessions.Limits.max_sessions_per_hour),
        )
        try:
            limits.validate()
        except ValueError as err:
            raise SettingsError(str(err)) from None
        key = env_str("SD_INGEST_TOKEN_KEY").encode()
        if len(key) < 32:
            raise SettingsError("SD_INGEST_TOKEN_KEY must be at least 32 characters (e.g. `openssl rand -hex 32`)")
        return cls(
            server=ServerSettings.from_env(grpc_port=GRPC_PORT, grpcweb_port=GRPCWEB_PORT, metrics_port=METRICS_PORT),
            s3=S3Settings.from_env(),
            kafka=kafka,
            limits=limits,
            telemetry=checks.TelemetryLimits(),
            consumer=ConsumerConfig(
                group=env_str("SD_INGEST_GROUP", CONSUMER_GROUP),
                topics=(events.SEGMENTS_READY, events.SESSIONS_REJECTED),
                max_poll_interval_ms=env_int("SD_KAFKA_MAX_POLL_INTERVAL_MS", 300_000),
                session_timeout_ms=env_int("SD_KAFKA_SESSION_TIMEOUT_MS", 10_000),
            ),
            token_key=key,
            token_ttl_s=env_int("SD_INGEST_TOKEN_TTL_S", cls.token_ttl_s),
            outcomes=OutcomeSettings(points_per_segment=env_int("SD_INGEST_POINTS_PER_SEGMENT", OutcomeSettings.points_per_segment)),
            reconciler=ReconcilerSettings(
                every_s=env_float("SD_INGEST_RECONCILE_S", ReconcilerSettings.every_s),
                republish_after_s=env_float("SD_INGEST_REPUBLISH_AFTER_S", ReconcilerSettings.republish_after_s),
                processing_timeout_s=env_float("SD_INGEST_PROCESSING_TIMEOUT_S", ReconcilerSettings.processing_timeout_s),
                expiry_grace_s=limits.expiry_grace_s,
            ),
        )


class IngestServicer:
    """IngestService: one object served on both transports (see scalediffusion.platform.rpc)."""

    def __init__(self, settings: IngestSettings, store: ObjectStore, bus: EventBus) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.bucket = settings.s3.bucket_raw
        self.manifests = ManifestStore(store, self.bucket)
        self.records = IngestRecords(store, self.bucket)
        self.signer = auth.TokenSigner(settings.token_key)
        self.outcomes = OutcomeConsumer(self.manifests, self.records, bus.topic, settings.outcomes)
        self.consumer = ConsumerLoop(bus, settings.consumer, self.outcomes.handle)
        self.starting = Starting(store, self.bucket, self.manifests, self.records, settings.limits)
        self.completion = Completion(store, self.bucket, self.manifests, self.records, bus, settings.limits, settings.telemetry)
        self.reconciler = Reconciler(store, self.bucket, self.manifests, self.records, self.completion.publish_uploaded, settings.reconciler)
        self._locks: dict[str, asyncio.Lock] = {}
        self._consumer_thread: threading.Thread | None = None
        self._reconciler: asyncio.Task | None = None

    # -- lifecycle hooks -------------------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self.store.ensure_buckets)
        await asyncio.to_thread(self.store.set_cors, self.bucket, self.settings.server.cors_origins)
        await asyncio.to_thread(self.bus.ensure_topics, [*events.ALL_TOPICS, events.dead_letter_topic(self.settings.consumer.group)])
        self._consumer_thread = threading.Thread(target=self.consumer.run_forever, name="ingest-outcomes", daemon=True)
        self._consumer_thread.start()
        self._reconciler = asyncio.create_task(self._reconcile_forever())

    async def stop(self) -> None:
        if self._reconciler is not None:
            self._reconciler.cancel()
        self.consumer.stop()
        if self._consumer_thread is not None:
            await asyncio.to_thread(self._consumer_thread.join, self.settings.server.shutdown_grace_s)
        await asyncio.to_thread(self.bus.close)

    # -- auth ---------------------------------------------------------------------------------------------------

    async def _caller(self, ctx: CallContext) -> auth.Claims:
        try:
            claims = self.signer.verify(auth.bearer_token(ctx.metadata), time.time())
            if await asyncio.to_thread(self.records.is_revoked, claims.token_id):
                raise auth.AuthError("revoked", "the bearer token was revoked; ask for a new one")
        except auth.AuthError as err:
            AUTH_FAILED.labels(err.reason).inc()
            raise RpcError(grpc.StatusCode.UNAUTHENTICATED, f"{err.reason}: {err}") from None
        return claims

    @staticmethod
    def _require_operator(claims: auth.Claims) -> None:
        if not claims.is_operator:
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "this RPC needs an operator token")

    @staticmethod
    def _require_owner(claims: auth.Claims, session: ingest_pb2.Session) -> None:
        if not claims.is_operator and session.player_id != claims.player_id:
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, f"session {session.session_id} belongs to another player")

    # -- RPCs -------------------------------------------------------------------------------------------------

    async def start_session(self, request: ingest_pb2.StartSessionRequest, ctx: CallContext) -> ingest_pb2.StartSessionResponse:
        claims = await self._caller(ctx)
        player_id = checked_id("player_id", request.player_id) if claims.is_operator and request.player_id else claims.player_id
        limits = self.settings.limits
        try:
            labels = sessions.check_label_streams(list(request.label_streams), limits)
        except sessions.CheckFailed as err:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"{err.check}: {err}") from None
        if request.expected_video_bytes > limits.max_video_bytes:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"expected_video_bytes {request.expected_video_bytes} is over the {limits.max_video_bytes}-byte limit")
        now = time.time()
        await asyncio.to_thread(self.starting.check_rate_limits, player_id, now)
        session_id = sessions.new_session_id(now)
        session = sessions.new_session(player_id, session_id, self.bucket, labels, limits, now)
        manifest = Manifest(session=session)
        targets = await asyncio.to_thread(self.starting.upload_targets, manifest, request.expected_video_bytes, now)
        await asyncio.to_thread(self.starting.record_new_session, manifest, now)
        SESSIONS_STARTED.inc()
        event(log, "session_started", session_id=session_id, player_id=player_id, multipart=bool(manifest.multipart))
        return ingest_pb2.StartSessionResponse(session_id=session_id, player_id=player_id, targets=targets)

    async def complete_session(self, request: ingest_pb2.CompleteSessionRequest, ctx: CallContext) -> ingest_pb2.CompleteSessionResponse:
        claims = await self._caller(ctx)
        session_id = checked_id("session_id", request.session_id)
        # One completion at a time per session in this process; across replicas the pending marker decides.
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            try:
                manifest = await self._load(session_id)
                self._require_owner(claims, manifest.session)
                if manifest.session.state == ingest_pb2.SESSION_STATE_EXPIRED:
                    raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, "session_expired: the session expired and its uploads were removed; start a new session")
                if manifest.session.state == ingest_pb2.SESSION_STATE_CREATED:
                    manifest = await asyncio.to_thread(self.completion.verify_and_record, manifest, list(request.objects), time.time())
                if manifest.session.state == ingest_pb2.SESSION_STATE_UPLOADED and not manifest.event_published:
                    await self._publish_uploaded(manifest)
            finally:
                self._locks.pop(session_id, None)
        return ingest_pb2.CompleteSessionResponse(session=manifest.session)

    async def get_session(self, request: ingest_pb2.GetSessionRequest, ctx: CallContext) -> ingest_pb2.Session:
        claims = await self._caller(ctx)
        manifest = await self._load(checked_id("session_id", request.session_id))
        self._require_owner(claims, manifest.session)
        return manifest.session

    async def list_sessions(self, request: ingest_pb2.ListSessionsRequest, ctx: CallContext) -> ingest_pb2.ListSessionsResponse:
        claims = await self._caller(ctx)
        if claims.is_operator:
            player_id = checked_id("player_id", request.player_id) if request.player_id else ""
        elif request.player_id and request.player_id != claims.player_id:
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "players can list only their own sessions")
        else:
            player_id = claims.player_id
        page_size = min(request.page.page_size or 50, 500)
        start_after = decode_page_token(request.page.page_token)
        return await asyncio.to_thread(self._list_sessions, player_id, request.state, page_size, start_after)

    async def issue_token(self, request: ingest_pb2.IssueTokenRequest, ctx: CallContext) -> ingest_pb2.IssueTokenResponse:
        self._require_operator(await self._caller(ctx))
        return await asyncio.to_thread(self.issue_token_locally, request)

    def issue_token_locally(self, request: ingest_pb2.IssueTokenRequest) -> ingest_pb2.IssueTokenResponse:
        role = auth.OPERATOR if request.role == ingest_pb2.ROLE_OPERATOR else auth.PLAYER
        try:
            token, claims, player = admin.issue_token(
                self.records, self.signer, request.player_id, role, request.ttl_seconds or self.settings.token_ttl_s,
                request.wallet_address, request.display_name,
            )
        except ValueError as err:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None
        event(log, "token_issued", player_id=claims.player_id, role=role, token_id=claims.token_id, expires_at=claims.expires_at)
        return ingest_pb2.IssueTokenResponse(token=token, expires_at=now_timestamp(claims.expires_at), player=player, token_id=claims.token_id)

    async def revoke_token(self, request: ingest_pb2.RevokeTokenRequest, ctx: CallContext) -> ingest_pb2.RevokeTokenResponse:
        self._require_operator(await self._caller(ctx))
        token_id = checked_id("token_id", request.token_id)
        await asyncio.to_thread(self.records.revoke, token_id)
        event(log, "token_revoked", token_id=token_id)
        return ingest_pb2.RevokeTokenResponse()

    async def register_wallet(self, request: ingest_pb2.RegisterWalletRequest, ctx: CallContext) -> ingest_pb2.RegisterWalletResponse:
        claims = await self._caller(ctx)
        wallet = self._valid_wallet(request.wallet_address)

        def save() -> ingest_pb2.Player:
            player = self.records.load_player(claims.player_id)
            player.wallet_address = wallet
            self.records.save_player(player)
            return player

        return ingest_pb2.RegisterWalletResponse(player=await asyncio.to_thread(save))

    async def get_rewards(self, request: ingest_pb2.GetRewardsRequest, ctx: CallContext) -> ingest_pb2.GetRewardsResponse:
        claims = await self._caller(ctx)
        entries = await asyncio.to_thread(self.records.rewards, claims.player_id)
        start_after = decode_page_token(request.page.page_token)
        page_size = min(request.page.page_size or 100, 1000)
        response = ingest_pb2.GetRewardsResponse(balance=sum(e.points for e in entries))
        remaining = [e for e in entries if e.segment_id > start_after] if start_after else entries
        for entry in remaining[:page_size]:
            response.entries.add(
                entry_id=entry.segment_id, segment_id=entry.segment_id, session_id=entry.session_id, points=entry.points,
                credited_at=now_timestamp(entry.credited_at_ms / 1000),
            )
        if len(remaining) > page_size:
            response.next_page_token = encode_page_token(remaining[page_size - 1].segment_id)
        return response

    # -- CompleteSession's event -------------------------------------------------------------------------------

    async def _publish_uploaded(self, manifest: Manifest) -> None:
        try:
            await asyncio.to_thread(self.completion.publish_uploaded, manifest)
        except Exception as err:  # noqa: BLE001 - the manifest says UPLOADED; the reconciler or a retry re-publishes
            event(log, "publish_failed", session_id=manifest.session.session_id, error=repr(err))
            raise RpcError(grpc.StatusCode.UNAVAILABLE, "the session is recorded but its event could not be published yet; it will be, and a retry of CompleteSession is safe") from None

    # -- reads ------------------------------------------------------------------------------------------------

    async def _load(self, session_id: str) -> Manifest:
        return await asyncio.to_thread(load_manifest, self.manifests, session_id)

    def _list_sessions(self, player_id: str, state: int, page_size: int, start_after: str) -> ingest_pb2.ListSessionsResponse:
        response = ingest_pb2.ListSessionsResponse()
        if player_id:
            ids = self.records.player_sessions(player_id, start_after)
        else:
            start = keys.manifest_key(start_after) if start_after else ""
            ids = (keys.session_of_manifest_key(k) for k in self.store.list_keys(self.bucket, keys.MANIFESTS_PREFIX, start_after=start))
        for session_id in ids:
            manifest = self.manifests.load(session_id)
            if manifest is None or (state and manifest.session.state != state):
                continue
            response.sessions.append(manifest.session)
            if len(response.sessions) >= page_size:
                response.next_page_token = encode_page_token(session_id)
                break
        return response

    @staticmethod
    def _valid_wallet(address: str) -> str:
        try:
            return auth.validate_wallet(address)
        except ValueError as err:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"wallet_address: {err}") from None

    # -- reconciler (every replica; each step idempotent) -----------------------------------------------------------

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconciler.every_s)
            try:
                await asyncio.to_thread(self.reconciler.step, time.time())
            except Exception as err:  # noqa: BLE001 - the next round retries
                event(log, "reconcile_failed", error=repr(err))


def build_app(settings: IngestSettings) -> ServiceApp:
    store = ObjectStore(settings.s3)
    bus = EventBus(settings.kafka, client_id="ingest")
    servicer = IngestServicer(settings, store, bus)
    bindings = [
        ServiceBinding(ingest_pb2.DESCRIPTOR.services_by_name["IngestService"], servicer),
        ServiceBinding(world_pb2.DESCRIPTOR.services_by_name["WorldService"], WorldServicer()),
    ]
    apps = [ingest_connect.IngestServiceASGIApplication, world_connect.WorldServiceASGIApplication]
    return ServiceApp("ingest", settings.server, bindings, apps, hooks=servicer)


def main() -> None:
    run_main("ingest", IngestSettings.from_env, build_app)


if __name__ == "__main__":
    main()
