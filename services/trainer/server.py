"""Trainer service process: TrainerService over gRPC and gRPC-Web.

Thin: datasets come from the processor's index (scalediffusion.platform.datasets), jobs from the JobManager
(services/trainer/runner.py), evaluation reports from the reports bucket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc
from google.protobuf import json_format

from scalediffusion.platform import datasets, events, keys
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.logs import get_logger
from scalediffusion.platform.paging import decode_page_token, encode_page_token
from scalediffusion.platform.rpc import CallContext, RpcError, ServiceBinding, checked_id
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.platform.server import ServiceApp, run_main
from scalediffusion.platform.settings import KafkaSettings, S3Settings, ServerSettings
from scalediffusion.v1 import trainer_connect, trainer_pb2
from services.trainer.runner import JobManager, RunnerSettings

log = get_logger("trainer")

GRPC_PORT, GRPCWEB_PORT, METRICS_PORT = 50054, 8083, 9403


@dataclass(frozen=True)
class TrainerSettings:
    server: ServerSettings
    s3: S3Settings
    kafka: KafkaSettings
    runner: RunnerSettings

    @classmethod
    def from_env(cls) -> TrainerSettings:
        return cls(
            server=ServerSettings.from_env(grpc_port=GRPC_PORT, grpcweb_port=GRPCWEB_PORT, metrics_port=METRICS_PORT),
            s3=S3Settings.from_env(),
            kafka=KafkaSettings.from_env(),
            runner=RunnerSettings.from_env(),
        )


class TrainerServicer:
    def __init__(self, settings: TrainerSettings, store: ObjectStore, bus: EventBus) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.bucket = settings.s3.bucket_clean
        self.jobs = JobManager(store, settings.s3, bus, settings.runner)

    async def start(self) -> None:
        await asyncio.to_thread(self.store.ensure_buckets)
        await asyncio.to_thread(self.bus.ensure_topics, [events.TRAINER_EVENTS])
        await self.jobs.start()

    async def stop(self) -> None:
        await self.jobs.stop()
        await asyncio.to_thread(self.bus.close)

    async def list_datasets(self, request: trainer_pb2.ListDatasetsRequest, ctx: CallContext) -> trainer_pb2.ListDatasetsResponse:
        return await asyncio.to_thread(self._list_datasets)

    async def list_segments(self, request: trainer_pb2.ListSegmentsRequest, ctx: CallContext) -> trainer_pb2.ListSegmentsResponse:
        dataset = checked_id("dataset", request.dataset)
        page_size = min(request.page.page_size or 100, 1000)
        start_after = decode_page_token(request.page.page_token)
        return await asyncio.to_thread(self._list_segments, dataset, page_size, start_after)

    async def start_training(self, request: trainer_pb2.StartTrainingRequest, ctx: CallContext) -> trainer_pb2.Job:
        return await self.jobs.start_training(request)

    async def start_evaluation(self, request: trainer_pb2.StartEvaluationRequest, ctx: CallContext) -> trainer_pb2.Job:
        return await self.jobs.start_evaluation(request)

    async def get_job(self, request: trainer_pb2.GetJobRequest, ctx: CallContext) -> trainer_pb2.Job:
        return await self.jobs.get(request.job_id)

    async def list_jobs(self, request: trainer_pb2.ListJobsRequest, ctx: CallContext) -> trainer_pb2.ListJobsResponse:
        page_size = min(request.page.page_size or 100, 1000)
        start_after = decode_page_token(request.page.page_token)
        found, last = await self.jobs.list(start_after, page_size, request.kind, request.state)
        return trainer_pb2.ListJobsResponse(jobs=found, next_page_token=encode_page_token(last) if last else "")

    async def watch_job(self, request: trainer_pb2.WatchJobRequest, ctx: CallContext):
        async for job in self.jobs.watch(request.job_id):
            yield job

    async def get_evaluation_report(self, request: trainer_pb2.GetEvaluationReportRequest, ctx: CallContext) -> trainer_pb2.EvaluationReport:
        eval_id = checked_id("eval id", request.eval_id)
        doc = await asyncio.to_thread(self.store.get_json, self.settings.s3.bucket_reports, keys.eval_key(eval_id, "report.json"))
        if isinstance(doc, dict):
            return json_format.ParseDict(doc, trainer_pb2.EvaluationReport(), ignore_unknown_fields=True)
        job = await self.jobs.get(eval_id)  # NOT_FOUND for an unknown evaluation
        state = trainer_pb2.JobState.Name(job.state)
        raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"evaluation {eval_id!r} has no report yet (job {state}: {job.message})")

    def _list_datasets(self) -> trainer_pb2.ListDatasetsResponse:
        response = trainer_pb2.ListDatasetsResponse()
        for name in datasets.list_datasets(self.store, self.bucket):
            entries = list(datasets.iter_index(self.store, self.bucket, name))
            if entries:
                response.datasets.append(
                    trainer_pb2.Dataset(
                        name=name,
                        bucket=self.bucket,
                        segment_count=len(entries),
                        frame_count=sum(e.segment.frame_count for e in entries),
                    )
                )
        return response

    def _list_segments(self, dataset: str, page_size: int, start_after: str) -> trainer_pb2.ListSegmentsResponse:
        response = trainer_pb2.ListSegmentsResponse()
        for entry in datasets.iter_index(self.store, self.bucket, dataset, start_after=start_after):
            response.segments.append(entry.segment)
            if len(response.segments) >= page_size:
                last = keys.dataset_index_key(dataset, entry.segment.segment_id)
                response.next_page_token = encode_page_token(last)
                break
        return response


def build_app(settings: TrainerSettings) -> ServiceApp:
    store = ObjectStore(settings.s3)
    bus = EventBus(settings.kafka, client_id="trainer")
    servicer = TrainerServicer(settings, store, bus)
    binding = ServiceBinding(trainer_pb2.DESCRIPTOR.services_by_name["TrainerService"], servicer)
    return ServiceApp("trainer", settings.server, [binding], [trainer_connect.TrainerServiceASGIApplication], hooks=servicer)


def main() -> None:
    run_main("trainer", TrainerSettings.from_env, build_app)


if __name__ == "__main__":
    main()
