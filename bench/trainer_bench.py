"""Trainer benchmark: training samples/s through the real data path vs a bare loop on in-memory tensors.

Both sides run the same optimiser step (services.trainer.train.train_step: uint8 -> float, augmentation, forward,
L1 losses, backward, Adam) on the same model and batch size, side by side in one run:
- real: a dataset built by the processor from synthetic sessions into S3 (SeaweedFS), fetched and decoded into the
  local frame cache (timed separately: the one-off cost of a new dataset), then read by the training DataLoader;
- bare: the same number of batches already in memory as tensors.
The ratio real/bare is what the data path costs the model (goal >= 0.85).

    python bench/trainer_bench.py                                   # tiny + resnet18-128 presets (~3 min)
    python bench/trainer_bench.py --presets cilrs-resnet34 --steps 10
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from scalediffusion import synthetic
from scalediffusion.platform import datasets, keys
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.stack.layout import free_layout
from scalediffusion.stack.local import LocalStack
from scalediffusion.v1 import events_pb2
from services.processor.worker import SessionWorker, WorkerSettings
from services.trainer import data
from services.trainer.model import build_model, preset
from services.trainer.train import Distributed, TrainConfig, _loader, train_step

console = Console(width=120)
OUT = Path(__file__).resolve().parent / "out"
DATASET = "bench"


def build_dataset(store: ObjectStore, bus: EventBus, sessions: int, seconds: float, tmp: Path) -> int:
    """Synthetic sessions through the processor's real pipeline into the clean bucket; returns frames written."""
    worker = SessionWorker(store, bus, WorkerSettings(dataset=DATASET, unknown_worlds="accept"), "clean")  # synthetic sessions
    frames = 0
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"processor: {sessions} sessions of {seconds:.0f} s", total=sessions)
        for i in range(sessions):
            session_id = f"b{uuid.uuid4().hex[:8]}"
            script = synthetic.weave_script(period_s=2.0 + i % 3, phase=0.7 * i)
            path = tmp / f"{session_id}.webm"
            synthetic.write_vp8_webm(path, seconds=seconds, fps=30, width=640, height=360, seed=i, script=script)
            telemetry = synthetic.make_telemetry(session_id, seconds=seconds + 0.5, script=script)
            store.put_bytes("raw", keys.video_key("bench", session_id), path.read_bytes())
            store.put_bytes("raw", keys.telemetry_key("bench", session_id), telemetry.SerializeToString())
            report = worker.process(events_pb2.SessionUploaded(
                session_id=session_id, player_id="bench", bucket="raw", video_key=keys.video_key("bench", session_id),
                telemetry_key=keys.telemetry_key("bench", session_id), attempt=1))
            frames += sum(s.frame_count for s in report.segments)
            bar.advance(task)
    worker.close()
    return frames


def timed_steps(model, optimizer, batches, config: TrainConfig, warmup: int) -> tuple[float, int]:
    """Seconds and samples for the steps after `warmup` (the first steps pay for allocator and worker start-up)."""
    generator = torch.Generator().manual_seed(0)
    device = torch.device("cpu")
    samples, t0 = 0, None
    for i, batch in enumerate(batches):
        if i == warmup:
            t0 = time.perf_counter()
        train_step(model, optimizer, batch, config, model.config.speed_scale, generator, device)
        if t0 is not None:
            samples += len(batch[0])
    return time.perf_counter() - t0, samples


def compare(preset_name: str, frames: data.CilrsFrames, steps: int, batch_size: int, workers: int) -> dict:
    config = TrainConfig(preset=preset_name, batch_size=batch_size, num_workers=workers)
    warmup = 2
    torch.manual_seed(0)
    model = build_model(preset(preset_name))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)

    def real_batches():
        epoch = 0
        taken = 0
        while True:
            for batch in _loader(frames, config, True, epoch, Distributed()):
                yield batch
                taken += 1
                if taken == steps + warmup:
                    return
            epoch += 1

    real_s, real_n = timed_steps(model, optimizer, real_batches(), config, warmup)
    height, width = model.config.input_hw
    g = torch.Generator().manual_seed(1)
    bare = [(torch.randint(0, 256, (batch_size, 3, height, width), dtype=torch.uint8, generator=g),
             torch.rand(batch_size, 1, generator=g) * 10, torch.randint(1, 5, (batch_size,), generator=g),
             torch.rand(batch_size, 3, generator=g)) for _ in range(steps + warmup)]
    bare_s, bare_n = timed_steps(model, optimizer, bare, config, warmup)
    return {"preset": preset_name, "workers": workers, "real": real_n / real_s, "bare": bare_n / bare_s}


def plot(rows: list[dict], path: Path, batch_size: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['preset'].removeprefix('cilrs-')}\nworkers={r['workers']}" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * len(rows)), 4))
    ax.bar([i - 0.2 for i in x], [r["real"] for r in rows], 0.4, label="real data path (S3 -> cache -> DataLoader)")
    ax.bar([i + 0.2 for i in x], [r["bare"] for r in rows], 0.4, label="in-memory tensors")
    for i, r in zip(x, rows):
        ax.text(i, max(r["real"], r["bare"]) * 1.02, f"{r['real'] / r['bare']:.2f}", ha="center")
    ax.set_xticks(list(x), labels)
    ax.set_yscale("log")
    ax.set_ylabel(f"training samples/s (batch {batch_size}, log)")
    ax.set_title("trainer: data path vs bare loop (ratio above the bars)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", default="cilrs-resnet18-tiny,cilrs-resnet18-128")
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=30, help="timed optimiser steps per side")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", default="0,2", help="DataLoader worker counts to compare")
    parser.add_argument("--plot", default=str(OUT / "trainer_bench.png"))
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} intra-op threads, CUDA: {torch.cuda.is_available()}")
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalStack(Path(tmp), free_layout(), services=(), extra_env={"SD_LOG_LEVEL": "WARNING"})
        try:
            state = local.up()
            store = ObjectStore(local.s3_settings(state))
            bus = EventBus(local.kafka_settings(state), client_id="bench")
            written = build_dataset(store, bus, args.sessions, args.seconds, Path(tmp))
            entries = list(datasets.iter_index(store, "clean", DATASET))
            rows, cache_rows = [], []
            for preset_name in args.presets.split(","):
                cache = data.FrameCache(store, Path(tmp) / "cache", preset(preset_name).input_hw)
                t0 = time.perf_counter()
                segments = cache.fetch_all(entries)
                fetch_s = time.perf_counter() - t0
                frames = data.CilrsFrames(segments)
                cache_rows.append((preset_name, len(frames), fetch_s))
                for workers in (int(w) for w in args.workers.split(",")):
                    with console.status(f"{preset_name}, {workers} DataLoader workers"):
                        rows.append(compare(preset_name, frames, args.steps, args.batch_size, workers))
            bus.close()
        finally:
            local.down()

    console.print(f"dataset: {args.sessions} sessions x {args.seconds:.0f} s through the processor -> {written} frames in S3")
    table = Table(title="new dataset: S3 fetch + JPEG decode into the local cache (once per dataset and input size)")
    for col in ("preset", "frames", "seconds", "frames/s"):
        table.add_column(col, justify="right")
    for name, n, s in cache_rows:
        table.add_row(name, str(n), f"{s:.2f}", f"{n / s:.0f}")
    console.print(table)
    table = Table(title=f"training samples/s, batch {args.batch_size}, {args.steps} timed steps per side")
    for col in ("preset", "loader workers", "real data path", "in-memory tensors", "ratio real/bare"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["preset"], str(r["workers"]), f"{r['real']:.1f}", f"{r['bare']:.1f}", f"{r['real'] / r['bare']:.2f}")
    console.print(table)
    plot(rows, Path(args.plot), args.batch_size)
    console.print(f"plot: {args.plot}")
    for r in rows:
        print(f"ratio real/bare {r['preset']} workers={r['workers']}: {r['real'] / r['bare']:.2f} (goal >= 0.85)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
