"""The policy's ONNX export and its parity check against PyTorch on onnxruntime."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from scalediffusion.policy import META_PREFIX, OUTPUTS, OnnxPolicy
from services.trainer.model import model_config

PARITY_TOLERANCE = 1e-4
OPSET = 18


def export_onnx(model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Writes (image, speed, command[, target]) -> the kind's outputs (CILRS: control, speed_pred; waypoints: waypoints,
    and light logits with a light head) with a
    dynamic batch dimension, and the model config (plus any metadata given: run id, camera, controller) as
    ``scalediffusion.*`` metadata."""
    path = Path(path)
    model = model.eval()
    config = model_config(model)
    height, width = config.input_hw
    example: tuple = (torch.rand(2, 3, height, width), torch.rand(2, 1) * 10.0, torch.tensor([1, 4]))
    names = ["image", "speed", "command"]
    if config.use_target:
        example += (torch.randn(2, 2) * 30.0,)
        names.append("target")
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about torchvision ops and pytree internals
        program = torch.onnx.export(
            model,
            example,
            input_names=names,
            output_names=OUTPUTS[config.kind] + (["light"] if config.light_classes else []),
            dynamic_shapes=tuple({0: batch} for _ in names),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    if program is None:  # the dynamo exporter always returns its program; None is the legacy path's file-only return
        raise RuntimeError("torch.onnx.export returned no program")
    proto = program.model_proto
    entries = {"model_config": json.dumps(config.to_dict(), sort_keys=True), **(metadata or {})}
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = META_PREFIX + key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def parity_max_abs_diff(model: nn.Module, onnx_path: str | Path, batch: int = 8, seed: int = 0) -> float:
    """Largest |PyTorch - onnxruntime| over every output for random inputs covering every command."""
    model = model.eval()
    config = model_config(model)
    g = torch.Generator().manual_seed(seed)
    height, width = config.input_hw
    images = torch.rand(batch, 3, height, width, generator=g)
    speeds = torch.rand(batch, 1, generator=g) * 15.0
    commands = torch.arange(batch) % 7
    targets = torch.randn(batch, 2, generator=g) * 60.0 if config.use_target else None  # near and far ones
    with torch.no_grad():
        expected = model(images, speeds, commands, targets)
    expected = expected if isinstance(expected, tuple) else (expected,)
    policy = OnnxPolicy(onnx_path, providers=["CPUExecutionProvider"])
    got = policy.run_batch(images.numpy(), speeds.numpy(), commands.numpy(), None if targets is None else targets.numpy())
    return float(max(np.abs(g - e.numpy()).max() for g, e in zip(got, expected)))
