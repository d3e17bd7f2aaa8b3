"""What the replay check, the video check and the labels by replay cost the processor, on one bot session.

Prints, measured side by side in one run (alternating, best of `--repeats` each):
- the whole SessionWorker on the session as recorded (its world is known: the replay check, the light labels, the
  video check and the semantic / depth / box labels all run); the same with the two re-rendering parts switched off;
  and the same session under an unknown world id (none runs); with the ratios;
- the pure parts alone: replay_check over every tick and the light labels of every output frame, in ms per minute
  of session.

    python bench/replay_bench.py                 # a 60 s 640x360 30 fps bot session (~2 min)
    python bench/replay_bench.py --seconds 20
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from scalediffusion.city.catalog import get_world
from scalediffusion.platform import keys
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.sim.bots import BotConfig, play_session
from scalediffusion.stack.layout import free_layout
from scalediffusion.stack.local import LocalStack
from scalediffusion.v1 import events_pb2, telemetry_pb2
from services.processor.lights import LightLabeler, LightSettings
from services.processor.replay import ReplaySettings, replay_check
from services.processor.videocheck import VideoCheckSettings
from services.processor.worker import SessionWorker, WorkerSettings

console = Console(width=120)


def put_session(store: ObjectStore, video: bytes, telemetry: telemetry_pb2.Telemetry) -> events_pb2.SessionUploaded:
    session_id = "bench" + uuid.uuid4().hex[:12]
    store.put_bytes("raw", keys.video_key("bench", session_id), video)
    store.put_bytes("raw", keys.telemetry_key("bench", session_id), telemetry.SerializeToString())
    return events_pb2.SessionUploaded(session_id=session_id, player_id="bench", bucket="raw", attempt=1,
                                      video_key=keys.video_key("bench", session_id),
                                      telemetry_key=keys.telemetry_key("bench", session_id))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the bot session")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each variant (best is kept)")
    args = parser.parse_args(argv)
    with console.status("recording a bot session"):
        bot = play_session(7, BotConfig(seconds=args.seconds, width=640, height=360, fps=30.0))
    telemetry = bot.telemetry
    unknown = telemetry_pb2.Telemetry()
    unknown.CopyFrom(telemetry)
    unknown.world_id = "bench-unknown-world"  # no world: no replay, no labels; everything else the same
    minutes = args.seconds / 60.0

    world = get_world(telemetry.world_id)
    t0 = time.perf_counter()
    replayed = replay_check(telemetry, world, ReplaySettings())
    replay_s = time.perf_counter() - t0
    labeler = LightLabeler.for_session(telemetry, LightSettings())
    assert labeler is not None
    frames = telemetry.ticks[::6]  # the processor's 10 Hz output of 60 Hz ticks
    t0 = time.perf_counter()
    for tick in frames:
        labeler.label(tick.vehicle.x, tick.vehicle.y, tick.vehicle.theta, tick.t_ms)
    labels_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="sd-replay-bench-") as tmp:
        local = LocalStack(Path(tmp), free_layout(), services=(), extra_env={"SD_LOG_LEVEL": "WARNING"})
        with console.status("starting S3 and the broker"):
            state = local.up()
        try:
            store = ObjectStore(local.s3_settings(state))
            bus = EventBus(local.kafka_settings(state), client_id="bench")
            full = SessionWorker(store, bus, WorkerSettings(dataset="bench", plot=False, unknown_worlds="accept"), "clean")
            no_render = SessionWorker(store, bus, WorkerSettings(dataset="bench", plot=False, replay_labels=False,
                                                                 video=VideoCheckSettings(enabled=False)), "clean")
            variants = (("with", full, telemetry), ("no_render", no_render, telemetry), ("without", full, unknown))
            runs: dict[str, list[float]] = {name: [] for name, _, _ in variants}
            for _ in range(args.repeats):
                for name, worker, tel in variants:
                    message = put_session(store, bot.video, tel)
                    with console.status(f"processing ({name})"):
                        t0 = time.perf_counter()
                        report = worker.process(message)
                        runs[name].append(time.perf_counter() - t0)
                    if not report.segments:
                        raise SystemExit(f"the bench session was rejected: {list(report.rejections)}")
            full.close()
            no_render.close()
        finally:
            local.down()

    with_s, no_render_s, without_s = min(runs["with"]), min(runs["no_render"]), min(runs["without"])
    table = Table(title=f"Replay, video check and labels on one {args.seconds:.0f} s 640x360 30 fps bot session "
                        f"({len(telemetry.ticks)} ticks, {replayed.checked} replayed, {len(frames)} frames labelled)")
    table.add_column("what")
    table.add_column("seconds", justify="right")
    table.add_column("ms per minute of session", justify="right")
    table.add_row("replay_check alone", f"{replay_s:.3f}", f"{1000 * replay_s / minutes:.0f}")
    table.add_row("light labels alone (10 Hz)", f"{labels_s:.3f}", f"{1000 * labels_s / minutes:.0f}")
    table.add_row("processor, world known: everything", f"{with_s:.2f}", f"{1000 * with_s / minutes:.0f}")
    table.add_row("processor, world known, no video check or replay labels", f"{no_render_s:.2f}", f"{1000 * no_render_s / minutes:.0f}")
    table.add_row("processor, world unknown (none of them)", f"{without_s:.2f}", f"{1000 * without_s / minutes:.0f}")
    console.print(table)
    console.print(f"ratio everything / none = {with_s / without_s:.3f}; video check + replay labels / without them = "
                  f"{with_s / no_render_s:.3f}; replay divergent ticks: {replayed.divergent}, "
                  f"max position error {replayed.max_position_error_m:.2e} m")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
