"""Runs trainer jobs on their backends and keeps their records: the I/O around services/trainer/jobs.py.

- local training: ``python -m services.trainer.train`` as a child process (a crash of the run is a failed job; a
  restart of the trainer starts unfinished runs again and they resume from their checkpoints);
- kubernetes training and carla evaluation: Kubernetes Jobs (services/trainer/k8s.py builds them), their status
  polled and folded into the job, with the run's own progress.json from S3;
- every change: the record in S3 first, then a ``trainer.events`` message, then WatchJob streams.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf import json_format, timestamp_pb2
from prometheus_client import Counter, Gauge

from scalediffusion.platform import events, keys
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.rpc import RpcError, checked_id
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.platform.settings import S3Settings, SettingsError, env_float, env_int, env_str
from scalediffusion.v1 import events_pb2, trainer_pb2
from services.trainer import jobs
from services.trainer.train import ConfigError, TrainConfig

log = get_logger("trainer.runner")
JOBS_ENDED = Counter("sd_trainer_jobs_ended_total", "Trainer jobs that ended, by kind, backend and state", ["kind", "backend", "state"])
JOBS_ACTIVE = Gauge("sd_trainer_jobs_active", "Trainer jobs not yet ended, by kind", ["kind"])
LOCAL_RUNS = Gauge("sd_trainer_local_runs", "Training runs executing as local child processes")
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunnerSettings:
    work_dir: Path  # logs of local runs and the decoded-frame cache
    local_slots: int  # local runs (training, embedded evaluation) at once; each uses every core it can get
    poll_s: float

    @classmethod
    def from_env(cls) -> RunnerSettings:
        return cls(
            work_dir=Path(env_str("SD_TRAINER_WORK_DIR", str(Path.home() / ".cache" / "scale-diffusion" / "trainer"))),
            local_slots=env_int("SD_TRAINER_LOCAL_SLOTS", 1),
            poll_s=env_float("SD_TRAINER_POLL_S", 2.0),
        )


def fingerprint(request) -> str:
    """Of the request without its client-chosen id: a retry with the same id is the same job only if it asks the same."""
    copy = type(request)()
    copy.CopyFrom(request)
    for id_field in ("run_id", "eval_id"):
        if copy.DESCRIPTOR.fields_by_name.get(id_field) is not None:
            copy.ClearField(id_field)
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()[:32]


class JobStore:
    """Job records in the models bucket (``_jobs/<id>.json``)."""

    def __init__(self, store: ObjectStore, bucket: str) -> None:
        self.store, self.bucket = store, bucket

    def create(self, record: jobs.JobRecord) -> bool:
        """False when a job with this id exists (S3 conditional create: one of two racing starts wins)."""
        data = json.dumps(record.to_doc()).encode()
        return self.store.put_if_absent(self.bucket, keys.job_record_key(record.job.job_id), data)

    def save(self, record: jobs.JobRecord) -> None:
        self.store.put_json(self.bucket, keys.job_record_key(record.job.job_id), record.to_doc())

    def get(self, job_id: str) -> jobs.JobRecord | None:
        doc = self.store.get_json(self.bucket, keys.job_record_key(job_id))
        return jobs.JobRecord.from_doc(doc) if isinstance(doc, dict) else None

    def list(self, start_after: str = "") -> list[jobs.JobRecord]:
        records = []
        for key in self.store.list_keys(self.bucket, keys.JOBS_PREFIX, start_after=start_after):
            doc = self.store.get_json(self.bucket, key)
            if isinstance(doc, dict):
                records.append(jobs.JobRecord.from_doc(doc))
        return records


class JobManager:
    def __init__(self, store: ObjectStore, s3: S3Settings, bus: EventBus, settings: RunnerSettings,
                 kube_factory: Callable[[], object] | None = None) -> None:
        self.store, self.s3, self.bus, self.settings = store, s3, bus, settings
        self.records = JobStore(store, s3.bucket_models)
        self._kube_factory = kube_factory
        self._kube = None
        self._changed: dict[str, asyncio.Condition] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._slots = asyncio.Semaphore(settings.local_slots)
        self._cache: dict[str, jobs.JobRecord] = {}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Picks up unfinished jobs: local runs start again (and resume from their checkpoints), cluster jobs are watched."""
        self.settings.work_dir.mkdir(parents=True, exist_ok=True)
        for record in await asyncio.to_thread(self.records.list):
            if record.job.state not in jobs.TERMINAL:
                self._cache[record.job.job_id] = record
                self._count_active()
                event(log, "job_resumed_after_restart", job_id=record.job.job_id, state=trainer_pb2.JobState.Name(record.job.state))
                self._launch(record)

    async def stop(self) -> None:
        """Stops local runs (they resume from their last checkpoint when the trainer starts again)."""
        for proc in list(self._procs.values()):
            if proc.returncode is None:
                proc.terminate()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # ------------------------------------------------------------------ requests

    async def start_training(self, request: trainer_pb2.StartTrainingRequest) -> trainer_pb2.Job:
        backend = request.backend or trainer_pb2.BACKEND_LOCAL
        if backend not in (trainer_pb2.BACKEND_LOCAL, trainer_pb2.BACKEND_KUBERNETES):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "training runs on backend LOCAL or KUBERNETES")
        dataset = checked_id("dataset", request.dataset)
        try:
            config = TrainConfig.from_proto(request.config)
        except ConfigError as exc:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
        if backend == trainer_pb2.BACKEND_KUBERNETES:
            self._kube_client()  # FAILED_PRECONDITION now, not a failed job later, when no cluster is reachable
        if not await asyncio.to_thread(self._dataset_has_segments, dataset):
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"dataset {dataset!r} has no segments")
        job_id = checked_id("run id", request.run_id) if request.run_id else jobs.new_job_id(trainer_pb2.JOB_KIND_TRAINING)
        job = jobs.new_job(job_id, trainer_pb2.JOB_KIND_TRAINING, backend, f"{self.s3.bucket_models}/{job_id}/")
        request_doc = json_format.MessageToDict(request) | {"resolved_config": config.to_dict(), "dataset": dataset}
        return await self._create(jobs.JobRecord(job, request_doc, fingerprint(request)))

    async def start_evaluation(self, request: trainer_pb2.StartEvaluationRequest) -> trainer_pb2.Job:
        backend = request.backend or trainer_pb2.BACKEND_LOCAL
        if backend == trainer_pb2.BACKEND_KUBERNETES:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "evaluation runs on backend LOCAL (embedded simulator) or CARLA")
        model_run = checked_id("model run", request.model_run)
        embedded = backend == trainer_pb2.BACKEND_LOCAL
        suite = request.config.suite or ("easy@1" if embedded else "devtest@1")
        if "@" not in suite or not all(part for part in suite.split("@", 1)):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"suite {suite!r} must be <name>@<version>, e.g. devtest@1")
        if embedded:
            from scalediffusion.sim.suites import SUITES

            if suite not in SUITES:
                raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"the embedded evaluator has no suite {suite!r}; known: {', '.join(sorted(SUITES))}")
        metric_version = request.config.metric_version or "2.0"
        if metric_version not in ("2.0", "2.1"):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"metric_version {metric_version!r} must be 2.0 or 2.1")
        if await asyncio.to_thread(self.store.stat, self.s3.bucket_models, keys.run_key(model_run, "model.onnx")) is None:
            raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"run {model_run!r} has no model.onnx (not trained, or not finished)")
        if not embedded:
            self._kube_client()
        job_id = checked_id("eval id", request.eval_id) if request.eval_id else jobs.new_job_id(trainer_pb2.JOB_KIND_EVALUATION)
        job = jobs.new_job(job_id, trainer_pb2.JOB_KIND_EVALUATION, backend, f"{self.s3.bucket_reports}/{job_id}/")
        request_doc = json_format.MessageToDict(request) | {"suite": suite, "metric_version": metric_version}
        return await self._create(jobs.JobRecord(job, request_doc, fingerprint(request)))

    async def get(self, job_id: str) -> trainer_pb2.Job:
        checked_id("job id", job_id)
        record = self._cache.get(job_id) or await asyncio.to_thread(self.records.get, job_id)
        if record is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"job {job_id!r} not found")
        return record.job

    async def list(self, start_after_id: str, page_size: int, kind: int, state: int) -> tuple[list[trainer_pb2.Job], str]:
        start_after = keys.job_record_key(checked_id("page token", start_after_id)) if start_after_id else ""
        found, last = [], ""
        for record in await asyncio.to_thread(self.records.list, start_after):
            job = self._cache.get(record.job.job_id, record).job
            last = job.job_id
            if (not kind or job.kind == kind) and (not state or job.state == state):
                found.append(job)
                if len(found) >= page_size:
                    return found, last
        return found, ""

    async def watch(self, job_id: str) -> AsyncIterator[trainer_pb2.Job]:
        """The job now, then each new version, until it ends."""
        job = await self.get(job_id)
        condition = self._changed.setdefault(job_id, asyncio.Condition())
        sent = None
        while True:
            current = self._cache[job_id].job if job_id in self._cache else job
            if sent is None or current.SerializeToString(deterministic=True) != sent:
                sent = current.SerializeToString(deterministic=True)
                snapshot = trainer_pb2.Job()
                snapshot.CopyFrom(current)
                yield snapshot
            if current.state in jobs.TERMINAL:
                return
            async with condition:
                try:
                    await asyncio.wait_for(condition.wait(), timeout=self.settings.poll_s * 5)
                except TimeoutError:
                    pass
            if job_id not in self._cache:  # finished before this watcher looked again: read the final record
                job = await self.get(job_id)

    # ------------------------------------------------------------------ internals

    def _count_active(self) -> None:
        for kind in (trainer_pb2.JOB_KIND_TRAINING, trainer_pb2.JOB_KIND_EVALUATION):
            JOBS_ACTIVE.labels(trainer_pb2.JobKind.Name(kind)).set(sum(r.job.kind == kind for r in self._cache.values()))

    def _dataset_has_segments(self, dataset: str) -> bool:
        return next(iter(self.store.list_keys(self.s3.bucket_clean, keys.dataset_index_prefix(dataset))), None) is not None

    async def _create(self, record: jobs.JobRecord) -> trainer_pb2.Job:
        job_id = record.job.job_id
        if not await asyncio.to_thread(self.records.create, record):
            existing = await asyncio.to_thread(self.records.get, job_id)
            if existing is not None and existing.fingerprint == record.fingerprint:
                return self._cache.get(job_id, existing).job  # an idempotent retry
            raise RpcError(grpc.StatusCode.ALREADY_EXISTS, f"job {job_id!r} exists with a different request")
        self._cache[job_id] = record
        self._count_active()
        await self._publish(record)
        event(log, "job_created", job_id=job_id, kind=trainer_pb2.JobKind.Name(record.job.kind),
              backend=trainer_pb2.Backend.Name(record.job.backend))
        self._launch(record)
        return record.job

    def _launch(self, record: jobs.JobRecord) -> None:
        job = record.job
        if job.backend in (trainer_pb2.BACKEND_KUBERNETES, trainer_pb2.BACKEND_CARLA):
            runner = self._run_on_kubernetes(record)
        elif job.kind == trainer_pb2.JOB_KIND_TRAINING:
            runner = self._run_local_process(record, [
                "services.trainer.train", "--run-id", job.job_id, "--dataset", record.request["dataset"],
                "--config-json", json.dumps(record.request["resolved_config"]), "--cache-dir", str(self.settings.work_dir / "cache"),
            ], self.s3.bucket_models, keys.run_key(job.job_id, "progress.json"))
        else:  # the embedded evaluator (scalediffusion/sim/evaluate.py), reading the model from and writing to S3
            config = record.request.get("config", {})
            seed = ["--seed", str(int(config["seed"]))] if config.get("seed") else []
            runner = self._run_local_process(record, [
                "scalediffusion.sim.evaluate", "--eval-id", job.job_id, "--model-run", record.request["modelRun"],
                "--suite", record.request["suite"], "--metric-version", record.request["metric_version"], *seed,
            ], self.s3.bucket_reports, keys.eval_key(job.job_id, "progress.json"))
        self._tasks[job.job_id] = asyncio.create_task(self._guarded(record, runner), name=f"job-{job.job_id}")

    async def _guarded(self, record: jobs.JobRecord, runner) -> None:
        """A bug in a backend fails its job, with the reason, instead of leaving it PENDING forever."""
        try:
            await runner
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s: its backend failed", record.job.job_id)
            await self.update(record, state=trainer_pb2.JOB_STATE_FAILED, message=f"internal error: {type(exc).__name__}: {exc}")

    async def update(self, record: jobs.JobRecord, **changes) -> None:
        if jobs.apply_update(record.job, **changes):
            await self._changed_record(record)

    async def _changed_record(self, record: jobs.JobRecord) -> None:
        await asyncio.to_thread(self.records.save, record)
        await self._publish(record)
        if record.job.state in jobs.TERMINAL:
            self._cache.pop(record.job.job_id, None)
            job = record.job
            JOBS_ENDED.labels(trainer_pb2.JobKind.Name(job.kind), trainer_pb2.Backend.Name(job.backend),
                              trainer_pb2.JobState.Name(job.state)).inc()
            self._count_active()
            event(log, "job_ended", job_id=record.job.job_id, state=trainer_pb2.JobState.Name(record.job.state),
                  job_message=record.job.message)
        condition = self._changed.setdefault(record.job.job_id, asyncio.Condition())
        async with condition:
            condition.notify_all()

    async def _publish(self, record: jobs.JobRecord) -> None:
        message = events_pb2.TrainerEvent(schema_version=events.SCHEMA_VERSION, job=record.job, at=timestamp_pb2.Timestamp())
        message.at.GetCurrentTime()
        try:
            await asyncio.to_thread(self.bus.publish, events.TRAINER_EVENTS, record.job.job_id, message)
        except Exception as exc:  # noqa: BLE001 - the record in S3 is the truth; an event lost to a broker outage is logged
            event(log, "trainer_event_not_published", job_id=record.job.job_id, error=repr(exc))

    async def _fail(self, record: jobs.JobRecord, message: str) -> None:
        await self.update(record, state=trainer_pb2.JOB_STATE_FAILED, message=message)

    async def _run_local_process(self, record: jobs.JobRecord, module_args: Sequence[str], progress_bucket: str,
                                 progress_key: str) -> None:
        """Runs `python -m <module_args>` as a child (dying with this process), folding its progress document and
        exit code into the job."""
        job = record.job
        async with self._slots:
            log_path = self.settings.work_dir / f"{job.job_id}.log"
            with open(log_path, "ab") as log_file:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", *module_args, "--no-progress", "--exit-with-parent", str(os.getpid()),
                    cwd=REPO_ROOT, env=os.environ.copy(), stdout=log_file, stderr=asyncio.subprocess.STDOUT,
                )
            self._procs[job.job_id] = proc
            LOCAL_RUNS.inc()
            event(log, "local_run_started", job_id=job.job_id, entry_point=module_args[0], pid=proc.pid, log_file=str(log_path))
            await self.update(record, state=trainer_pb2.JOB_STATE_RUNNING, message="starting")
            try:
                while True:
                    exit_code = None
                    try:
                        exit_code = await asyncio.wait_for(proc.wait(), timeout=self.settings.poll_s)
                    except TimeoutError:
                        pass
                    progress = await asyncio.to_thread(self.store.get_json, progress_bucket, progress_key)
                    if jobs.observe_run_progress(job, progress if isinstance(progress, dict) else None, exit_code):
                        await self._changed_record(record)
                    if exit_code is not None:
                        return
            finally:
                self._procs.pop(job.job_id, None)
                LOCAL_RUNS.dec()

    def _kube_client(self):
        if self._kube is None:
            from services.trainer.kube_backend import KubernetesUnavailable

            try:
                self._kube = (self._kube_factory or _default_kube_factory)()
            except SettingsError as exc:
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"the trainer is not configured for Kubernetes Jobs: {exc}") from None
            except KubernetesUnavailable as exc:
                raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, f"no Kubernetes cluster reachable: {exc}") from None
        return self._kube

    async def _run_on_kubernetes(self, record: jobs.JobRecord) -> None:
        from services.trainer import kube_runs

        try:
            kube = self._kube_client()
        except RpcError as exc:
            await self._fail(record, exc.message)
            return
        await kube_runs.run(self, kube, record)


def _default_kube_factory():
    from services.trainer.k8s import KubeJobSettings
    from services.trainer.kube_backend import KubeJobs

    return KubeJobs(KubeJobSettings.from_env())

