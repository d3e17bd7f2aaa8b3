"""The whole loop on the real stack, as `scale-diffusion loop` runs it: bot players render and upload sessions
through ingest -> the processor builds the dataset -> the trainer trains a small CILRS -> the embedded evaluator
scores it (Leaderboard 2.0) -> the report and its route maps are in S3."""

from __future__ import annotations

import pytest

from scalediffusion.platform import keys
from scalediffusion.sim.bots import BotConfig
from scalediffusion.sim.loop import full_loop
from scalediffusion.v1 import ingest_pb2, ingest_pb2_grpc, trainer_pb2

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]


def test_bots_to_dataset_to_model_to_evaluation_report(stack):
    channels = {name: stack.channel(name) for name in ("ingest", "processor", "trainer")}
    training = trainer_pb2.TrainingConfig(preset="cilrs-resnet18-tiny", epochs=2, batch_size=32, val_fraction=0.3, seed=5)
    stages = []
    result = full_loop(channels, lambda k: stack.auth(f"bot-{k}"), bots=2,
                       bot_config=BotConfig(seconds=8.0, width=320, height=180, npc_vehicles=6, pedestrians=4),
                       training=training, suite="smoke@1", workers=2, run_id="e2e-loop",
                       progress=lambda stage, done, total: stages.append(stage) if not stages or stages[-1] != stage else None)
    assert stages == ["bots", "processor", "training", "evaluation"]

    assert len(result.session_ids) == 2 and result.segments >= 2 and result.frames > 0
    ingest = ingest_pb2_grpc.IngestServiceStub(stack.channel("ingest"))
    for k, session_id in enumerate(result.session_ids):
        session = ingest.GetSession(ingest_pb2.GetSessionRequest(session_id=session_id), metadata=stack.auth(f"bot-{k}"))
        assert session.state in (ingest_pb2.SESSION_STATE_ACCEPTED, ingest_pb2.SESSION_STATE_PROCESSING), session
    assert result.training.state == trainer_pb2.JOB_STATE_SUCCEEDED and "best_val_loss" in result.training.metrics
    assert result.evaluation.state == trainer_pb2.JOB_STATE_SUCCEEDED

    report = result.report
    assert report.suite == "smoke@1" and report.model_run == "e2e-loop" and len(report.routes) == 1
    assert 0.0 <= report.driving_score <= 100.0 and 0.0 <= report.infraction_penalty <= 1.0
    assert report.driving_score == pytest.approx(report.routes[0].route_completion * report.routes[0].infraction_penalty)
    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    assert store.stat(s3.bucket_reports, keys.eval_key("e2e-loop-eval", "report.json")) is not None
    assert report.plot_keys and all(store.get_bytes(s3.bucket_reports, k)[:4] == b"\x89PNG" for k in report.plot_keys)
    assert set(result.stage_seconds) == {"bots play and upload", "processor builds the dataset", "trainer trains the policy", "embedded evaluation"}
