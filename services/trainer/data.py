"""CILRS samples from a dataset in the clean bucket: session-level split, a local decoded-frame cache, a torch Dataset.

Why a decoded cache: a training step on the CPU or one GPU is far cheaper than fetching and decoding JPEGs, and an
epoch reads every frame again. Each segment is fetched once, decoded and resized to the model's input size, and
kept on local disk as one uint8 array (``frames.npy``, memory-mapped by the loader) with its targets beside it.
An epoch then reads memory-mapped pages: the model, not the data path, sets the pace (bench/trainer_bench.py).

Augmentations (``augment_batch``, training only, on whole batches on the model's device):
  - brightness x U(0.8, 1.2) and contrast x U(0.8, 1.2) per sample: lighting differs between players and, after the
    diffusion model repaints the streets, between styles;
  - additive Gaussian pixel noise, sigma 0.02: compression and repainting artefacts.
No horizontal flips: traffic drives on the right, so a mirrored frame teaches the wrong side of the road.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from scalediffusion.driving import LIGHT_CLASSES
from scalediffusion.platform import keys
from scalediffusion.platform.datasets import IndexEntry
from scalediffusion.platform.s3 import ObjectStore

TARGET_FIELDS = ("steer", "throttle", "brake", "speed")
# One row of targets per frame: the applied controls and speed (CILRS), the target speed, the expert's clean
# controls where a bot recorded them (has_expert 1) else the applied ones, how many waypoints are real, then the
# waypoints (x forward, y right, metres) flattened. Older datasets without waypoints get waypoints_valid 0. The route's
# target point (ego frame) where the session recorded one (has_target 1), else 0, 0. The frame's traffic-light
# label as an index into driving.LIGHT_CLASSES (the processor's lights.py), -1 where the session has none.
COLUMNS = TARGET_FIELDS + ("target_speed", "expert_steer", "expert_throttle", "expert_brake", "has_expert", "waypoints_valid",
                           "target_x", "target_y", "has_target", "light")
COL = {name: i for i, name in enumerate(COLUMNS)}
WAYPOINTS_AT = len(COLUMNS)
CACHE_FORMAT = 4


class DatasetError(ValueError):
    """The dataset cannot be trained on (empty, too few sessions, malformed segment); the message says which."""


def session_score(session_id: str, seed: int) -> float:
    """A session's place in [0, 1) for the split: a hash, so it never depends on which other sessions exist."""
    digest = hashlib.sha256(f"{seed}:{session_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_session(entries: Sequence[IndexEntry], val_fraction: float, seed: int) -> tuple[list[IndexEntry], list[IndexEntry]]:
    """Train/val split by session, never by frame: neighbouring frames of one drive are near-duplicates, so a
    frame-level split would let validation grade memorisation. A session is in validation when its score is below
    val_fraction, so it stays on its side when the dataset grows. Small datasets get at least one session on each
    side (the lowest / highest score) when there are two or more."""
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    sessions = sorted({e.segment.session_id for e in entries}, key=lambda s: session_score(s, seed))
    if not sessions:
        raise DatasetError("the dataset has no segments")
    val_sessions = {s for s in sessions if session_score(s, seed) < val_fraction}
    if val_fraction > 0 and len(sessions) >= 2:
        if not val_sessions:
            val_sessions = {sessions[0]}
        if len(val_sessions) == len(sessions):
            val_sessions.discard(sessions[-1])
    train = [e for e in entries if e.segment.session_id not in val_sessions]
    val = [e for e in entries if e.segment.session_id in val_sessions]
    return train, val


def first_minutes(entries: Sequence[IndexEntry], minutes: float, seed: int) -> list[IndexEntry]:
    """The segments of whole sessions, taken in session-score order until `minutes` of driving are reached: a
    slice of a dataset that only grows as the dataset does, and smaller slices nested in larger ones."""
    by_session: dict[str, list[IndexEntry]] = {}
    for e in entries:
        by_session.setdefault(e.segment.session_id, []).append(e)
    chosen: list[IndexEntry] = []
    total_s = 0.0
    for session in sorted(by_session, key=lambda s: session_score(s, seed)):
        if total_s >= minutes * 60.0:
            break
        chosen += by_session[session]
        total_s += sum(e.segment.duration_s for e in by_session[session])
    return chosen


def dataset_camera(entries: Sequence[IndexEntry]):
    """The camera the segments were recorded with (the most common one if they differ; the game's default camera
    for segments written before the processor recorded it)."""
    from collections import Counter

    from scalediffusion.driving import CameraSpec

    specs = Counter(json.dumps(CameraSpec.from_dict(e.camera).to_dict(), sort_keys=True) for e in entries if e.camera)
    return CameraSpec.from_dict(json.loads(specs.most_common(1)[0][0])) if specs else CameraSpec()


def waypoint_step(entries: Sequence[IndexEntry]) -> float:
    """The seconds between waypoints the dataset's measurements use (the processor's SD_WAYPOINT_STEP_S)."""
    steps = {float(e.targets["waypoint_step_s"]) for e in entries if e.targets.get("waypoint_step_s")}
    if len(steps) > 1:
        raise DatasetError(f"segments use different waypoint spacings {sorted(steps)}: reprocess them with one setting")
    return steps.pop() if steps else 0.5


def check_targets(train: CilrsFrames, val: CilrsFrames, model_config) -> None:
    """Every segment has the same target row width, and a waypoint model's waypoints exist in the data."""
    widths = {int(np.load(s.path / "targets.npy", mmap_mode="r").shape[1]) for s in train.segments + val.segments}
    if len(widths) > 1:
        raise DatasetError(f"segments carry different waypoint counts ({sorted((w - WAYPOINTS_AT) // 2 for w in widths)}): "
                           "reprocess the older ones (Reprocess) so every segment has the same targets")
    if model_config.kind == "waypoints":
        have = (widths.pop() - WAYPOINTS_AT) // 2 if widths else 0
        if have < model_config.waypoints:
            raise DatasetError(f"the model predicts {model_config.waypoints} waypoints but the dataset has {have} per frame; "
                               "reprocess the dataset with a processor that writes waypoints (SD_WAYPOINTS)")


def with_target_points(segments: Sequence[CachedSegment]) -> tuple[list[CachedSegment], int]:
    """(the segments whose every frame has the route's target point, frames dropped): what a model that takes the
    target point can train on. Sessions recorded before the game and the bots recorded it have none."""
    kept: list[CachedSegment] = []
    dropped = 0
    for s in segments:
        has = np.load(s.path / "targets.npy", mmap_mode="r")[:, COL["has_target"]]
        if bool((has > 0.5).all()):
            kept.append(s)
        else:
            dropped += s.frame_count
    return kept, dropped


def targets_from_measurements(measurements: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """[N, len(COLUMNS) + 2K] float32 target rows (see COLUMNS; K = the waypoints per frame, 0 when the dataset has
    none) and [N] int64 commands; DatasetError on a malformed entry."""
    k = len(measurements[0].get("waypoints") or []) if measurements else 0
    targets = np.zeros((len(measurements), WAYPOINTS_AT + 2 * k), dtype=np.float32)
    commands = np.zeros(len(measurements), dtype=np.int64)
    for i, m in enumerate(measurements):
        try:
            row = [float(m[f]) for f in TARGET_FIELDS]
            expert = m.get("expert")
            clean = [float(expert[f]) for f in ("steer", "throttle", "brake")] if expert else row[:3]
            waypoints = m.get("waypoints") or []
            if len(waypoints) != k:
                raise ValueError(f"{len(waypoints)} waypoints where the segment's first frame has {k}")
            row += [float(m.get("target_speed", m["speed"]))] + clean + [1.0 if expert else 0.0]
            target = m.get("target_point")
            row += [float(min(int(m.get("waypoints_valid", k)), k))]
            row += [float(target[0]), float(target[1]), 1.0] if target else [0.0, 0.0, 0.0]
            if "light" in m and m["light"] not in LIGHT_CLASSES:
                raise ValueError(f"light {m['light']!r} is not one of {LIGHT_CLASSES}")
            row += [float(LIGHT_CLASSES.index(m["light"])) if "light" in m else -1.0]
            row += [float(v) for p in waypoints for v in p[:2]]
            targets[i] = row
            commands[i] = int(m.get("command", 4))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DatasetError(f"measurement {i} is malformed: {exc!r}") from exc
    if not np.isfinite(targets).all():
        raise DatasetError("measurements hold non-finite values")
    return targets, commands


def command_weights(commands: np.ndarray) -> np.ndarray:
    """Per-frame sampling weights [N] float64: (count of the most common command / count of this frame's command)
    ** 0.5, so rare commands (turns) are drawn more often without drowning the common ones."""
    values, counts = np.unique(commands, return_counts=True)
    per_command = dict(zip(values.tolist(), ((counts.max() / counts) ** 0.5).tolist()))
    return np.array([per_command[c] for c in commands.tolist()], dtype=np.float64)


def turn_amounts(rows: np.ndarray) -> np.ndarray:
    """How much each frame's future path turns, [N] in 0..1: the angle from straight ahead to the last real
    waypoint, over 45 degrees (capped at 1); 0 when the car moves under 2 m in that time (a wait, not a turn) or the
    frame has no waypoints. It finds the middle of a turn, where the command is already LANEFOLLOW again."""
    n = rows.shape[0]
    k = (rows.shape[1] - WAYPOINTS_AT) // 2
    if k == 0 or n == 0:
        return np.zeros(n, dtype=np.float64)
    waypoints = rows[:, WAYPOINTS_AT:WAYPOINTS_AT + 2 * k].reshape(n, k, 2).astype(np.float64)
    last = np.clip(rows[:, COL["waypoints_valid"]].astype(np.int64), 1, k) - 1
    x, y = waypoints[np.arange(n), last, 0], waypoints[np.arange(n), last, 1]
    angle = np.abs(np.arctan2(y, np.maximum(x, 1e-3)))
    moving = np.hypot(x, y) >= 2.0
    return np.where(moving & (rows[:, COL["waypoints_valid"]] > 0), np.minimum(angle / (np.pi / 4), 1.0), 0.0)


def light_labels(rows: np.ndarray) -> np.ndarray:
    """Each frame's light class [N] int64 (driving.LIGHT_CLASSES index; -1: no label)."""
    return rows[:, COL["light"]].astype(np.int64) if rows.shape[0] else np.zeros(0, np.int64)


def decode_frame(jpeg: bytes, height: int, width: int) -> np.ndarray:
    """JPEG bytes -> RGB uint8 [height, width, 3]."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError("a frame is not a decodable JPEG")
    if image.shape[:2] != (height, width):
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class CachedSegment:
    segment_id: str
    session_id: str
    path: Path
    frame_count: int


class FrameCache:
    """Segments from S3, decoded once to ``<root>/<bucket>/<dataset>/<segment>/<width>x<height>/`` and kept between
    runs.

    A segment directory appears by rename only after all its files are written, so a crash mid-download leaves
    no half segment that a later run would trust."""

    def __init__(self, store: ObjectStore, root: str | Path, input_hw: tuple[int, int], threads: int = 8) -> None:
        self.store = store
        self.root = Path(root)
        self.height, self.width = input_hw
        self.threads = threads

    def _dir(self, entry: IndexEntry) -> Path:
        seg = entry.segment
        return self.root / seg.bucket / seg.dataset / seg.segment_id / f"{self.width}x{self.height}"

    def cached(self, entry: IndexEntry) -> CachedSegment | None:
        path = self._dir(entry)
        try:
            meta = json.loads((path / "meta.json").read_text())
        except (OSError, ValueError):
            return None
        if meta.get("format") != CACHE_FORMAT or meta.get("frame_count") != entry.segment.frame_count:
            return None
        return CachedSegment(entry.segment.segment_id, entry.segment.session_id, path, entry.segment.frame_count)

    def fetch(self, entry: IndexEntry) -> CachedSegment:
        hit = self.cached(entry)
        if hit is not None:
            return hit
        seg = entry.segment
        measurements = self.store.get_json(seg.bucket, keys.measurements_key(seg.dataset, seg.segment_id))
        if not isinstance(measurements, list) or len(measurements) != seg.frame_count:
            raise DatasetError(f"segment {seg.segment_id}: measurements.json missing or not {seg.frame_count} entries")
        targets, commands = targets_from_measurements(measurements)
        frames = np.empty((seg.frame_count, self.height, self.width, 3), dtype=np.uint8)
        for i in range(seg.frame_count):
            frames[i] = decode_frame(self.store.get_bytes(seg.bucket, keys.frame_key(seg.dataset, seg.segment_id, i)), self.height, self.width)
        final = self._dir(entry)
        tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.save(tmp / "frames.npy", frames)
        np.save(tmp / "targets.npy", targets)
        np.save(tmp / "commands.npy", commands)
        (tmp / "meta.json").write_text(json.dumps({"format": CACHE_FORMAT, "frame_count": seg.frame_count, "segment_id": seg.segment_id}))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        return CachedSegment(seg.segment_id, seg.session_id, final, seg.frame_count)

    def fetch_all(self, entries: Sequence[IndexEntry], on_done: Callable[[int], None] | None = None) -> list[CachedSegment]:
        """All segments, fetched concurrently (S3 latency, not bandwidth, bounds a segment of small JPEGs)."""
        results: list[CachedSegment | None] = [None] * len(entries)

        def one(i: int) -> None:
            results[i] = self.fetch(entries[i])
            if on_done:
                on_done(entries[i].segment.frame_count)

        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(one, range(len(entries))))
        return [r for r in results if r is not None]


class CilrsFrames(torch.utils.data.Dataset):
    """Frames of cached segments as (image uint8 [3,H,W], speed [1], command [], target row [len(COLUMNS) + 2K]);
    the row also carries the route's target point (COL target_x, target_y) for models that take it."""

    def __init__(self, segments: Sequence[CachedSegment]) -> None:
        self.segments = list(segments)
        self.offsets = np.cumsum([0] + [s.frame_count for s in self.segments])
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _load(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # Opened lazily per process: DataLoader workers each map the files themselves.
        if s not in self._arrays:
            path = self.segments[s].path
            self._arrays[s] = (
                np.load(path / "frames.npy", mmap_mode="r"),
                np.load(path / "targets.npy"),
                np.load(path / "commands.npy"),
            )
        return self._arrays[s]

    def __getitem__(self, index: int):
        s = int(np.searchsorted(self.offsets, index, side="right") - 1)
        frames, targets, commands = self._load(s)
        i = index - int(self.offsets[s])
        image = torch.from_numpy(np.array(frames[i])).permute(2, 0, 1)  # a copy: the memory map is read-only
        target = torch.from_numpy(targets[i])
        return image, target[3:4].clone(), torch.tensor(commands[i]), target.clone()

    def commands(self) -> np.ndarray:
        return np.concatenate([self._load(s)[2] for s in range(len(self.segments))]) if self.segments else np.zeros(0, np.int64)

    def target_rows(self) -> np.ndarray:
        """Every frame's target row, [N, len(COLUMNS) + 2K]."""
        return np.concatenate([self._load(s)[1] for s in range(len(self.segments))]) if self.segments else np.zeros((0, WAYPOINTS_AT), np.float32)


def to_model_input(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [N,3,H,W] -> float32 in 0..1 (what the model and its ONNX export take)."""
    return images_u8.float().div_(255.0)


def augment_batch(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Photometric augmentation of float images in 0..1 (see the module docstring); returns a new tensor."""
    n = images.shape[0]
    shape = (n, 1, 1, 1)
    brightness = torch.empty(shape).uniform_(0.8, 1.2, generator=generator).to(images.device)
    contrast = torch.empty(shape).uniform_(0.8, 1.2, generator=generator).to(images.device)
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    out = (images - mean) * contrast + mean
    out = out * brightness
    noise = torch.randn(images.shape, generator=generator).to(images.device) * 0.02
    return (out + noise).clamp_(0.0, 1.0)
