"""A training run (CILRS or the waypoint model): dataset in the clean bucket -> checkpoints, best model, ONNX policy
and a summary in models/<run>/.

The same entry point runs in the trainer's process tree (local backend: a child process), in a Kubernetes Job
(``torchrun ... -m services.trainer.train``; several GPUs or pods train with DistributedDataParallel) and by hand:

    python -m services.trainer.train --run-id r1 --dataset default --config-json '{"preset": "cilrs-resnet18-tiny", "epochs": 3}'

Crash safety: after every epoch the full state (model, optimiser, history, RNG) is written to models/<run>/checkpoint.pt;
starting the same run id again resumes after the last finished epoch. models/<run>/progress.json is the run's
status for whoever watches it (the trainer service for both backends).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scalediffusion.driving import LIGHT_CLASSES, ControllerConfig
from scalediffusion.platform import datasets, keys
from scalediffusion.platform.logs import configure_logging, event, get_logger
from scalediffusion.platform.process import exit_with_parent
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.platform.settings import S3Settings, env_str
from scalediffusion.v1 import trainer_pb2
from services.trainer import data
from services.trainer.model import (
    BRANCH_NAMES,
    COMMAND_TO_BRANCH,
    DEFAULT_PRESET,
    PRESETS,
    build_model,
    model_config,
    preset,
)
from services.trainer.onnx_export import PARITY_TOLERANCE, export_onnx, parity_max_abs_diff

log = get_logger("trainer.train")


class ConfigError(ValueError):
    """A training configuration that cannot run; the message names the field."""


@dataclass(frozen=True)
class TrainConfig:
    preset: str = DEFAULT_PRESET
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 2e-4  # Adam, as in CILRS
    val_fraction: float = 0.1
    seed: int = 0
    control_weight: float = 0.95
    speed_weight: float = 0.05
    augment: bool = True
    # DataLoader worker processes; -1 = automatic: none on the CPU (the decoded cache makes loading cheap, and
    # workers would take cores from the model: bench/trainer_bench.py), else up to 8 per GPU.
    num_workers: int = -1
    # 0 = the whole epoch; a positive value caps optimiser steps per epoch (smoke runs, benchmarks).
    max_steps_per_epoch: int = 0
    gpus: int = 0
    nodes: int = 1
    # Train on the first data_minutes minutes of driving of the training split (sessions in hash order, so smaller
    # slices nest in larger ones); 0 = all of it. The data-value experiment (scale-diffusion value).
    data_minutes: float = 0.0
    # CILRS: learn the expert's clean controls where a bot recorded them (noise injection, Codevilla et al.);
    # frames without them (human play) learn the applied controls.
    expert_labels: bool = True
    # Draw frames with weight (most common command's count / this command's count) ** 0.5: turns are a few percent of
    # driving but decide most routes. Single-process training only (DDP shards uniformly).
    balance_commands: bool = True
    # Draw frames whose future path turns more often too: x (1 + turn_weight x data.turn_amounts), 0 = off. The
    # command weights miss the second half of a turn, where the command is LANEFOLLOW again.
    turn_weight: float = 0.0
    # Which epoch's weights become the model: "best" (lowest validation loss, CILRS's early stopping), "last" (the
    # final epoch, as AIM/TransFuser ship: on a few validation sessions the best-loss epoch is noise, and a waypoint
    # model is scored closed-loop, not on held-out loss), or "auto" (last for waypoint models, best for CILRS).
    keep: str = "auto"
    # Models with a traffic-light head (ModelConfig.light_classes): the light cross-entropy's weight beside the
    # waypoint L1 (frames without a label are left out of it), and how much more often frames labelled red or
    # yellow are drawn, x (1 + red_draw_weight): the approaches to a red are a few percent of driving.
    light_weight: float = 1.0
    red_draw_weight: float = 2.0
    # ... and frames labelled green while the car stands (under STANDING_MPS), x (1 + green_stand_draw_weight): the
    # second or two a driver takes to react to a green are the only frames where the lamp, not the car's position in
    # front of the junction, tells red from green.
    green_stand_draw_weight: float = 8.0

    def validate(self) -> TrainConfig:
        if self.preset not in PRESETS:
            raise ConfigError(f"preset {self.preset!r} is unknown; known: {', '.join(sorted(PRESETS))}")
        checks = {
            "epochs": 1 <= self.epochs <= 10_000,
            "batch_size": 1 <= self.batch_size <= 4096,
            "learning_rate": 0 < self.learning_rate < 1,
            "val_fraction": 0 <= self.val_fraction < 1,
            "control_weight": self.control_weight >= 0,
            "speed_weight": self.speed_weight >= 0,
            "num_workers": -1 <= self.num_workers <= 64,
            "max_steps_per_epoch": self.max_steps_per_epoch >= 0,
            "gpus": 0 <= self.gpus <= 64,
            "nodes": 1 <= self.nodes <= 256,
            "data_minutes": 0 <= self.data_minutes <= 1e7,
            "keep": self.keep in ("auto", "best", "last"),
            "turn_weight": 0 <= self.turn_weight <= 100,
            "light_weight": self.light_weight >= 0,
            "red_draw_weight": 0 <= self.red_draw_weight <= 100,
            "green_stand_draw_weight": 0 <= self.green_stand_draw_weight <= 100,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"invalid training config field(s) {', '.join(bad)}: {({k: getattr(self, k) for k in bad})}")
        return self

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TrainConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(doc) - set(known))
        if unknown:
            raise ConfigError(f"unknown training config field(s): {', '.join(unknown)}")
        try:
            typed = {k: type(getattr(cls(), k))(v) for k, v in doc.items()}
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"training config has a value of the wrong type: {exc}") from exc
        return replace(cls(), **typed).validate()

    @classmethod
    def from_proto(cls, config: trainer_pb2.TrainingConfig) -> TrainConfig:
        """Zero/empty proto fields keep the defaults."""
        doc: dict[str, Any] = {}
        for name in ("preset", "epochs", "batch_size", "learning_rate", "val_fraction", "seed", "gpus", "nodes", "data_minutes",
                     "max_steps_per_epoch", "turn_weight"):
            value = getattr(config, name)
            if value:
                doc[name] = value
        return cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- losses and metrics (pure torch, tested directly)


def cilrs_loss(control: torch.Tensor, pred_speed: torch.Tensor, target: torch.Tensor, speed: torch.Tensor,
               config: TrainConfig, speed_scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, control L1, speed L1 in normalised units) — L1 as in CILRS, weighted control 0.95 / speed 0.05."""
    control_l1 = (control - target).abs().mean()
    speed_l1 = ((pred_speed - speed) / speed_scale).abs().mean()
    return config.control_weight * control_l1 + config.speed_weight * speed_l1, control_l1, speed_l1


def waypoint_l1(pred: torch.Tensor, target_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean L1 over the real waypoints, per-sample L1 [N]): pred [N, K, 2]; target rows carry the dataset's
    waypoints and how many are real (data.COLUMNS); waypoints past the end of a recording are masked out."""
    n, k, _ = pred.shape
    waypoints = target_rows[:, data.WAYPOINTS_AT:data.WAYPOINTS_AT + 2 * k].reshape(n, k, 2)
    valid = target_rows[:, data.COL["waypoints_valid"]]
    mask = (torch.arange(k, device=pred.device)[None, :] < valid[:, None]).to(pred.dtype)  # (N, K)
    err = (pred - waypoints).abs().mean(dim=2) * mask  # (N, K)
    per_sample = err.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    return err.sum() / mask.sum().clamp(min=1.0), per_sample


def control_targets(target_rows: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """CILRS's control targets [N, 3]: the expert's clean controls where recorded (and wanted), else the applied."""
    if not config.expert_labels:
        return target_rows[:, :3]
    c = data.COL
    return target_rows[:, c["expert_steer"]:c["expert_brake"] + 1]


def light_ce(logits: torch.Tensor, target_rows: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the light head over the frames that carry a light label (data.COL light >= 0)."""
    labels = target_rows[:, data.COL["light"]].long()
    if not bool((labels >= 0).any()):
        return logits.sum() * 0.0  # no labelled frame in the batch: no gradient, but still part of the graph
    return nn.functional.cross_entropy(logits, labels, ignore_index=-1)


def losses(model: nn.Module, images: torch.Tensor, speed: torch.Tensor, command: torch.Tensor, target_rows: torch.Tensor,
           config: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, main L1, auxiliary loss, per-sample main error [N]) for either kind of model. CILRS: control L1 and
    speed L1 (weighted 0.95 / 0.05); waypoints: waypoint L1 in metres, plus light_weight x the light head's
    cross-entropy when the model has one (the auxiliary loss; else 0)."""
    model_cfg = model_config(model)
    c = data.COL
    target_point = target_rows[:, c["target_x"]:c["target_y"] + 1] if model_cfg.use_target else None
    if model_cfg.kind == "waypoints":
        out = model(images, speed, command, target_point)
        waypoints, logits = out if isinstance(out, tuple) else (out, None)
        l1, per_sample = waypoint_l1(waypoints, target_rows)
        if logits is None:
            return l1, l1, torch.zeros((), device=l1.device), per_sample.detach()
        ce = light_ce(logits, target_rows)
        return l1 + config.light_weight * ce, l1, ce, per_sample.detach()
    control, pred_speed = model(images, speed, command, target_point)
    target = control_targets(target_rows, config)
    total, control_l1, speed_l1 = cilrs_loss(control, pred_speed, target, speed, config, model_cfg.speed_scale)
    return total, control_l1, speed_l1, (control - target).abs().mean(dim=1).detach()


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch, config: TrainConfig, speed_scale: float,
               aug_generator: torch.Generator, device: torch.device) -> tuple[float, float, float]:
    """One optimiser step on a (uint8 images, speed, command, target rows) batch; returns (loss, main L1, aux L1).
    Shared by training runs and bench/trainer_bench.py, so the benchmark times exactly what training does."""
    images, speed, command, target = batch
    images = data.to_model_input(images.to(device, non_blocking=True))
    if config.augment:
        images = data.augment_batch(images, aug_generator)
    speed, command, target = speed.to(device), command.to(device), target.to(device)
    loss, main_l1, aux_l1, _ = losses(model, images, speed, command, target, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), main_l1.item(), aux_l1.item()


@dataclass
class ErrorByCommand:
    """Mean absolute control error per command branch (which branches the data exercises, and how well)."""

    sums: dict[str, float]
    counts: dict[str, int]

    @classmethod
    def empty(cls) -> ErrorByCommand:
        return cls({n: 0.0 for n in BRANCH_NAMES}, {n: 0 for n in BRANCH_NAMES})

    def add(self, control: torch.Tensor, target: torch.Tensor, commands: torch.Tensor) -> None:
        self.add_errors((control - target).abs().mean(dim=1), commands)

    def add_errors(self, err: torch.Tensor, commands: torch.Tensor) -> None:
        for command, e in zip(commands.tolist(), err.tolist()):
            name = BRANCH_NAMES[COMMAND_TO_BRANCH.get(int(command), COMMAND_TO_BRANCH[4])]
            self.sums[name] += e
            self.counts[name] += 1

    def means(self) -> dict[str, float]:
        return {n: self.sums[n] / self.counts[n] for n in BRANCH_NAMES if self.counts[n]}


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_env(cls) -> Distributed:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class RunArtifacts:
    """The run's objects in the models bucket."""

    def __init__(self, store: ObjectStore, bucket: str, run_id: str) -> None:
        self.store, self.bucket, self.run_id = store, bucket, keys.check_id("run id", run_id)

    def key(self, name: str) -> str:
        return keys.run_key(self.run_id, name)

    def put_torch(self, name: str, obj: Any) -> None:
        buf = io.BytesIO()
        torch.save(obj, buf)
        self.store.put_bytes(self.bucket, self.key(name), buf.getvalue())

    def get_torch(self, name: str) -> Any | None:
        if self.store.stat(self.bucket, self.key(name)) is None:
            return None
        return torch.load(io.BytesIO(self.store.get_bytes(self.bucket, self.key(name))), map_location="cpu", weights_only=False)

    def put_json(self, name: str, doc: Any) -> None:
        self.store.put_json(self.bucket, self.key(name), doc)

    def progress(self, state: str, progress: float, message: str = "", **extra: Any) -> None:
        self.put_json("progress.json", {"state": state, "progress": round(progress, 4), "message": message,
                                        "updated_at": time.time(), **extra})


ProgressFn = Callable[[str, float, dict[str, float]], None]


def _device(dist: Distributed) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", dist.local_rank)
    return torch.device("cpu")


def _workers(config: TrainConfig) -> int:
    if config.num_workers >= 0:
        return config.num_workers
    if not torch.cuda.is_available():
        return 0
    return max(0, min(8, (os.cpu_count() or 1) // max(1, torch.cuda.device_count()) - 1))


STANDING_MPS = 0.3  # a frame slower than this stands (the autopilot's own "standing at the light")


def sampling_weights(frames: data.CilrsFrames, config: TrainConfig) -> np.ndarray:
    """Per-frame draw weights [N]: rare commands (balance_commands) and turning paths (turn_weight) more often; for
    light models, frames before a red or yellow and frames standing at a green."""
    weights = data.command_weights(frames.commands()) if config.balance_commands else np.ones(len(frames))
    if config.turn_weight:
        weights = weights * (1.0 + config.turn_weight * data.turn_amounts(frames.target_rows()))
    if preset(config.preset).light_classes:
        rows = frames.target_rows()
        light = data.light_labels(rows)
        stop = np.isin(light, [LIGHT_CLASSES.index("red"), LIGHT_CLASSES.index("yellow")])
        standing_green = (light == LIGHT_CLASSES.index("green")) & (rows[:, data.COL["speed"]] < STANDING_MPS)
        weights = weights * np.where(stop, 1.0 + config.red_draw_weight, 1.0) \
            * np.where(standing_green, 1.0 + config.green_stand_draw_weight, 1.0)
    return weights


def _loader(frames: data.CilrsFrames, config: TrainConfig, shuffle: bool, epoch: int, dist: Distributed):
    sampler: torch.utils.data.Sampler[int] | None = None
    generator = torch.Generator().manual_seed(config.seed * 1000 + epoch)
    if dist.world_size > 1:
        sampler = torch.utils.data.DistributedSampler(frames, dist.world_size, dist.rank, shuffle=shuffle, seed=config.seed)
        sampler.set_epoch(epoch)
    elif shuffle and (config.balance_commands or config.turn_weight or preset(config.preset).light_classes) and len(frames):
        weights = sampling_weights(frames, config)
        sampler = torch.utils.data.WeightedRandomSampler(weights.tolist(), len(frames), replacement=True, generator=generator)
    return torch.utils.data.DataLoader(
        frames,
        batch_size=config.batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        generator=generator,
        num_workers=_workers(config),
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        drop_last=shuffle and len(frames) > config.batch_size,
    )


def evaluate(model: nn.Module, loader, config: TrainConfig, device: torch.device) -> dict[str, float]:
    """Validation metrics: the loss, the main L1 (controls, or waypoints in metres) and the auxiliary L1 (speed),
    and the main error per command branch."""
    model.eval()
    model_cfg = model_config(model)
    totals = np.zeros(3)
    n = 0
    by_command = ErrorByCommand.empty()
    with torch.no_grad():
        for images, speed, command, target in loader:
            images = data.to_model_input(images.to(device))
            speed, command, target = speed.to(device), command.to(device), target.to(device)
            *parts, per_sample = losses(model, images, speed, command, target, config)
            totals += np.array([p.item() for p in parts]) * len(images)
            n += len(images)
            by_command.add_errors(per_sample.cpu(), command.cpu())
    if n == 0:
        return {}
    main = "val_waypoint_l1" if model_cfg.kind == "waypoints" else "val_control_l1"
    aux = "val_light_ce" if model_cfg.light_classes else "val_speed_l1"
    out = {"val_loss": float(totals[0] / n), main: float(totals[1] / n), aux: float(totals[2] / n)}
    out.update({f"val_l1_{name}": v for name, v in by_command.means().items()})
    return out


class TrainingRun:
    """One run: prepare the data, train (or resume) epoch by epoch, then write the best model and its exports."""

    def __init__(self, store: ObjectStore, s3: S3Settings, run_id: str, dataset: str, config: TrainConfig,
                 cache_dir: str | Path, on_progress: ProgressFn | None = None, show_progress: bool = True) -> None:
        self.store, self.s3, self.dataset, self.config = store, s3, keys.check_id("dataset", dataset), config.validate()
        self.run_id = keys.check_id("run id", run_id)
        self.cache_dir, self.on_progress = cache_dir, on_progress
        self.dist = Distributed.from_env()
        self.device = _device(self.dist)
        self.artifacts = RunArtifacts(store, s3.bucket_models, run_id)
        self.model_config = preset(config.preset)
        self._keep_last = config.keep == "last" or (config.keep == "auto" and self.model_config.kind == "waypoints")
        self.bar = _progress_bar(show_progress and self.dist.is_main)
        self.started = time.time()

    def report(self, state: str, progress: float, message: str = "", metrics: dict | None = None, **extra: Any) -> None:
        if self.dist.is_main:
            self.artifacts.progress(state, progress, message, metrics=metrics or {}, **extra)
            if self.on_progress:
                self.on_progress(state, progress, metrics or {})

    def run(self) -> dict[str, Any]:
        if self.dist.world_size > 1 and not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
        self.report("RUNNING", 0.0, "loading the dataset")
        self.bar.start()
        try:
            train_frames, val_frames = self._prepare_data()
            return self._train(train_frames, val_frames)
        finally:
            self.bar.stop()
            if self.dist.world_size > 1 and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()

    def _prepare_data(self) -> tuple[data.CilrsFrames, data.CilrsFrames]:
        entries = list(datasets.iter_index(self.store, self.s3.bucket_clean, self.dataset))
        if not entries:
            raise data.DatasetError(f"dataset {self.dataset!r} has no segments in bucket {self.s3.bucket_clean!r}")
        self.train_entries, self.val_entries = data.split_by_session(entries, self.config.val_fraction, self.config.seed)
        if self.config.data_minutes:
            self.train_entries = data.first_minutes(self.train_entries, self.config.data_minutes, self.config.seed)
        entries = self.train_entries + self.val_entries
        self.camera = data.dataset_camera(entries)
        self.waypoint_step_s = data.waypoint_step(entries)
        cache = data.FrameCache(self.store, self.cache_dir, self.model_config.input_hw)
        task = self.bar.add_task("fetch + decode", total=sum(e.segment.frame_count for e in entries))
        if self.dist.local_rank == 0:  # one download per node; the other ranks read the node's cache
            cache.fetch_all(entries, on_done=lambda n: self.bar.advance(task, n))
        if self.dist.world_size > 1:
            torch.distributed.barrier()
        train_segments = [cache.fetch(e) for e in self.train_entries]
        val_segments = [cache.fetch(e) for e in self.val_entries]
        if self.model_config.use_target:
            train_segments, dropped_train = data.with_target_points(train_segments)
            val_segments, dropped_val = data.with_target_points(val_segments)
            if dropped_train or dropped_val:
                event(log, "frames_without_target_point", run_id=self.run_id, train_frames=dropped_train, val_frames=dropped_val)
            if not train_segments:
                raise data.DatasetError(f"preset {self.config.preset!r} takes the route's target point, and no training segment "
                                        "has one (sessions recorded before TelemetryTick.target_point); use a preset without -tp")
        train_frames, val_frames = data.CilrsFrames(train_segments), data.CilrsFrames(val_segments)
        data.check_targets(train_frames, val_frames, self.model_config)
        event(log, "dataset_ready", run_id=self.run_id, dataset=self.dataset, train_frames=len(train_frames),
              val_frames=len(val_frames), train_sessions=len({e.segment.session_id for e in self.train_entries}),
              val_sessions=len({e.segment.session_id for e in self.val_entries}))
        return train_frames, val_frames

    def _train(self, train_frames: data.CilrsFrames, val_frames: data.CilrsFrames) -> dict[str, Any]:
        config, dist, device = self.config, self.dist, self.device
        torch.manual_seed(config.seed)
        model = build_model(self.model_config).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        history: list[dict[str, float]] = []
        best: dict[str, Any] = {"val_loss": math.inf, "epoch": -1, "state": None}
        start_epoch, initial_val_loss = 0, None
        resumed = self.artifacts.get_torch("checkpoint.pt")
        if resumed is not None:
            if resumed["config"] != config.to_dict() or resumed["dataset"] != self.dataset:
                raise ConfigError(f"run {self.run_id} exists with a different dataset or config; use a new run id")
            model.load_state_dict(resumed["model"])
            optimizer.load_state_dict(resumed["optimizer"])
            history, best, start_epoch = resumed["history"], resumed["best"], resumed["epoch"] + 1
            initial_val_loss = resumed.get("initial_val_loss")
            event(log, "run_resumed", run_id=self.run_id, from_epoch=start_epoch)
        elif dist.is_main:
            # The untrained model's validation loss: the baseline "training helped" is measured against.
            initial_val_loss = evaluate(model, _loader(val_frames, config, False, 0, Distributed()), config, device).get("val_loss")
        train_model: nn.Module = model
        if dist.world_size > 1:
            train_model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

        aug_generator = torch.Generator()
        steps_per_epoch = math.ceil(len(train_frames) / max(1, config.batch_size * dist.world_size))
        if config.max_steps_per_epoch:
            steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
        for epoch in range(start_epoch, config.epochs):
            aug_generator.manual_seed(config.seed * 7919 + epoch)  # a resumed epoch sees the same augmentations
            train_model.train()
            task = self.bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=steps_per_epoch)
            sums, seen, last_report = np.zeros(3), 0, time.time()
            for step, (images, speed, command, target) in enumerate(_loader(train_frames, config, True, epoch, dist)):
                if step >= steps_per_epoch:
                    break
                losses = train_step(train_model, optimizer, (images, speed, command, target), config,
                                    self.model_config.speed_scale, aug_generator, device)
                sums += np.array(losses) * len(images)
                seen += len(images)
                self.bar.advance(task)
                if time.time() - last_report > 5.0:
                    last_report = time.time()
                    done = (epoch + (step + 1) / steps_per_epoch) / config.epochs
                    self.report("RUNNING", done, f"epoch {epoch + 1}/{config.epochs}", {"train_loss": sums[0] / seen, "epoch": epoch})
            if seen == 0:
                raise data.DatasetError("the training split produced no batch")
            metrics = {"epoch": epoch, "train_loss": float(sums[0] / seen), "train_control_l1": float(sums[1] / seen),
                       "train_speed_l1": float(sums[2] / seen)}
            if dist.is_main:
                metrics.update(evaluate(model, _loader(val_frames, config, False, epoch, Distributed()), config, device))
            history.append(metrics)
            score = metrics.get("val_loss", metrics["train_loss"])
            if score < best["val_loss"] or self._keep_last:
                best = {"val_loss": score, "epoch": epoch, "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
            if dist.is_main:
                self.artifacts.put_torch("checkpoint.pt", {
                    "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history,
                    "best": best, "config": config.to_dict(), "dataset": self.dataset, "initial_val_loss": initial_val_loss,
                })
                self.report("RUNNING", (epoch + 1) / config.epochs, f"epoch {epoch + 1}/{config.epochs} done",
                            {k: float(v) for k, v in metrics.items()}, epoch=epoch)
            rounded: dict[str, Any] = {k: round(float(v), 5) for k, v in metrics.items()}
            event(log, "epoch_done", run_id=self.run_id, **rounded)
            if dist.world_size > 1:
                torch.distributed.barrier()
        if not dist.is_main:
            return {}
        summary = self._finish(best, history, initial_val_loss)
        self.report("SUCCEEDED", 1.0, "trained", {k: float(v) for k, v in history[-1].items()}
                    | {"best_val_loss": best["val_loss"], "train_minutes": summary["train_minutes"], "wall_s": summary["wall_s"]})
        return summary

    def _finish(self, best: dict[str, Any], history: list[dict[str, float]], initial_val_loss: float | None) -> dict[str, Any]:
        """Best weights -> model.pt, model.onnx (+ parity), loss_curves.png, metrics.json."""
        import tempfile

        from services.trainer.plots import plot_training

        artifacts = self.artifacts
        model = build_model(self.model_config)
        model.load_state_dict(best["state"])
        model.eval()
        artifacts.put_torch("model.pt", {"model_config": self.model_config.to_dict(), "state_dict": model.state_dict(),
                                         "epoch": best["epoch"], "val_loss": best["val_loss"]})
        with tempfile.TemporaryDirectory() as tmp:
            metadata = {"run_id": self.run_id, "dataset": self.dataset, "epoch": str(best["epoch"]),
                        "camera": json.dumps(self.camera.to_dict(), sort_keys=True)}
            if self.model_config.kind == "waypoints":
                controller = ControllerConfig(waypoint_step_s=self.waypoint_step_s)
                metadata["controller"] = json.dumps(controller.to_dict(), sort_keys=True)
            onnx_path = export_onnx(model, Path(tmp) / "model.onnx", metadata)
            parity = parity_max_abs_diff(model, onnx_path)
            if parity > PARITY_TOLERANCE:
                raise RuntimeError(f"ONNX export differs from PyTorch by {parity:.2e} (> {PARITY_TOLERANCE})")
            artifacts.store.put_bytes(artifacts.bucket, artifacts.key("model.onnx"), onnx_path.read_bytes())
            png = plot_training(history, Path(tmp) / "loss_curves.png", title=f"run {self.run_id} on {self.dataset}",
                                initial_val_loss=initial_val_loss)
            artifacts.store.put_bytes(artifacts.bucket, artifacts.key("loss_curves.png"), png.read_bytes(), "image/png")
        summary = {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "config": self.config.to_dict(),
            "model_config": self.model_config.to_dict(),
            "history": history,
            "initial_val_loss": initial_val_loss,
            "best_epoch": best["epoch"],
            "best_val_loss": best["val_loss"],
            "onnx_parity_max_abs_diff": parity,
            "train_sessions": sorted({e.segment.session_id for e in self.train_entries}),
            "val_sessions": sorted({e.segment.session_id for e in self.val_entries}),
            "train_frames": sum(e.segment.frame_count for e in self.train_entries),
            "train_minutes": round(sum(e.segment.duration_s for e in self.train_entries) / 60.0, 2),
            "camera": self.camera.to_dict(),
            "val_frames": sum(e.segment.frame_count for e in self.val_entries),
            "wall_s": round(time.time() - self.started, 2),
            "world_size": self.dist.world_size,
            "outputs": {n: artifacts.key(n) for n in ("model.pt", "model.onnx", "loss_curves.png", "checkpoint.pt")},
        }
        artifacts.put_json("metrics.json", summary)
        return summary


def train_run(store: ObjectStore, s3: S3Settings, run_id: str, dataset: str, config: TrainConfig, cache_dir: str | Path,
              on_progress: ProgressFn | None = None, show_progress: bool = True) -> dict[str, Any]:
    """Trains (or resumes) run_id on dataset; returns the summary also written to models/<run>/metrics.json."""
    return TrainingRun(store, s3, run_id, dataset, config, cache_dir, on_progress, show_progress).run()


def _progress_bar(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train a CILRS policy on a dataset in the clean bucket.")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--config-json", default="{}", help="TrainConfig fields as JSON, e.g. '{\"epochs\": 3}'")
    parser.add_argument("--cache-dir", default=env_str("SD_TRAINER_CACHE_DIR", str(Path.home() / ".cache" / "scale-diffusion")))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--exit-with-parent", type=int, metavar="PID", default=0,
                        help="end when process PID (the trainer that started this run) ends")
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        exit_with_parent(args.exit_with_parent)
    configure_logging("trainer-run", os.environ.get("SD_LOG_LEVEL", "INFO"))
    s3 = S3Settings.from_env()
    store = ObjectStore(s3)
    artifacts = RunArtifacts(store, s3.bucket_models, args.run_id)
    try:
        config = TrainConfig.from_dict(json.loads(args.config_json))
        summary = train_run(store, s3, args.run_id, args.dataset, config, args.cache_dir, show_progress=not args.no_progress)
    except (ConfigError, data.DatasetError, json.JSONDecodeError, keys.InvalidId) as exc:
        event(log, "run_failed", run_id=args.run_id, error=str(exc))
        if Distributed.from_env().is_main:
            artifacts.progress("FAILED", 0.0, str(exc))
        return 2
    except Exception as exc:
        log.exception("training run %s failed", args.run_id)
        if Distributed.from_env().is_main:
            artifacts.progress("FAILED", 0.0, f"{type(exc).__name__}: {exc}")
        return 1
    if summary:
        print(json.dumps({k: summary[k] for k in ("run_id", "best_epoch", "best_val_loss", "onnx_parity_max_abs_diff", "wall_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
