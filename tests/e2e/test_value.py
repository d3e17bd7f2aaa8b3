"""The data-value experiment on the real stack, as `scale-diffusion value` runs it, at toy size: bots -> ingest ->
processor -> the trainer trains on growing slices -> the embedded evaluator scores each -> value.json + value.png.
A second run reuses the recordings, the uploaded sessions, the trainings and the evaluations; a training that died
is trained again under a retry name."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace

import pytest

from scalediffusion.sim.bots import BotConfig
from scalediffusion.sim.loop import recording_dir
from scalediffusion.sim.value import ValueConfig, run_value
from scalediffusion.v1 import trainer_pb2, trainer_pb2_grpc

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_value_experiment_trains_growing_slices_evaluates_and_plots(stack, tmp_path):
    channels = {name: stack.channel(name) for name in ("ingest", "processor", "trainer")}
    bot = BotConfig(seconds=8.0, width=320, height=180, fps=10, npc_vehicles=4, npc_vehicles_min=0, pedestrians=0)
    config = ValueConfig(minutes=(0.05, 0.2), presets=("aim-resnet18-tiny",), suite="smoke@1", seeds=(1,), epochs=1,
                         batch_size=16, val_fraction=0.3, bot=bot, tag="e2e-value")
    stages = []
    result = run_value(channels, lambda k: stack.auth(f"bot-{k}"), config, tmp_path / "rec", tmp_path / "out",
                       first_seed=700, progress=lambda stage, done, total: stages.append(stage))
    assert config.sessions_needed() == 2 and result.sessions == 2 and result.accepted_minutes > 0
    assert [p.minutes for p in result.points] == pytest.approx([0.05, min(0.2, result.accepted_minutes)])
    small, large = result.points
    assert 0 < small.train_minutes <= large.train_minutes  # whole sessions, nested slices
    for point in result.points:
        assert set(point.seeds) == {1}
        assert 0 <= point.mean("driving_score") <= 100 and 0 <= point.mean("infraction_penalty") <= 1
    assert result.autopilot["driving_score"] > 50  # the ceiling line: the privileged autopilot drives smoke@1
    doc = json.loads((tmp_path / "out" / "value.json").read_text())
    assert [p["run_id"] for p in doc["points"]] == [p.run_id for p in result.points]
    assert (tmp_path / "out" / "value.png").read_bytes()[:4] == b"\x89PNG"
    assert any(s.startswith("train ") for s in stages) and any(s.startswith("evaluate ") for s in stages)

    folder = recording_dir(tmp_path / "rec", bot)
    kept = sorted(p.name for p in folder.iterdir())
    assert kept == ["bot-700.session", "bot-700.telemetry.pb", "bot-700.webm", "bot-701.session", "bot-701.telemetry.pb", "bot-701.webm"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    stages.clear()
    again = run_value(channels, lambda k: stack.auth(f"bot-{k}"), config, tmp_path / "rec", tmp_path / "out2",
                      first_seed=700, progress=lambda stage, done, total: stages.append(stage))
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes  # nothing rendered or uploaded again
    assert [p.seeds[1]["driving_score"] for p in again.points] == [p.seeds[1]["driving_score"] for p in result.points]
    # the training time reported is the trainer's own, also for a reused run
    assert [p.train_wall_s for p in again.points] == [p.train_wall_s for p in result.points]
    assert all(p.train_wall_s > 0 for p in again.points)
    assert not any(s.startswith("train ") or s.startswith("evaluate ") for s in stages)  # finished jobs reused

    # A training whose process died (killed, its node gone) keeps its id at the trainer as FAILED: the next `value`
    # trains that point again under a retry name instead of stopping at the failed run.
    retry = replace(config, minutes=(0.05,), tag="e2e-retry")
    failed_id = "e2e-retry-aim-resnet18-tiny-0p05min-e1-s0"
    trainer = trainer_pb2_grpc.TrainerServiceStub(channels["trainer"])
    trainer.StartTraining(trainer_pb2.StartTrainingRequest(
        dataset="default", run_id=failed_id, backend=trainer_pb2.BACKEND_LOCAL,
        config=trainer_pb2.TrainingConfig(preset="aim-resnet18-tiny", epochs=1000, batch_size=16)))
    deadline = time.monotonic() + 120
    while subprocess.run(["pkill", "-KILL", "-f", "--", f"--run-id {failed_id} "], check=False).returncode != 0:
        assert time.monotonic() < deadline, "the training process never started"
        time.sleep(0.2)
    deadline = time.monotonic() + 60
    while trainer.GetJob(trainer_pb2.GetJobRequest(job_id=failed_id)).state != trainer_pb2.JOB_STATE_FAILED:
        assert time.monotonic() < deadline, "the killed training was not marked FAILED"
        time.sleep(0.2)
    retried = run_value(channels, lambda k: stack.auth(f"bot-{k}"), retry, tmp_path / "rec", tmp_path / "out3", first_seed=700)
    assert [p.run_id for p in retried.points] == [f"{failed_id}-retry2"]
    assert trainer.GetJob(trainer_pb2.GetJobRequest(job_id=f"{failed_id}-retry2")).state == trainer_pb2.JOB_STATE_SUCCEEDED
