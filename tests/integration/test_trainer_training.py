"""CILRS training on a dataset the real pipeline produced: sessions uploaded through ingest, processed into the clean
bucket, then trained on from S3 — validation loss falls, the split is by session, a killed run resumes from its
checkpoint, and the ONNX export matches PyTorch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scalediffusion.platform import keys
from scalediffusion.policy import OnnxPolicy
from services.trainer.train import TrainConfig, train_run
from tests.conftest import REPO
from tests.integration.conftest import DATASET

SMALL = {"preset": "cilrs-resnet18-tiny", "batch_size": 32, "learning_rate": 1e-3, "val_fraction": 0.25, "num_workers": 0, "seed": 3}


def test_training_reduces_validation_loss_and_exports_a_matching_onnx_policy(stack, pipeline_sessions, tmp_path):
    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    config = TrainConfig.from_dict({**SMALL, "epochs": 4})
    summary = train_run(store, s3, "it-reduce", DATASET, config, tmp_path / "cache", show_progress=False)

    history = summary["history"]
    print("initial val loss", summary["initial_val_loss"], "val losses", [round(h["val_loss"], 4) for h in history])
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert summary["initial_val_loss"] > 0
    assert summary["best_val_loss"] < 0.8 * summary["initial_val_loss"], (summary["initial_val_loss"], history)
    # Split by session, never by frame.
    assert summary["val_sessions"] and not set(summary["train_sessions"]) & set(summary["val_sessions"])
    assert set(pipeline_sessions) <= set(summary["train_sessions"]) | set(summary["val_sessions"])
    assert any(k.startswith("val_l1_") for k in history[-1]), "per-command validation error"

    # Outputs in models/<run>/.
    for name in ("model.pt", "model.onnx", "checkpoint.pt", "loss_curves.png", "metrics.json", "progress.json"):
        assert store.stat(s3.bucket_models, keys.run_key("it-reduce", name)) is not None, name
    png = store.get_bytes(s3.bucket_models, keys.run_key("it-reduce", "loss_curves.png"))
    assert png[:4] == b"\x89PNG"
    (tmp_path / "loss_curves.png").write_bytes(png)  # left in the test's temp folder to look at
    assert store.get_json(s3.bucket_models, keys.run_key("it-reduce", "progress.json"))["state"] == "SUCCEEDED"
    assert summary["onnx_parity_max_abs_diff"] <= 1e-4

    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(store.get_bytes(s3.bucket_models, keys.run_key("it-reduce", "model.onnx")))
    policy = OnnxPolicy(onnx_path)
    assert policy.metadata["run_id"] == "it-reduce"
    control = policy(np.zeros((256, 256, 3), np.uint8), 5.0, 4)
    assert -1 <= control.steer <= 1 and 0 <= control.throttle <= 1 and 0 <= control.brake <= 1


def _train_process(stack, run_id: str, config: dict, cache) -> subprocess.Popen:
    env = {**os.environ, **stack.local.service_env(stack.state, "trainer")}
    return subprocess.Popen(
        [sys.executable, "-m", "services.trainer.train", "--run-id", run_id, "--dataset", DATASET,
         "--config-json", json.dumps(config), "--cache-dir", str(cache), "--no-progress"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_a_killed_run_resumes_from_its_checkpoint(stack, pipeline_sessions, tmp_path):
    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    run_id = "it-resume"
    config = {**SMALL, "epochs": 3}
    checkpoint_key = keys.run_key(run_id, "checkpoint.pt")

    first = _train_process(stack, run_id, config, tmp_path / "cache")
    deadline = time.monotonic() + 240
    while store.stat(s3.bucket_models, checkpoint_key) is None:
        assert first.poll() is None, f"the run ended before its first checkpoint: {first.stdout.read()}"
        assert time.monotonic() < deadline, "no checkpoint within 240 s"
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = store.get_json(s3.bucket_models, keys.run_key(run_id, "progress.json"))
    assert killed_at["state"] == "RUNNING"
    assert store.stat(s3.bucket_models, keys.run_key(run_id, "model.onnx")) is None, "killed before the end"

    import io

    import torch

    checkpoint = torch.load(io.BytesIO(store.get_bytes(s3.bucket_models, checkpoint_key)), weights_only=False)
    saved_epochs = [h["epoch"] for h in checkpoint["history"]]

    second = _train_process(stack, run_id, config, tmp_path / "cache")
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    resumed = [line for line in lines if line.get("event") == "run_resumed"]
    assert resumed and resumed[0]["from_epoch"] == saved_epochs[-1] + 1, output
    started_epochs = [line["epoch"] for line in lines if line.get("event") == "epoch_done"]
    assert started_epochs == list(range(saved_epochs[-1] + 1, 3)), "only the epochs after the checkpoint ran again"

    summary = store.get_json(s3.bucket_models, keys.run_key(run_id, "metrics.json"))
    assert [h["epoch"] for h in summary["history"]] == [0, 1, 2]
    assert summary["history"][: len(saved_epochs)] == checkpoint["history"], "the checkpointed epochs are kept as they were"


def test_bad_requests_fail_with_a_clear_reason(stack, tmp_path):
    s3 = stack.local.s3_settings(stack.state)
    with pytest.raises(ValueError, match="unknown training config field"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.from_dict({"preset": "resnet-9000"})
    with pytest.raises(ValueError, match="no segments"):
        train_run(stack.store(), s3, "it-empty", "no-such-dataset", TrainConfig.from_dict(SMALL), tmp_path, show_progress=False)


def test_distributed_training_with_torchrun_on_two_processes(stack, pipeline_sessions, tmp_path):
    """The multi-GPU/multi-pod path (DistributedDataParallel, DistributedSampler, one cache per node, rank 0 writes)
    run for real with torchrun on two CPU processes over gloo — what the Kubernetes training Job starts with NCCL."""
    store = stack.store()
    s3 = stack.local.s3_settings(stack.state)
    run_id = "it-ddp"
    env = {**os.environ, **stack.local.service_env(stack.state, "trainer"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "services.trainer.train",
         "--run-id", run_id, "--dataset", DATASET, "--config-json", json.dumps({**SMALL, "epochs": 2, "nodes": 1}),
         "--cache-dir", str(tmp_path / "cache"), "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    ready = [line for line in lines if line.get("event") == "dataset_ready"]
    assert len(ready) == 2, "both ranks loaded the dataset"
    assert len([line for line in lines if line.get("event") == "epoch_done"]) == 4, "each rank finished each epoch"
    summary = store.get_json(s3.bucket_models, keys.run_key(run_id, "metrics.json"))
    assert summary["world_size"] == 2 and [h["epoch"] for h in summary["history"]] == [0, 1]
    assert summary["onnx_parity_max_abs_diff"] <= 1e-4
