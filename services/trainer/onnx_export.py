"""The policy's ONNX export and its parity check against PyTorch on onnxruntime."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from scalediffusion.policy import META_PREFIX, OnnxPolicy
from services.trainer.model import Cilrs

PARITY_TOLERANCE = 1e-4
OPSET = 18


def export_onnx(model: Cilrs, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Writes (image, speed, command) -> (control, speed_pred) with a dynamic batch dimension, and the model config
    (plus any metadata given, e.g. the run id) as ``scalediffusion.*`` metadata."""
    path = Path(path)
    model = model.eval()
    size = model.config.input_size
    example = (torch.rand(2, 3, size, size), torch.rand(2, 1) * 10.0, torch.tensor([1, 4]))
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter about torchvision ops and pytree internals
        program = torch.onnx.export(
            model,
            example,
            input_names=["image", "speed", "command"],
            output_names=["control", "speed_pred"],
            dynamic_shapes=({0: batch}, {0: batch}, {0: batch}),
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    proto = program.model_proto
    entries = {"model_config": json.dumps(model.config.to_dict(), sort_keys=True), **(metadata or {})}
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = META_PREFIX + key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def parity_max_abs_diff(model: Cilrs, onnx_path: str | Path, batch: int = 8, seed: int = 0) -> float:
    """Largest |PyTorch - onnxruntime| over both outputs for random inputs covering every command."""
    model = model.eval()
    g = torch.Generator().manual_seed(seed)
    size = model.config.input_size
    images = torch.rand(batch, 3, size, size, generator=g)
    speeds = torch.rand(batch, 1, generator=g) * 15.0
    commands = torch.arange(batch) % 7
    with torch.no_grad():
        control, speed = model(images, speeds, commands)
    policy = OnnxPolicy(onnx_path, providers=["CPUExecutionProvider"])
    o_control, o_speed = policy.run_batch(images.numpy(), speeds.numpy(), commands.numpy())
    return float(max(np.abs(o_control - control.numpy()).max(), np.abs(o_speed - speed.numpy()).max()))
