"""Diffusion engine benchmark on this machine's CPU, everything measured side by side in one run, on the shipped
checkpoint (services/diffusion/checkpoints/tiny-city) and a city drive rendered for the run:

- time to first frame: checkpoint load, then the first frame of a fresh stream (cache allocation included), next to
  a steady-state frame;
- one long stream: per-frame latency around frame 50 and around frame 1000 (medians of 21 frames each), ratio; the
  rolling KV cache keeps the attention context fixed, so the goal is a ratio <= 1.1 (plot: latency per frame);
- many streams: aggregate frames/s with 1, 2 and 4 concurrent streams batched in one forward per step, ratio vs 1;
- the CPU path before and after (side by side in this run): per-frame latency at the sizes the service negotiates
  on this machine and aggregate frames/s at 1/2/4 streams, with the VAE on PyTorch, the RoPE tables computed
  every call and the detail taken from a second VAE decode (before) against the VAE on onnxruntime, cached tables,
  the detail from a blur and the full VAE (full VAE), and the same with the checkpoint's fast VAE (after, what
  the service runs on a CPU), and the held-out quality (PSNR/SSIM against the styled renders,
  services/diffusion/train.py's evaluation) of all three;
- rolling cache vs recomputing: the DiT's work per frame (all denoising steps + the cache write) with the cache,
  against recomputing attention for every earlier frame of the stream (no cache, the context grows with the stream)
  at 10 / 25 / 50 frames of history, and against recomputing exactly the cached window (same output, no cache).

    python bench/diffusion_bench.py                     # ~5 min on 2 cores
    python bench/diffusion_bench.py --frames 300 --size 128
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from services.diffusion.engine.checkpoint import DEFAULT_CHECKPOINT, load_engine
from services.diffusion.engine.dataset import generate_clips
from services.diffusion.engine.dit import StreamItem
from services.diffusion.engine.sampler import flow_schedule

console = Console(width=120)
OUT = Path(__file__).resolve().parent / "out"


def drive(frames: int, size: int) -> list[np.ndarray]:
    """A continuous drive through the city (one clip), played forwards then backwards to make any length."""
    clip = list(generate_clips(1, frames, size=size, every_s=0.1, seed=7, styles=("night",))["flat"][0])
    return clip + clip[-2:0:-1]


def frame_at(video: list[np.ndarray], i: int) -> np.ndarray:
    return video[i % len(video)]


def time_to_first_frame(checkpoint: Path, video: list[np.ndarray], steps: int) -> dict:
    t0 = time.perf_counter()
    engine = load_engine(checkpoint)
    loaded = time.perf_counter()
    state = engine.new_stream(style="night", seed=1, steps=steps)
    engine.transform([(state, video[0])])
    first = time.perf_counter()
    steady = []
    for i in range(1, 6):
        t = time.perf_counter()
        engine.transform([(state, video[i])])
        steady.append(time.perf_counter() - t)
    return {"load_s": loaded - t0, "first_frame_s": first - loaded, "steady_frame_s": statistics.median(steady)}


def long_stream(engine, video: list[np.ndarray], frames: int, steps: int, progress) -> list[float]:
    state = engine.new_stream(style="night", seed=2, steps=steps)
    latencies = []
    task = progress.add_task("one stream, frame by frame", total=frames)
    for i in range(frames):
        t = time.perf_counter()
        engine.transform([(state, frame_at(video, i))])
        latencies.append(time.perf_counter() - t)
        progress.update(task, advance=1)
    return latencies


def concurrent_fps(engine, video: list[np.ndarray], streams: int, rounds: int, steps: int) -> float:
    states = [engine.new_stream(style=s % 4, seed=s, steps=steps) for s in range(streams)]
    for state in states:  # warm: caches allocated, first frames done
        engine.transform([(state, video[0])])
    t0 = time.perf_counter()
    for r in range(rounds):
        engine.transform([(state, frame_at(video, r + 7 * s)) for s, state in enumerate(states)])
    return streams * rounds / (time.perf_counter() - t0)


@torch.no_grad()
def dit_cache_vs_recompute(engine, video: list[np.ndarray], histories: list[int], steps: int, reps: int) -> list[dict]:
    """Seconds of DiT work per frame: cached (what the engine does) vs recomputing attention over every earlier
    frame (no cache) vs recomputing over exactly the cached window (no cache, same frames as the cache)."""
    model, vae, config = engine.model, engine.vae, engine.config
    latents = vae.encode(torch.stack([torch.from_numpy(f) for f in video[:max(histories) + 1]]).permute(0, 3, 1, 2)
                         .float() / 127.5 - 1.0)[:, None]  # (N, 1, C, h, w)
    times = flow_schedule(0.7, steps)
    style = 2
    rows = []
    for history in histories:
        cache = model.new_cache(1, latent_hw=tuple(latents.shape[-2:]))
        for i in range(history):  # the stream so far, committed as the engine commits it
            model.forward_items([StreamItem(latents[i:i + 1], config.context_timestep, style, cache, True)])
        current = latents[history:history + 1]

        def cached(current=current, cache=cache) -> None:  # bound now: called in this iteration
            x = current
            for t in times[:-1]:
                model.forward_items([StreamItem(x, t, style, cache, False)])
            model.forward_items([StreamItem(x, config.context_timestep, style, cache, False)])  # the write's cost

        everything = latents[:history + 1].transpose(0, 1)  # (1, history + 1, C, h, w)
        window_ids = list(range(min(history, config.sink_frames))) + list(
            range(max(config.sink_frames, history - config.window_frames), history))
        window = latents[window_ids + [history]].transpose(0, 1)

        def recompute(frames: torch.Tensor) -> None:
            t_frames = torch.zeros(1, frames.shape[1])
            for t in times[:-1]:
                t_frames[0, -1] = t
                model.forward_full(frames, t_frames, style)

        row = {"history": history}
        for name, fn in (("cached", cached), ("recompute_all", lambda everything=everything: recompute(everything)),
                         ("recompute_window", lambda window=window: recompute(window))):
            fn()  # warm
            samples = []
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t0)
            row[name] = statistics.median(samples)
        rows.append(row)
    return rows


def cpu_path(checkpoint: Path, sizes: list[tuple[int, int]], streams_size: tuple[int, int], frames: int,
             rounds: int, quality_clips: int, progress) -> dict:
    """Three engines, each measurement taken for all of them alternately so machine noise hits them alike:
    before     VAE on PyTorch, RoPE tables computed every call, detail from a second VAE decode, the full VAE
               (the CPU path when issue 15 was opened);
    full_vae   VAE on onnxruntime, cached tables, detail from a blur, the full VAE;
    after      the same with the checkpoint's fast VAE (what the service runs on a CPU)."""
    from services.diffusion.engine import rope
    from services.diffusion.engine.dataset import generate_clips as clips
    from services.diffusion.train import evaluate

    engines = {"before": load_engine(checkpoint, vae_runtime="torch", vae_variant="full"),
               "full_vae": load_engine(checkpoint, vae_runtime="onnxruntime", vae_variant="full"),
               "after": load_engine(checkpoint, vae_runtime="onnxruntime", vae_variant="auto")}
    engines["before"].config = engines["before"].config.replace(detail_blur_sigma=0.0)

    def as_before(name: str) -> None:
        rope.CACHE_TABLES = name != "before"

    out: dict = {"latency": [], "concurrency": {}, "quality": {},
                 "after_vae": "fast" if engines["after"].vae.is_fast else "full"}
    base = generate_clips_cached(frames)
    task = progress.add_task("CPU path: latency per size", total=len(sizes))
    for w, h in sizes:
        video = [cv2_resize(f, w, h) for f in base]
        states = {name: e.new_stream(style="photoreal-day", seed=1) for name, e in engines.items()}
        samples: dict[str, list[float]] = {name: [] for name in engines}
        for i in range(frames + 2):
            for name, engine in engines.items():
                as_before(name)
                t0 = time.perf_counter()
                engine.transform([(states[name], video[i % len(video)])])
                if i >= 2:  # first frames allocate caches
                    samples[name].append(time.perf_counter() - t0)
        row = {"size": f"{w}x{h}", **{name: statistics.median(v) for name, v in samples.items()}}
        row["speedup"] = row["before"] / row["after"]
        row["vae_speedup"] = row["full_vae"] / row["after"]
        out["latency"].append(row)
        progress.update(task, advance=1)
    w, h = streams_size
    out["streams_size"] = f"{w}x{h}"
    video = [cv2_resize(f, w, h) for f in base]
    for n in (1, 2, 4):
        row = {}
        for name, engine in engines.items():
            as_before(name)
            row[name] = concurrent_fps(engine, video, n, rounds, engine.config.steps)
        row["speedup"] = row["after"] / row["before"]
        row["vae_speedup"] = row["after"] / row["full_vae"]
        out["concurrency"][str(n)] = row
    held_out = clips(quality_clips, 8, size=256, every_s=0.1, seed=1234)  # not a training seed
    styles = [str(s) for s in held_out["styles"]]
    flat, styled = held_out["flat"], held_out["styled"]
    for name, engine in engines.items():
        as_before(name)
        scores, _ = evaluate(engine, flat, styled, styles)
        out["quality"][name] = {k: v["output"] for k, v in scores.items()}
    rope.CACHE_TABLES = True
    return out


def generate_clips_cached(frames: int) -> list[np.ndarray]:
    return drive(max(frames, 30), 256)


def cv2_resize(frame: np.ndarray, w: int, h: int) -> np.ndarray:
    import cv2

    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)


def plot(latencies: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = np.array(latencies) * 1e3
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(ms, lw=0.6, alpha=0.5, label="per frame")
    width = 25
    if len(ms) > width:
        ax.plot(np.arange(width - 1, len(ms)), np.convolve(ms, np.ones(width) / width, mode="valid"), label="25-frame mean")
    ax.set_xlabel("frame of the stream")
    ax.set_ylabel("latency (ms)")
    ax.set_ylim(0, float(np.percentile(ms, 99.5)) * 1.2)
    ax.set_title("one stream on the CPU: the rolling KV cache keeps per-frame cost flat")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--frames", type=int, default=1010, help="length of the long stream (>= 60)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the checkpoint's)")
    parser.add_argument("--rounds", type=int, default=24, help="batched rounds per concurrency level")
    parser.add_argument("--cpu-sizes", default="176x96,208x112,256x144,336x192,256x256",
                        help="sizes for the CPU path before/after (what the service negotiates here under load and idle)")
    parser.add_argument("--streams-size", default="336x192",
                        help="frame size for the CPU path's 1/2/4-stream rows (what the game is negotiated here)")
    parser.add_argument("--cpu-frames", type=int, default=15, help="frames per size and engine for the CPU path")
    parser.add_argument("--quality-clips", type=int, default=4, help="held-out clips (8 frames, 4 styles) for quality")
    parser.add_argument("--only-cpu-path", action="store_true", help="run only the CPU path before/after")
    args = parser.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    OUT.mkdir(parents=True, exist_ok=True)
    if args.steps is None:
        args.steps = load_engine(args.checkpoint).config.steps
    video = drive(60, args.size)
    result: dict = {"checkpoint": str(args.checkpoint), "size": args.size, "steps": args.steps,
                    "threads": torch.get_num_threads()}
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.cpu_sizes.split(",")]
    with Progress(console=console, transient=True) as progress:
        streams_size = tuple(int(v) for v in args.streams_size.split("x"))
        result["cpu_path"] = cpu_path(args.checkpoint, sizes, streams_size, args.cpu_frames, max(4, args.rounds // 3),
                                      args.quality_clips, progress)
    print_cpu_path(result["cpu_path"])
    if args.only_cpu_path:
        (OUT / "diffusion_cpu_path.json").write_text(json.dumps(result, indent=2))
        console.print(f"wrote {OUT / 'diffusion_cpu_path.json'}")
        return 0

    result["ttff"] = time_to_first_frame(args.checkpoint, video, args.steps)
    engine = load_engine(args.checkpoint)
    with Progress(console=console, transient=True) as progress:
        latencies = long_stream(engine, video, args.frames, args.steps, progress)
    early_i = min(50, args.frames - 11)
    late_i = min(1000, args.frames - 11)
    early = statistics.median(latencies[early_i - 10:early_i + 11])
    late = statistics.median(latencies[late_i - 10:late_i + 11])
    result["long_stream"] = {"frames": args.frames, "early_frame": early_i, "late_frame": late_i,
                             "early_median_s": early, "late_median_s": late, "ratio": late / early}
    plot(latencies, OUT / "diffusion_latency.png")

    fps = {n: concurrent_fps(engine, video, n, args.rounds, args.steps) for n in (1, 2, 4)}
    result["concurrency"] = {str(n): {"fps": f, "ratio_vs_1": f / fps[1]} for n, f in fps.items()}
    result["cache_vs_recompute"] = dit_cache_vs_recompute(engine, video, [10, 25, 50], args.steps, reps=3)

    t = result["ttff"]
    table = Table(title=f"diffusion engine, {args.size}x{args.size}, {args.steps} steps, CPU ({result['threads']} threads), "
                        f"checkpoint {args.checkpoint.name}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("checkpoint load", f"{t['load_s'] * 1e3:.0f} ms", "")
    table.add_row("time to first frame (after load)", f"{t['first_frame_s'] * 1e3:.0f} ms",
                  f"{t['first_frame_s'] / t['steady_frame_s']:.2f} x steady")
    table.add_row("steady frame", f"{t['steady_frame_s'] * 1e3:.0f} ms", "")
    ls = result["long_stream"]
    table.add_row(f"latency at frame {ls['early_frame']} (median of 21)", f"{early * 1e3:.1f} ms", "")
    table.add_row(f"latency at frame {ls['late_frame']} (median of 21)", f"{late * 1e3:.1f} ms",
                  f"{ls['ratio']:.3f} (goal <= 1.1)")
    for n, row in result["concurrency"].items():
        table.add_row(f"aggregate frames/s, {n} stream(s)", f"{row['fps']:.2f}", f"{row['ratio_vs_1']:.2f} x 1 stream")
    for row in result["cache_vs_recompute"]:
        table.add_row(f"DiT per frame, {row['history']} frames of history: cached", f"{row['cached'] * 1e3:.1f} ms", "")
        table.add_row("   recompute every earlier frame (no cache)", f"{row['recompute_all'] * 1e3:.1f} ms",
                      f"{row['recompute_all'] / row['cached']:.2f} x cached")
        table.add_row("   recompute the cached window (no cache)", f"{row['recompute_window'] * 1e3:.1f} ms",
                      f"{row['recompute_window'] / row['cached']:.2f} x cached")
    console.print(table)
    (OUT / "diffusion_bench.json").write_text(json.dumps(result, indent=2))
    console.print(f"wrote {OUT / 'diffusion_bench.json'} and {OUT / 'diffusion_latency.png'}")
    return 0


def print_cpu_path(cpu: dict) -> None:
    table = Table(title="CPU path, side by side: before = VAE on PyTorch + RoPE tables per call + detail from a VAE "
                        "decode; full VAE = VAE on onnxruntime + cached tables + detail from a blur; after = the "
                        f"same with the {cpu['after_vae']} VAE (the service's CPU default)")
    for col in ("measure", "before", "full VAE", "after", "after vs before", "after vs full VAE"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    for row in cpu["latency"]:
        table.add_row(f"latency per frame, {row['size']} (median)", f"{row['before'] * 1e3:.1f} ms",
                      f"{row['full_vae'] * 1e3:.1f} ms", f"{row['after'] * 1e3:.1f} ms",
                      f"{row['speedup']:.2f} x faster", f"{row['vae_speedup']:.2f} x faster")
    size = cpu["streams_size"]
    for n, row in cpu["concurrency"].items():
        table.add_row(f"aggregate frames/s, {n} stream(s) at {size}", f"{row['before']:.2f}", f"{row['full_vae']:.2f}",
                      f"{row['after']:.2f}", f"{row['speedup']:.2f} x", f"{row['vae_speedup']:.2f} x")
    for style in cpu["quality"]["before"]:
        b, f, a = (cpu["quality"][name][style] for name in ("before", "full_vae", "after"))
        table.add_row(f"held-out quality, {style}: PSNR dB / SSIM", f"{b['psnr']:.2f} / {b['ssim']:.4f}",
                      f"{f['psnr']:.2f} / {f['ssim']:.4f}", f"{a['psnr']:.2f} / {a['ssim']:.4f}",
                      f"{a['psnr'] - b['psnr']:+.2f} dB", f"{a['psnr'] - f['psnr']:+.2f} dB")
    console.print(table)


if __name__ == "__main__":
    raise SystemExit(main())
