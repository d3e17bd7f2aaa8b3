"""A driving policy exported to ONNX, run with onnxruntime: what the CARLA agent and the embedded evaluator drive with.

Needs no torch. The model's contract (services/trainer/model.py) is stored in the ONNX metadata under
``scalediffusion.*`` keys, so a policy file is usable on its own:
  model_config  the architecture: ``kind`` ("cilrs": controls out; "waypoints": future ego waypoints out),
                input size, preset
  camera        the camera its dataset was recorded with and the processor's resize (scalediffusion.driving.CameraSpec):
                whoever drives the policy renders or mounts that camera
  controller    for waypoint policies, the PID and stuck-detector settings (scalediffusion.driving.ControllerConfig)
Files exported before these keys existed get the defaults (the game's 640x360 dash camera, default controller).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from scalediffusion.driving import CameraSpec, ControllerConfig, Controls, WaypointController, cilrs_controls
from scalediffusion.imaging import downscale

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


OUTPUTS = {"cilrs": ["control", "speed_pred"], "waypoints": ["waypoints"]}


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
        # One frame at a time on a CPU shares the machine with the renderer and other evaluations: no spinning
        # threads waiting for work that a batch of one never has.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers or available_providers())
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
            raise PolicyError(f"{path}: not a loadable ONNX model ({exc})") from exc
        names = {i.name for i in self.session.get_inputs()}
        if names not in ({"image", "speed", "command"}, {"image", "speed", "command", "target"}):
            raise PolicyError(f"{path}: inputs {sorted(names)} are not a policy's (image, speed, command[, target])")
        self.uses_target = "target" in names  # the route's target point, ego frame (services/trainer/model.py)
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            self.config = json.loads(meta[META_PREFIX + "model_config"])
            self.input_size = int(self.config["input_size"])  # the input's width ...
            self.input_height = int(self.config.get("input_height") or self.input_size)  # ... and height (older files: square)
        except (KeyError, ValueError, TypeError) as exc:
            raise PolicyError(f"{path}: missing {META_PREFIX}model_config metadata") from exc
        self.kind = str(self.config.get("kind", "cilrs"))
        outputs = {o.name for o in self.session.get_outputs()}
        if self.kind not in OUTPUTS or not set(OUTPUTS[self.kind]) <= outputs:
            raise PolicyError(f"{path}: a {self.kind!r} policy with outputs {sorted(outputs)} is not one this code can drive")
        # A waypoint policy may also classify the light ahead (ModelConfig.light_classes): logits in LIGHT_CLASSES order.
        self.output_names = OUTPUTS[self.kind] + (["light"] if self.kind == "waypoints" and "light" in outputs else [])
        self.last_light: list[float] | None = None  # the light head's probabilities for the last frame
        self.metadata = {k[len(META_PREFIX):]: v for k, v in meta.items() if k.startswith(META_PREFIX)}
        try:
            self.camera = CameraSpec.from_dict(json.loads(self.metadata["camera"])) if "camera" in self.metadata else CameraSpec()
            self.controller = ControllerConfig.from_dict(json.loads(self.metadata.get("controller", "{}")))
        except (ValueError, TypeError) as exc:
            raise PolicyError(f"{path}: bad camera/controller metadata ({exc})") from exc

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def preprocess(self, image_rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 [H, W, 3] -> float32 [1, 3, h, w] in 0..1 (the model's input size), resized as the training data
        was: a frame of the recorded camera's size first gets the processor's resize (to its dataset frame, e.g.
        256x144), then the training cache's INTER_AREA resize to the model's input size."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB image [H, W, 3], got shape {image_rgb.shape}")
        cam = self.camera
        if image_rgb.shape[:2] == (cam.height, cam.width) and (cam.height, cam.width) != (cam.resize_height, cam.resize_width):
            image_rgb = downscale(image_rgb, cam.resize_width, cam.resize_height)
        if image_rgb.shape[:2] != (self.input_height, self.input_size):
            image_rgb = cv2.resize(image_rgb, (self.input_size, self.input_height), interpolation=cv2.INTER_AREA)
        return (image_rgb.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]

    def run_batch(self, images: np.ndarray, speeds: np.ndarray, commands: np.ndarray,
                  targets: np.ndarray | None = None) -> list[np.ndarray]:
        """images float32 [N,3,h,w], speeds float32 [N,1], commands int64 [N] (and, for a policy that takes it,
        targets float32 [N,2]: the route's target point, ego frame metres) -> the kind's outputs:
        cilrs: [control [N,3], speed [N,1]]; waypoints: [waypoints [N,K,2]] (+ light logits [N,C] with a light head)."""
        feed = {"image": images.astype(np.float32), "speed": speeds.astype(np.float32), "command": commands.astype(np.int64)}
        if self.uses_target:
            if targets is None:
                raise PolicyError("this policy takes the route's target point (ego frame): pass target")
            feed["target"] = np.asarray(targets, np.float32).reshape(-1, 2)
        return self.session.run(self.output_names, feed)

    def _one(self, image_rgb: np.ndarray, speed_mps: float, command: int, target: tuple[float, float] | None) -> list[np.ndarray]:
        targets = None if target is None else np.array([target], np.float32)
        return self.run_batch(self.preprocess(image_rgb), np.array([[speed_mps]], np.float32), np.array([command], np.int64), targets)

    def __call__(self, image_rgb: np.ndarray, speed_mps: float, command: int, target: tuple[float, float] | None = None) -> Control:
        """A CILRS policy's controls for one frame."""
        if self.kind != "cilrs":
            raise PolicyError(f"a {self.kind!r} policy predicts waypoints, not controls: drive it with PolicyDriver")
        control, speed = self._one(image_rgb, speed_mps, command, target)
        steer, throttle, brake = (float(v) for v in control[0])
        return Control(steer=steer, throttle=throttle, brake=brake, predicted_speed=float(speed[0, 0]))

    def waypoints(self, image_rgb: np.ndarray, speed_mps: float, command: int,
                  target: tuple[float, float] | None = None) -> list[tuple[float, float]]:
        """A waypoint policy's prediction for one frame: [(x forward, y right), ...] metres."""
        wps, *light = self._one(image_rgb, speed_mps, command, target)
        if light:
            logits = light[0][0].astype(np.float64)
            p = np.exp(logits - logits.max())
            self.last_light = (p / p.sum()).tolist()
        return [(float(x), float(y)) for x, y in wps[0]]


class PolicyDriver:
    """A policy file as a driver, the same for the embedded evaluator and the CARLA agent: camera image, speed,
    navigation command and (optionally) a front range reading in, controls out. CILRS outputs are post-processed
    (brake only when it outweighs the throttle); waypoints go through the policy's own WaypointController."""

    def __init__(self, policy: OnnxPolicy, control_hz: float = 20.0, controller_overrides: dict | None = None) -> None:
        """controller_overrides: ControllerConfig fields that replace the policy file's (an experiment's knob,
        e.g. {"aeb_time_s": 0} to drive without the emergency brake); unknown names are an error."""
        from dataclasses import fields

        self.policy = policy
        overrides = dict(controller_overrides or {})
        unknown = set(overrides) - {f.name for f in fields(ControllerConfig)}
        if unknown:
            raise ValueError(f"unknown controller settings {sorted(unknown)}; see scalediffusion.driving.ControllerConfig")
        config = ControllerConfig.from_dict({**policy.controller.to_dict(), **overrides, "control_hz": control_hz})
        self.controller_config = config
        self.controller = WaypointController(config) if policy.kind == "waypoints" else None
        self.last_waypoints: list[tuple[float, float]] = []
        self.last_controls: Controls | None = None  # what the last call returned (for traces)

    def __call__(self, image_rgb: np.ndarray, speed_mps: float, command: int,
                 front_range_m: float | Callable[[], float] = math.inf, target: tuple[float, float] | None = None) -> Controls:
        """target: the route's target point in the ego frame (x forward, y right, metres); policies that take it
        need it, the others ignore it."""
        if self.controller is None:
            out = self.policy(image_rgb, speed_mps, command, target)
            self.last_controls = cilrs_controls(out.steer, out.throttle, out.brake)
            return self.last_controls
        self.last_waypoints = self.policy.waypoints(image_rgb, speed_mps, command, target)
        self.last_controls = self.controller.step(self.last_waypoints, speed_mps, front_range_m, target, self.policy.last_light)
        return self.last_controls
