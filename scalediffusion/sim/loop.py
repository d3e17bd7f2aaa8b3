"""Bots against a running stack, and the whole loop in one command:

    bots play N sessions -> ingest -> processor builds the dataset -> trainer trains a small policy (waypoints or CILRS)
    -> the embedded evaluator scores it (Leaderboard 2.0) -> a summary with how long each stage took

Everything goes through the services' public RPCs and the real upload path; nothing here touches S3 or Kafka
directly. Used by `scale-diffusion bots` and `scale-diffusion loop` (scalediffusion/stack/cli.py).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

from scalediffusion.sim.bots import RECORDING_FORMAT, BotConfig, play_session
from scalediffusion.uploader import upload_session
from scalediffusion.v1 import (
    ingest_pb2,
    ingest_pb2_grpc,
    processor_pb2,
    processor_pb2_grpc,
    trainer_pb2,
    trainer_pb2_grpc,
)

TERMINAL = {trainer_pb2.JOB_STATE_SUCCEEDED, trainer_pb2.JOB_STATE_FAILED, trainer_pb2.JOB_STATE_CANCELLED}


class LoopError(RuntimeError):
    """A stage of the loop did not finish; the message says which and why."""


def recording_dir(root: str | Path, config: BotConfig) -> Path:
    """Where recordings of one bot configuration are kept: a folder per configuration (its hash), so a changed
    configuration never reuses recordings made under another."""
    # Numbers hashed as floats: BotConfig(seconds=60) and BotConfig(seconds=60.0) are the same configuration.
    doc = {k: float(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for k, v in asdict(config).items()}
    doc["recording_format"] = RECORDING_FORMAT
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
    return Path(root) / f"bots-{digest}"


def _record(seed: int, config: BotConfig, keep_dir: str | None = None) -> tuple[int, bytes, bytes]:
    """(seed, video, telemetry) of bot session `seed`; with keep_dir, read from / written to disk (a recording is
    deterministic for its seed and configuration, and rendering is the slow part of a bot session)."""
    if keep_dir:
        video_path, telemetry_path = Path(keep_dir) / f"bot-{seed}.webm", Path(keep_dir) / f"bot-{seed}.telemetry.pb"
        if video_path.exists() and telemetry_path.exists():
            return seed, video_path.read_bytes(), telemetry_path.read_bytes()
    session = play_session(seed, config)
    telemetry = session.telemetry.SerializeToString()
    if keep_dir:
        Path(keep_dir).mkdir(parents=True, exist_ok=True)
        for path, blob in ((telemetry_path, telemetry), (video_path, session.video)):  # video last: it marks "complete"
            tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
            tmp.write_bytes(blob)
            os.replace(tmp, path)
    return seed, session.video, telemetry


def record_bots(count: int, config: BotConfig, keep_dir: str | Path, workers: int = 2, first_seed: int = 0,
                on_done: Callable[[int], None] | None = None) -> Path:
    """Renders bot sessions first_seed .. first_seed+count-1 into keep_dir/bots-<config hash>/ (skipping those
    already there) without uploading them; run_bots with the same keep_dir uploads them later."""
    folder = recording_dir(keep_dir, config)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=spawn) as pool:
        futures = [pool.submit(_record, first_seed + k, config, str(folder)) for k in range(count)]
        for future in futures:
            future.result()
            if on_done:
                on_done(1)
    return folder


def run_bots(ingest_channel: grpc.Channel, auth: Callable[[int], tuple], count: int, config: BotConfig,
             workers: int = 2, first_seed: int = 0, on_done: Callable[[int], None] | None = None,
             keep_dir: str | Path | None = None) -> list[str]:
    """Plays `count` sessions (rendering in `workers` processes, uploads in threads, as they finish) and returns
    the session ids ingest accepted. auth(k) gives bot k's gRPC metadata (its player token). With keep_dir,
    recordings are kept there and reused (record_bots)."""
    ingest = ingest_pb2_grpc.IngestServiceStub(ingest_channel)
    session_ids: list[str] = []
    folder = str(recording_dir(keep_dir, config)) if keep_dir else None
    # Spawned, not forked: the caller holds gRPC channels (and their threads), which a fork would copy half-alive.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=spawn) as render_pool, ThreadPoolExecutor(4) as upload_pool:
        recordings = [render_pool.submit(_record, first_seed + k, config, folder) for k in range(count)]
        uploads = []
        for k, future in enumerate(recordings):
            seed, video, telemetry = future.result()
            uploads.append(upload_pool.submit(_upload_once, ingest, video, telemetry, auth(k), folder, seed))
        for upload in uploads:
            session_ids.append(upload.result())
            if on_done:
                on_done(1)
    return session_ids


def _upload_once(ingest: ingest_pb2_grpc.IngestServiceStub, video: bytes, telemetry: bytes, metadata: tuple,
                 keep_dir: str | None, seed: int) -> str:
    """Uploads a recording and returns its session id; a kept recording that this stack's ingest already has
    (its id is noted beside it) is not uploaded again (ingest would refuse the same video as a duplicate)."""
    note = Path(keep_dir) / f"bot-{seed}.session" if keep_dir else None
    if note is not None and note.exists():
        session_id = note.read_text().strip()
        try:
            ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=session_id), metadata=metadata)
            return session_id
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.NOT_FOUND:
                raise
    session_id = upload_session(ingest, video, telemetry, metadata=metadata).session_id
    if note is not None:
        note.write_text(session_id + "\n")
    return session_id


def wait_processed(processor_channel: grpc.Channel, session_ids: list[str], timeout_s: float = 600.0,
                   on_done: Callable[[int], None] | None = None) -> list[processor_pb2.QualityReport]:
    processor = processor_pb2_grpc.ProcessorServiceStub(processor_channel)
    reports: dict[str, processor_pb2.QualityReport] = {}
    deadline = time.monotonic() + timeout_s
    while len(reports) < len(session_ids):
        if time.monotonic() > deadline:
            raise LoopError(f"the processor finished {len(reports)} of {len(session_ids)} sessions in {timeout_s:.0f} s")
        for session_id in session_ids:
            if session_id in reports:
                continue
            try:
                reports[session_id] = processor.GetSessionReport(processor_pb2.GetSessionReportRequest(session_id=session_id))
                if on_done:
                    on_done(1)
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.NOT_FOUND:
                    raise
        time.sleep(0.5)
    return [reports[s] for s in session_ids]


def watch(trainer: trainer_pb2_grpc.TrainerServiceStub, job_id: str, on_update: Callable[[trainer_pb2.Job], None] | None = None) -> trainer_pb2.Job:
    last = None
    for job in trainer.WatchJob(trainer_pb2.WatchJobRequest(job_id=job_id)):
        last = job
        if on_update:
            on_update(job)
    if last is None or last.state not in TERMINAL:
        raise LoopError(f"job {job_id} stream ended without an outcome")
    return last


@dataclass
class LoopResult:
    session_ids: list[str]
    segments: int
    frames: int
    rejected: int
    training: trainer_pb2.Job
    evaluation: trainer_pb2.Job
    report: trainer_pb2.EvaluationReport
    stage_seconds: dict[str, float] = field(default_factory=dict)


def full_loop(channels: dict[str, grpc.Channel], auth: Callable[[int], tuple], bots: int, bot_config: BotConfig,
              training: trainer_pb2.TrainingConfig, suite: str, dataset: str = "default", workers: int = 2,
              run_id: str = "", progress: Callable[[str, float, float], None] | None = None) -> LoopResult:
    """progress(stage, done, total) as the stages move."""
    stages: dict[str, float] = {}

    def stage(name: str):
        started = time.perf_counter()

        class _Timer:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                stages[name] = time.perf_counter() - started

        return _Timer()

    tick = (lambda name, total: (lambda n: progress(name, n, total))) if progress else (lambda name, total: None)
    with stage("bots play and upload"):
        session_ids = run_bots(channels["ingest"], auth, bots, bot_config, workers, on_done=tick("bots", bots))
    with stage("processor builds the dataset"):
        reports = wait_processed(channels["processor"], session_ids, on_done=tick("processor", bots))
    segments = sum(len(r.segments) for r in reports)
    if segments == 0:
        raise LoopError(f"the processor accepted no segment from {bots} bot sessions: {[list(r.rejections) for r in reports]}")
    trainer = trainer_pb2_grpc.TrainerServiceStub(channels["trainer"])
    run_id = run_id or f"loop-{int(time.time())}"
    with stage("trainer trains the policy"):
        trainer.StartTraining(trainer_pb2.StartTrainingRequest(dataset=dataset, config=training, run_id=run_id))
        trained = watch(trainer, run_id, (lambda j: progress("training", j.progress, 1.0)) if progress else None)
    if trained.state != trainer_pb2.JOB_STATE_SUCCEEDED:
        raise LoopError(f"training {run_id} ended {trainer_pb2.JobState.Name(trained.state)}: {trained.message}")
    eval_id = f"{run_id}-eval"
    with stage("embedded evaluation"):
        trainer.StartEvaluation(trainer_pb2.StartEvaluationRequest(
            model_run=run_id, eval_id=eval_id, backend=trainer_pb2.BACKEND_LOCAL, config=trainer_pb2.EvaluationConfig(suite=suite)))
        evaluated = watch(trainer, eval_id, (lambda j: progress("evaluation", j.progress, 1.0)) if progress else None)
    if evaluated.state != trainer_pb2.JOB_STATE_SUCCEEDED:
        raise LoopError(f"evaluation {eval_id} ended {trainer_pb2.JobState.Name(evaluated.state)}: {evaluated.message}")
    report = trainer.GetEvaluationReport(trainer_pb2.GetEvaluationReportRequest(eval_id=eval_id))
    return LoopResult(session_ids, segments, sum(s.frame_count for r in reports for s in r.segments),
                      sum(1 for r in reports if not r.segments), trained, evaluated, report, stages)
