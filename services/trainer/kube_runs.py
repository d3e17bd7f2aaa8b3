"""Jobs on the Kubernetes backends: create the Kubernetes Job(s), follow their status, finish the trainer job.

Training pods write models/<run>/progress.json like a local run, so the job's progress and metrics come from there;
the Kubernetes Job's status decides the state. A CARLA evaluation's pods write one leaderboard result file per route
shard to reports/<eval>/shards/<i>.json; when the Job succeeds they are scored into reports/<eval>/report.json.
"""

from __future__ import annotations

import asyncio

from google.protobuf import json_format

from scalediffusion.platform import keys
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.v1 import trainer_pb2
from services.trainer import jobs, k8s, reports
from services.trainer.kube_backend import JobNotFound

log = get_logger("trainer.kube")


def manifests_for(record: jobs.JobRecord, settings: k8s.KubeJobSettings) -> list[dict]:
    job, request = record.job, record.request
    if job.kind == trainer_pb2.JOB_KIND_TRAINING:
        return k8s.training_job_manifests(job.job_id, request["dataset"], request["resolved_config"], settings)
    config = request.get("config", {})
    return k8s.evaluation_job_manifests(
        job.job_id, request["modelRun"], request["suite"], int(config.get("shards", 1) or 1), config.get("carlaVersion", ""),
        request["metric_version"], int(config.get("seed", 0) or 0), settings,
    )


def merge_shards(store, s3, record: jobs.JobRecord) -> trainer_pb2.EvaluationReport:
    """Reads every shard's result file and writes reports/<eval>/report.json; returns the report."""
    job, request = record.job, record.request
    shards = int(request.get("config", {}).get("shards", 1) or 1)
    docs = []
    for i in range(shards):
        doc = store.get_json(s3.bucket_reports, keys.eval_key(job.job_id, f"shards/{i}.json"))
        if not isinstance(doc, dict):
            raise reports.IncompleteEvaluation(f"shard {i} wrote no result file")
        docs.append(doc)
    report = reports.report_from_checkpoints(docs, eval_id=job.job_id, model_run=request["modelRun"], suite=request["suite"],
                                             metric_version=request["metric_version"])
    report.report_key = keys.eval_key(job.job_id, "report.json")
    store.put_json(s3.bucket_reports, report.report_key, json_format.MessageToDict(report))
    return report


async def run(manager, kube, record: jobs.JobRecord) -> None:
    job = record.job
    try:
        manifests = manifests_for(record, kube.settings)
        names = await asyncio.to_thread(kube.create, manifests)
    except Exception as exc:  # noqa: BLE001 - a manifest the cluster refuses, a name taken by another run, RBAC: the job fails, said why
        await manager.update(record, state=trainer_pb2.JOB_STATE_FAILED, message=f"could not create the Kubernetes Job: {exc}")
        return
    await manager.update(record, kubernetes_jobs=names, message=f"created Kubernetes Job {', '.join(names)}")
    while job.state not in jobs.TERMINAL:
        await asyncio.sleep(manager.settings.poll_s)
        try:
            state, progress, message = await asyncio.to_thread(kube.status, names[0])
        except JobNotFound:
            await manager.update(record, state=trainer_pb2.JOB_STATE_CANCELLED, message=f"Kubernetes Job {names[0]} was deleted")
            return
        except Exception as exc:  # noqa: BLE001 - the API server is unreachable for a while: keep the job, try again
            event(log, "kube_status_unavailable", job_id=job.job_id, error=repr(exc))
            continue
        metrics = {}
        if job.kind == trainer_pb2.JOB_KIND_TRAINING:
            doc = await asyncio.to_thread(manager.store.get_json, manager.s3.bucket_models, keys.run_key(job.job_id, "progress.json"))
            if isinstance(doc, dict):
                progress = doc.get("progress", progress)
                metrics = {k: v for k, v in (doc.get("metrics") or {}).items() if isinstance(v, (int, float))}
        if state == trainer_pb2.JOB_STATE_SUCCEEDED and job.kind == trainer_pb2.JOB_KIND_EVALUATION:
            try:
                report = await asyncio.to_thread(merge_shards, manager.store, manager.s3, record)
            except ValueError as exc:
                await manager.update(record, state=trainer_pb2.JOB_STATE_FAILED, message=f"evaluation results unusable: {exc}")
                return
            metrics = {"driving_score": report.driving_score, "route_completion": report.route_completion,
                       "infraction_penalty": report.infraction_penalty}
            message = f"DS {report.driving_score:.1f} RC {report.route_completion:.1f} IP {report.infraction_penalty:.3f}"
        await manager.update(record, state=state, progress=progress, message=message, metrics=metrics)
