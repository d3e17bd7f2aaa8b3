"""Processor service process: the sessions.uploaded consumer plus ProcessorService over gRPC."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import grpc
from google.protobuf import json_format

from scalediffusion.platform import datasets, events, keys
from scalediffusion.platform.kafka import ConsumerConfig, ConsumerLoop, EventBus
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.manifests import ManifestStore
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
from scalediffusion.v1 import events_pb2, ingest_pb2, processor_connect, processor_pb2
from services.processor import clean, pipeline
from services.processor.lights import LightSettings
from services.processor.replay import ReplaySettings
from services.processor.splice import SpliceSettings
from services.processor.targets import TargetSettings
from services.processor.videocheck import VideoCheckSettings
from services.processor.worker import SessionWorker, WorkerSettings

log = get_logger("processor")

GRPC_PORT, GRPCWEB_PORT, METRICS_PORT = 50053, 0, 9402
CONSUMER_GROUP = "processor"


@dataclass(frozen=True)
class ProcessorSettings:
    server: ServerSettings
    s3: S3Settings
    kafka: KafkaSettings
    worker: WorkerSettings
    consumer: ConsumerConfig

    @classmethod
    def from_env(cls) -> ProcessorSettings:
        kafka = KafkaSettings.from_env()
        return cls(
            server=ServerSettings.from_env(grpc_port=GRPC_PORT, grpcweb_port=GRPCWEB_PORT, metrics_port=METRICS_PORT),
            s3=S3Settings.from_env(),
            kafka=kafka,
            worker=worker_settings_from_env(),
            consumer=ConsumerConfig(
                group=env_str("SD_PROCESSOR_GROUP", CONSUMER_GROUP),
                topics=(events.SESSIONS_UPLOADED,),
                max_attempts=env_int("SD_PROCESSOR_MAX_ATTEMPTS", 3),
                max_poll_interval_ms=env_int("SD_KAFKA_MAX_POLL_INTERVAL_MS", 300_000),
                session_timeout_ms=env_int("SD_KAFKA_SESSION_TIMEOUT_MS", 10_000),
            ),
        )


def worker_settings_from_env() -> WorkerSettings:
    splice = SpliceSettings(
        segment_s=env_float("SD_SEGMENT_S", SpliceSettings.segment_s),
        min_segment_s=env_float("SD_MIN_SEGMENT_S", SpliceSettings.min_segment_s),
        output_fps=env_float("SD_OUTPUT_FPS", SpliceSettings.output_fps),
        max_gap_intervals=env_float("SD_MAX_GAP_INTERVALS", SpliceSettings.max_gap_intervals),
        max_gap_ms=env_float("SD_MAX_GAP_MS", SpliceSettings.max_gap_ms),
        max_render_jump_ms=env_float("SD_MAX_RENDER_JUMP_MS", SpliceSettings.max_render_jump_ms),
        teleport_slack_m=env_float("SD_TELEPORT_SLACK_M", SpliceSettings.teleport_slack_m),
    )
    target_settings = TargetSettings(
        waypoint_count=env_int("SD_WAYPOINTS", TargetSettings.waypoint_count),
        waypoint_step_s=env_float("SD_WAYPOINT_STEP_S", TargetSettings.waypoint_step_s),
        off_expert_steer=env_float("SD_OFF_EXPERT_STEER", TargetSettings.off_expert_steer),
    )
    light_settings = LightSettings(range_m=env_float("SD_LIGHT_RANGE_M", LightSettings.range_m))
    replay_settings = ReplaySettings(
        max_divergent_fraction=env_float("SD_REPLAY_MAX_DIVERGENT_FRACTION", ReplaySettings.max_divergent_fraction))
    video_settings = VideoCheckSettings(
        enabled=env_str("SD_VIDEO_CHECK", "true").lower() != "false",
        min_agreement=env_float("SD_VIDEO_MIN_AGREEMENT", VideoCheckSettings.min_agreement))
    unknown_worlds = env_str("SD_UNKNOWN_WORLDS", WorkerSettings.unknown_worlds)
    try:
        if unknown_worlds not in ("reject", "accept"):
            raise ValueError(f"SD_UNKNOWN_WORLDS must be 'reject' or 'accept', not {unknown_worlds!r}")
        splice.validate()
        target_settings.validate()
        light_settings.validate()
        replay_settings.validate()
        video_settings.validate()
        thresholds = clean.CleanThresholds.from_json(env_str("SD_CLEAN_THRESHOLDS", "{}"))
        thresholds.validate()
    except ValueError as err:
        raise SettingsError(str(err)) from None
    return WorkerSettings(
        dataset=keys.check_id("dataset", env_str("SD_DATASET", WorkerSettings.dataset)),
        splice=splice,
        clean=thresholds,
        targets=target_settings,
        lights=light_settings,
        replay=replay_settings,
        video=video_settings,
        replay_labels=env_str("SD_REPLAY_LABELS", "true").lower() != "false",
        unknown_worlds=unknown_worlds,
        upload_threads=env_int("SD_UPLOAD_THREADS", WorkerSettings.upload_threads),
        plot=env_str("SD_QUALITY_PLOT", "true").lower() != "false",
    )


class ProcessorServicer:
    """ProcessorService plus the consumer thread's lifecycle."""

    def __init__(self, settings: ProcessorSettings, store: ObjectStore, bus: EventBus) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.worker = SessionWorker(store, bus, settings.worker, settings.s3.bucket_clean)
        self.loop = ConsumerLoop(bus, settings.consumer, self.worker.handle_record)
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.store.ensure_buckets)
        await asyncio.to_thread(
            self.bus.ensure_topics, [*events.ALL_TOPICS, events.dead_letter_topic(self.settings.consumer.group)]
        )
        self._thread = threading.Thread(target=self._run_consumer, name="processor-consumer", daemon=True)
        self._thread.start()

    def _run_consumer(self) -> None:
        self.loop.run_forever()

    async def stop(self) -> None:
        """Finishes the record in hand (its output and commit), then leaves the group."""
        self.loop.stop()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, self.settings.server.shutdown_grace_s)
        await asyncio.to_thread(self.worker.close)
        await asyncio.to_thread(self.bus.close)

    async def get_session_report(self, request: processor_pb2.GetSessionReportRequest, ctx: CallContext) -> processor_pb2.QualityReport:
        session_id = checked_id("session_id", request.session_id)
        dataset = checked_id("dataset", request.dataset) if request.dataset else self.settings.worker.dataset
        doc = await asyncio.to_thread(self.store.get_json, self.settings.s3.bucket_clean, keys.report_prefix(dataset, session_id) + "quality.json")
        if doc is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"session {session_id} has not been processed (no report yet)")
        return json_format.ParseDict(doc, processor_pb2.QualityReport())

    async def get_dataset_stats(self, request: processor_pb2.GetDatasetStatsRequest, ctx: CallContext) -> processor_pb2.DatasetStats:
        dataset = checked_id("dataset", request.dataset)
        return await asyncio.to_thread(self._dataset_stats, dataset)

    async def reprocess(self, request: processor_pb2.ReprocessRequest, ctx: CallContext) -> processor_pb2.ReprocessResponse:
        session_id = checked_id("session_id", request.session_id)
        manifest = await asyncio.to_thread(ManifestStore(self.store, self.settings.s3.bucket_raw).load, session_id)
        if manifest is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"session {session_id} does not exist")
        session = manifest.session
        if session.state in (ingest_pb2.SESSION_STATE_CREATED, ingest_pb2.SESSION_STATE_EXPIRED) or not session.objects:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"session {session_id} is {ingest_pb2.SessionState.Name(session.state)}: nothing verified to process")
        by_kind = {o.kind: o.key for o in session.objects}
        message = events_pb2.SessionUploaded(
            session_id=session.session_id,
            player_id=session.player_id,
            bucket=session.bucket,
            video_key=by_kind.get(ingest_pb2.UPLOAD_KIND_VIDEO, ""),
            telemetry_key=by_kind.get(ingest_pb2.UPLOAD_KIND_TELEMETRY, ""),
            uploaded_at=session.updated_at,
            attempt=manifest.publish_attempts + 1,
            reprocess=True,
        )
        await asyncio.to_thread(self.bus.publish, events.SESSIONS_UPLOADED, session_id, message)
        event(log, "reprocess_queued", session_id=session_id)
        return processor_pb2.ReprocessResponse(queued=True)

    def _dataset_stats(self, dataset: str) -> processor_pb2.DatasetStats:
        stats = processor_pb2.DatasetStats(dataset=dataset, speed_bin_edges=list(pipeline.SPEED_BIN_EDGES))
        hist = [0] * (len(pipeline.SPEED_BIN_EDGES) - 1)
        session_ids = set()
        for entry in datasets.iter_index(self.store, self.settings.s3.bucket_clean, dataset):
            seg = entry.segment
            stats.segment_count += 1
            stats.frame_count += seg.frame_count
            stats.distance_km += seg.distance_m / 1000.0
            stats.duration_s += seg.duration_s
            session_ids.add(seg.session_id)
            for command, count in seg.command_counts.items():
                stats.command_counts[command] += count
            for i, count in enumerate(entry.speed_hist[: len(hist)]):
                hist[i] += count
        if stats.segment_count == 0:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"dataset {dataset!r} has no segments")
        stats.session_count = len(session_ids)
        stats.speed_bin_counts.extend(hist)
        return stats


def build_app(settings: ProcessorSettings) -> ServiceApp:
    store = ObjectStore(settings.s3)
    bus = EventBus(settings.kafka, client_id="processor")
    servicer = ProcessorServicer(settings, store, bus)
    binding = ServiceBinding(processor_pb2.DESCRIPTOR.services_by_name["ProcessorService"], servicer)
    return ServiceApp("processor", settings.server, [binding], [processor_connect.ProcessorServiceASGIApplication], hooks=servicer)


def main() -> None:
    run_main("processor", ProcessorSettings.from_env, build_app)


if __name__ == "__main__":
    main()
