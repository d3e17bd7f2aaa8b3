"""A driving policy exported to ONNX, run with onnxruntime: what the CARLA agent and the embedded evaluator drive with.

Needs no torch. The model's contract (services/trainer/model.py) is stored in the ONNX metadata under
``scalediffusion.*`` keys, so a policy file is usable on its own: input size, preset, commands.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

META_PREFIX = "scalediffusion."
# Tried in this order; onnxruntime-gpu lists TensorRT/CUDA even without a GPU, so what a session really got is
# read back from it (InferenceSession.get_providers) rather than assumed.
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class PolicyError(ValueError):
    """The file is not a policy this code can run (not ONNX, or missing the inputs/metadata of an export)."""


@dataclass(frozen=True)
class Control:
    steer: float
    throttle: float
    brake: float
    predicted_speed: float


def _gpu_driver_present() -> bool:
    """Whether an NVIDIA driver is installed (libcuda loads). onnxruntime-gpu lists its CUDA and TensorRT providers
    whether or not one is, and trying them without a driver only prints errors before falling back to the CPU."""
    import ctypes

    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def available_providers(prefer_gpu: bool = True) -> list[str]:
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    wanted = PREFERRED_PROVIDERS if prefer_gpu and _gpu_driver_present() else ("CPUExecutionProvider",)
    return [p for p in wanted if p in available] or ["CPUExecutionProvider"]


class OnnxPolicy:
    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # GPU providers that cannot start fall back quietly; what ran is in .providers
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers or available_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise PolicyError(f"{path}: not a loadable ONNX model ({exc})") from exc
        names = {i.name for i in self.session.get_inputs()}
        if names != {"image", "speed", "command"}:
            raise PolicyError(f"{path}: inputs {sorted(names)} are not a CILRS policy's (image, speed, command)")
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.config = json.loads(meta[META_PREFIX + "model_config"])
            self.input_size = int(self.config["input_size"])
        except (KeyError, ValueError, TypeError) as exc:
            raise PolicyError(f"{path}: missing {META_PREFIX}model_config metadata") from exc
        self.metadata = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def preprocess(self, image_rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] of any size -> float32 [1, 3, S, S] in 0..1, resized like the training cache."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB image [H, W, 3], got shape {image_rgb.shape}")
        if image_rgb.shape[:2] != (self.input_size, self.input_size):
            image_rgb = cv2.resize(image_rgb, (self.input_size, self.input_size), interpolation=cv2.INTER_AREA)
        return (image_rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]

    def run_batch(self, images: np.ndarray, speeds: np.ndarray, commands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """images float32 [N,3,S,S], speeds float32 [N,1], commands int64 [N] -> (control [N,3], speed [N,1])."""
        control, speed = self.session.run(
            ["control", "speed_pred"],
            {"image": images.astype(np.float32), "speed": speeds.astype(np.float32), "command": commands.astype(np.int64)},
        )
        return control, speed

    def __call__(self, image_rgb: np.ndarray, speed_mps: float, command: int) -> Control:
        control, speed = self.run_batch(self.preprocess(image_rgb), np.array([[speed_mps]], np.float32), np.array([command], np.int64))
        steer, throttle, brake = (float(v) for v in control[0])
        return Control(steer=steer, throttle=throttle, brake=brake, predicted_speed=float(speed[0, 0]))
