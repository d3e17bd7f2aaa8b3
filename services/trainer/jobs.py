"""Trainer jobs as data: ids, records, and how a run's progress or a Kubernetes Job's status changes a job. No I/O.

A job record (``trainer.v1.Job``) lives in the models bucket at ``_jobs/<id>.json``: the record of truth, so a
restarted trainer picks up what it was doing. Every change of state, progress or metrics becomes a new version of
the record, a ``trainer.events`` message and a WatchJob update.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format

from scalediffusion.v1 import trainer_pb2

TERMINAL = frozenset({trainer_pb2.JOB_STATE_SUCCEEDED, trainer_pb2.JOB_STATE_FAILED, trainer_pb2.JOB_STATE_CANCELLED})
STATE_BY_NAME = {
    "PENDING": trainer_pb2.JOB_STATE_PENDING,
    "RUNNING": trainer_pb2.JOB_STATE_RUNNING,
    "SUCCEEDED": trainer_pb2.JOB_STATE_SUCCEEDED,
    "FAILED": trainer_pb2.JOB_STATE_FAILED,
    "CANCELLED": trainer_pb2.JOB_STATE_CANCELLED,
}


def new_job_id(kind: trainer_pb2.JobKind) -> str:
    prefix = "run" if kind == trainer_pb2.JOB_KIND_TRAINING else "eval"
    return f"{prefix}-{secrets.token_hex(6)}"


def now_ts(job: trainer_pb2.Job, field: str, when: datetime | None = None) -> None:
    getattr(job, field).FromDatetime(when or datetime.now(UTC))


def new_job(job_id: str, kind: trainer_pb2.JobKind, backend: trainer_pb2.Backend,
            output_prefix: str) -> trainer_pb2.Job:
    job = trainer_pb2.Job(job_id=job_id, kind=kind, state=trainer_pb2.JOB_STATE_PENDING, backend=backend,
                          output_prefix=output_prefix, message="queued")
    now_ts(job, "created_at")
    job.updated_at.CopyFrom(job.created_at)
    return job


@dataclass(frozen=True)
class JobRecord:
    """A job plus what the trainer needs to run it again after a restart."""

    job: trainer_pb2.Job
    request: dict  # the StartTraining/StartEvaluation request as JSON
    fingerprint: str  # of the request: a retry with the same id and request is the same job, another request is refused

    def to_doc(self) -> dict:
        return {"job": json_format.MessageToDict(self.job), "request": self.request, "fingerprint": self.fingerprint}

    @classmethod
    def from_doc(cls, doc: dict) -> JobRecord:
        return cls(json_format.ParseDict(doc["job"], trainer_pb2.Job()), doc.get("request", {}), doc.get("fingerprint", ""))


def apply_update(job: trainer_pb2.Job, state: trainer_pb2.JobState | None = None, progress: float | None = None,
                 message: str | None = None, metrics: dict[str, float] | None = None,
                 kubernetes_jobs: list[str] | None = None) -> bool:
    """Applies an observation to job in place; True when anything changed. A terminal job never changes again, and
    progress never goes backwards within a state (a resumed run reports from its checkpoint on)."""
    if job.state in TERMINAL:
        return False
    before = job.SerializeToString(deterministic=True)
    if state is not None and state != job.state:
        job.state = state
    if progress is not None:
        job.progress = max(0.0, min(1.0, float(progress)))
    if message is not None:
        job.message = message[:2000]
    if metrics:
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and value == value:  # skips NaN
                job.metrics[key] = float(value)
    if kubernetes_jobs is not None:
        del job.kubernetes_jobs[:]
        job.kubernetes_jobs.extend(kubernetes_jobs)
    if job.state == trainer_pb2.JOB_STATE_SUCCEEDED:
        job.progress = 1.0
    changed = job.SerializeToString(deterministic=True) != before
    if changed:
        now_ts(job, "updated_at")
    return changed


def observe_run_progress(job: trainer_pb2.Job, progress_doc: dict | None, process_exit: int | None) -> bool:
    """Folds a run's progress.json (training or embedded evaluation) and (local backend) its process exit code into
    the job.

    The process's exit decides the end: exit 0 with a SUCCEEDED document succeeds; any other exit fails with the
    run's own message when it wrote one (a killed process writes nothing, so its exit code is the message)."""
    doc = progress_doc or {}
    metrics = {k: v for k, v in (doc.get("metrics") or {}).items() if isinstance(v, (int, float))}
    message = doc.get("message")
    if process_exit is None:
        state = trainer_pb2.JOB_STATE_RUNNING if doc.get("state") == "RUNNING" else None
        return apply_update(job, state=state, progress=doc.get("progress"), message=message, metrics=metrics)
    if process_exit == 0 and doc.get("state") == "SUCCEEDED":
        return apply_update(job, state=trainer_pb2.JOB_STATE_SUCCEEDED, message=message or "done", metrics=metrics)
    reason = doc.get("message") if doc.get("state") == "FAILED" else f"the job's process exited with code {process_exit}"
    return apply_update(job, state=trainer_pb2.JOB_STATE_FAILED, message=reason, metrics=metrics)
