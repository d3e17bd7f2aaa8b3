"""TrainerService over real gRPC on the test stack: training jobs on the local backend from StartTraining to a
model in S3, followed by WatchJob and trainer.events; jobs survive a trainer restart; bad requests get clear
statuses; evaluation reports from CARLA result files; what needs a cluster says so."""

from __future__ import annotations

import os
import signal
import time

import grpc
import pytest

from scalediffusion.platform import events, keys
from scalediffusion.v1 import events_pb2, trainer_pb2, trainer_pb2_grpc
from services.trainer import jobs, kube_runs
from tests.integration.conftest import DATASET

TINY = trainer_pb2.TrainingConfig(preset="cilrs-resnet18-tiny", epochs=2, batch_size=32, val_fraction=0.25, seed=1)


def status_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), info.value.details()


def wait_done(trainer, job_id: str, timeout_s: float = 300) -> trainer_pb2.Job:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = trainer.GetJob(trainer_pb2.GetJobRequest(job_id=job_id))
        if job.state in jobs.TERMINAL:
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end within {timeout_s} s")


def test_a_local_training_job_runs_to_a_model_watched_and_announced(stack, trainer, pipeline_sessions):
    run_id = f"svc-{int(time.time())}"
    job = trainer.StartTraining(trainer_pb2.StartTrainingRequest(dataset=DATASET, config=TINY, run_id=run_id))
    assert job.job_id == run_id and job.kind == trainer_pb2.JOB_KIND_TRAINING
    assert job.backend == trainer_pb2.BACKEND_LOCAL and job.output_prefix == f"models/{run_id}/"
    # A retry with the same id and request is the same job; another request under that id is refused.
    again = trainer.StartTraining(trainer_pb2.StartTrainingRequest(dataset=DATASET, config=TINY, run_id=run_id))
    assert again.job_id == run_id and again.created_at == job.created_at
    other = trainer_pb2.TrainingConfig()
    other.CopyFrom(TINY)
    other.epochs = 3
    code, details = status_of(lambda: trainer.StartTraining(trainer_pb2.StartTrainingRequest(dataset=DATASET, config=other, run_id=run_id)))
    assert code == grpc.StatusCode.ALREADY_EXISTS and run_id in details

    updates = list(trainer.WatchJob(trainer_pb2.WatchJobRequest(job_id=run_id), timeout=300))
    final = updates[-1]
    assert final.state == trainer_pb2.JOB_STATE_SUCCEEDED, final
    assert final.progress == 1.0 and "val_loss" in final.metrics and "best_val_loss" in final.metrics
    states = [u.state for u in updates]
    assert trainer_pb2.JOB_STATE_RUNNING in states and states.index(trainer_pb2.JOB_STATE_RUNNING) < len(states) - 1
    progress = [u.progress for u in updates]
    assert progress == sorted(progress), "progress never goes backwards"

    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    assert store.stat(s3.bucket_models, keys.run_key(run_id, "model.onnx")) is not None

    announced = stack.read_topic(events.TRAINER_EVENTS, lambda r: r.key == run_id.encode(), timeout_s=30)
    states_seen = [events.decode(r.value, r.headers, events_pb2.TrainerEvent).job.state for r in announced]
    assert states_seen[0] == trainer_pb2.JOB_STATE_PENDING and states_seen[-1] == trainer_pb2.JOB_STATE_SUCCEEDED

    listed = trainer.ListJobs(trainer_pb2.ListJobsRequest(kind=trainer_pb2.JOB_KIND_TRAINING, state=trainer_pb2.JOB_STATE_SUCCEEDED))
    assert run_id in [j.job_id for j in listed.jobs]
    assert all(j.state == trainer_pb2.JOB_STATE_SUCCEEDED for j in listed.jobs)
    import urllib.request

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{stack.layout.services['trainer'].metrics}/metrics", timeout=5).read().decode()
    assert 'sd_trainer_jobs_ended_total{backend="BACKEND_LOCAL",kind="JOB_KIND_TRAINING",state="JOB_STATE_SUCCEEDED"}' in metrics

    none = trainer.ListJobs(trainer_pb2.ListJobsRequest(kind=trainer_pb2.JOB_KIND_EVALUATION, state=trainer_pb2.JOB_STATE_SUCCEEDED))
    assert run_id not in [j.job_id for j in none.jobs]


def test_list_jobs_pages_through_every_job(stack, trainer):
    from google.protobuf import json_format

    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    for i in range(5):  # finished jobs written as the trainer writes them
        job = jobs.new_job(f"page-{i}", trainer_pb2.JOB_KIND_EVALUATION, trainer_pb2.BACKEND_CARLA, "reports/x/")
        jobs.apply_update(job, state=trainer_pb2.JOB_STATE_FAILED, message="test record")
        store.put_json(s3.bucket_models, keys.job_record_key(job.job_id), {"job": json_format.MessageToDict(job), "request": {}, "fingerprint": ""})
    seen, token = [], ""
    while True:
        page = trainer.ListJobs(trainer_pb2.ListJobsRequest(page={"page_size": 2, "page_token": token}))
        assert len(page.jobs) <= 2
        seen += [j.job_id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert [i for i in seen if i.startswith("page-")] == [f"page-{i}" for i in range(5)]
    assert len(seen) == len(set(seen))
    code, _ = status_of(lambda: trainer.ListJobs(trainer_pb2.ListJobsRequest(page={"page_token": "!!"})))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_a_killed_trainer_picks_its_unfinished_job_up_again(stack, extra_service, pipeline_sessions, tmp_path):
    overrides = {"SD_TRAINER_WORK_DIR": str(tmp_path / "work"), "SD_TRAINER_POLL_S": "0.5"}
    channel, record = extra_service("trainer", overrides, name="trainer-restart-a")
    trainer = trainer_pb2_grpc.TrainerServiceStub(channel)
    run_id = f"restart-{int(time.time())}"
    config = trainer_pb2.TrainingConfig()
    config.CopyFrom(TINY)
    config.epochs = 3
    trainer.StartTraining(trainer_pb2.StartTrainingRequest(dataset=DATASET, config=config, run_id=run_id))
    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    deadline = time.monotonic() + 240
    while store.stat(s3.bucket_models, keys.run_key(run_id, "checkpoint.pt")) is None:
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.2)
    os.kill(record.pid, signal.SIGKILL)  # the trainer dies; its run dies with it (PR_SET_PDEATHSIG)
    deadline = time.monotonic() + 10
    while record.alive():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert trainer_pb2.JOB_STATE_SUCCEEDED != store.get_json(s3.bucket_models, keys.job_record_key(run_id))["job"].get("state")

    channel, _ = extra_service("trainer", overrides, name="trainer-restart-b")
    final = wait_done(trainer_pb2_grpc.TrainerServiceStub(channel), run_id)
    assert final.state == trainer_pb2.JOB_STATE_SUCCEEDED, final
    log = (tmp_path / "work" / f"{run_id}.log").read_text()
    assert '"event": "run_resumed"' in log, "the second run continued from the checkpoint"
    summary = store.get_json(s3.bucket_models, keys.run_key(run_id, "metrics.json"))
    assert [h["epoch"] for h in summary["history"]] == [0, 1, 2]


def test_bad_requests_get_clear_statuses(trainer):
    cases = [
        (trainer_pb2.StartTrainingRequest(dataset="no/such"), grpc.StatusCode.INVALID_ARGUMENT, "dataset"),
        (trainer_pb2.StartTrainingRequest(dataset="never-built"), grpc.StatusCode.NOT_FOUND, "no segments"),
        (trainer_pb2.StartTrainingRequest(dataset=DATASET, config=trainer_pb2.TrainingConfig(preset="vgg")),
         grpc.StatusCode.INVALID_ARGUMENT, "preset"),
        (trainer_pb2.StartTrainingRequest(dataset=DATASET, config=trainer_pb2.TrainingConfig(val_fraction=1.5)),
         grpc.StatusCode.INVALID_ARGUMENT, "val_fraction"),
        (trainer_pb2.StartTrainingRequest(dataset=DATASET, backend=trainer_pb2.BACKEND_CARLA),
         grpc.StatusCode.INVALID_ARGUMENT, "LOCAL or KUBERNETES"),
        # No cluster here: the Kubernetes backend says why instead of queueing a job that cannot run.
        (trainer_pb2.StartTrainingRequest(dataset=DATASET, backend=trainer_pb2.BACKEND_KUBERNETES),
         grpc.StatusCode.FAILED_PRECONDITION, "Kubernetes"),
    ]
    for request, code, words in cases:
        got, details = status_of(lambda request=request: trainer.StartTraining(request))
        assert got == code and words in details, (request, got, details)

    eval_cases = [
        (trainer_pb2.StartEvaluationRequest(model_run="r1", config=trainer_pb2.EvaluationConfig(suite="easy")),
         grpc.StatusCode.INVALID_ARGUMENT, "<name>@<version>"),
        (trainer_pb2.StartEvaluationRequest(model_run="r1", config=trainer_pb2.EvaluationConfig(metric_version="3.0")),
         grpc.StatusCode.INVALID_ARGUMENT, "metric_version"),
        (trainer_pb2.StartEvaluationRequest(model_run="r1", backend=trainer_pb2.BACKEND_LOCAL,
                                            config=trainer_pb2.EvaluationConfig(suite="devtest@1")),
         grpc.StatusCode.INVALID_ARGUMENT, "embedded evaluator has no suite"),
        (trainer_pb2.StartEvaluationRequest(model_run="never-trained", backend=trainer_pb2.BACKEND_LOCAL),
         grpc.StatusCode.FAILED_PRECONDITION, "no model.onnx"),
        (trainer_pb2.StartEvaluationRequest(model_run="never-trained", backend=trainer_pb2.BACKEND_CARLA),
         grpc.StatusCode.FAILED_PRECONDITION, "no model.onnx"),
    ]
    for request, code, words in eval_cases:
        got, details = status_of(lambda request=request: trainer.StartEvaluation(request))
        assert got == code and words in details, (request, got, details)

    assert status_of(lambda: trainer.GetJob(trainer_pb2.GetJobRequest(job_id="nope")))[0] == grpc.StatusCode.NOT_FOUND
    assert status_of(lambda: trainer.GetJob(trainer_pb2.GetJobRequest(job_id="../x")))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert status_of(lambda: list(trainer.WatchJob(trainer_pb2.WatchJobRequest(job_id="nope"))))[0] == grpc.StatusCode.NOT_FOUND
    code, _ = status_of(lambda: trainer.GetEvaluationReport(trainer_pb2.GetEvaluationReportRequest(eval_id="nope")))
    assert code == grpc.StatusCode.NOT_FOUND


def test_carla_shard_results_become_the_evaluation_report(stack, trainer):
    """What the trainer does when a CARLA evaluation Job succeeds, on real S3: shard result files -> report.json ->
    GetEvaluationReport. (The CARLA run itself needs a cluster with GPUs.)"""
    from tests.unit.test_trainer_jobs import _checkpoint, _route_record

    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    eval_id = f"carla-{int(time.time())}"
    red = "Agent ran a red light 3 (x=10.0, y=2.0, z=0.0)"
    store.put_json(s3.bucket_reports, keys.eval_key(eval_id, "shards/0.json"),
                   _checkpoint([_route_record("RouteScenario_0", 100.0, {"red_light": [red]}, length=2000.0)]))
    store.put_json(s3.bucket_reports, keys.eval_key(eval_id, "shards/1.json"), _checkpoint([_route_record("RouteScenario_1", 25.0)]))
    job = jobs.new_job(eval_id, trainer_pb2.JOB_KIND_EVALUATION, trainer_pb2.BACKEND_CARLA, f"reports/{eval_id}/")
    record = jobs.JobRecord(job, {"modelRun": "r1", "suite": "devtest@1", "metric_version": "2.0", "config": {"shards": 2}}, "")
    kube_runs.merge_shards(store, s3, record)

    report = trainer.GetEvaluationReport(trainer_pb2.GetEvaluationReportRequest(eval_id=eval_id))
    # Route 0: RC 100 x IP 0.7 = 70; route 1: RC 25. DS (70 + 25) / 2 = 47.5; RC 62.5; IP 0.85.
    assert report.driving_score == pytest.approx(47.5) and report.route_completion == pytest.approx(62.5)
    assert report.infraction_penalty == pytest.approx(0.85) and report.suite == "devtest@1"
    red_light = next(i for i in report.infractions if i.kind == "red_light")
    assert red_light.count == 1 and red_light.per_km == pytest.approx(1 / 2.25)  # 2 km + 0.25 km driven
    assert report.report_key == f"{eval_id}/report.json"
