"""Ingest benchmark: StartSession / CompleteSession latency under concurrency, and upload throughput through the
presigned POST targets vs a direct S3 PUT of the same bytes. Starts its own S3 + broker + ingest (nothing else),
on free ports, in a temp folder.

    python bench/ingest_bench.py                      # 1, 50 and 200 concurrent clients
    python bench/ingest_bench.py --clients 1 10 --rounds 2 --upload-mb 8 --plot out.png

Every CompleteSession does the real work: stat the objects, read and hash the video and telemetry, parse and check
the telemetry, probe the WebM, claim the duplicate index, write the manifest, publish sessions.uploaded.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from scalediffusion import synthetic
from scalediffusion.stack.layout import free_layout
from scalediffusion.stack.local import LocalStack
from scalediffusion.uploader import upload_to_target
from scalediffusion.v1 import ingest_pb2, ingest_pb2_grpc
from services.ingest.auth import PLAYER, TokenSigner

console = Console(width=120)


@dataclass
class Latencies:
    start: list[float] = field(default_factory=list)
    complete: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] * 1000


async def client(stub, token: str, video: bytes, telemetry: bytes, rounds: int, salt: str, out: Latencies, progress) -> None:
    metadata = (("authorization", f"Bearer {token}"),)
    for r in range(rounds):
        unique = video + b"\xec" + bytes([0x80 | len(f"{salt}-{r}")]) + f"{salt}-{r}".encode()  # EBML Void: new bytes, same video
        t0 = time.perf_counter()
        try:
            started = await stub.StartSession(ingest_pb2.StartSessionRequest(expected_video_bytes=len(unique)), metadata=metadata)
            out.start.append(time.perf_counter() - t0)
            data = {ingest_pb2.UPLOAD_KIND_VIDEO: unique, ingest_pb2.UPLOAD_KIND_TELEMETRY: telemetry}
            await asyncio.gather(*(asyncio.to_thread(upload_to_target, t, data[t.kind]) for t in started.targets))
            objects = [
                ingest_pb2.UploadedObject(kind=k, size_bytes=len(v), sha256=hashlib.sha256(v).hexdigest()) for k, v in data.items()
            ]
            t1 = time.perf_counter()
            reply = await stub.CompleteSession(ingest_pb2.CompleteSessionRequest(session_id=started.session_id, objects=objects), metadata=metadata)
            out.complete.append(time.perf_counter() - t1)
            if reply.session.state != ingest_pb2.SESSION_STATE_UPLOADED:
                out.errors.append(f"state {ingest_pb2.SessionState.Name(reply.session.state)} {list(reply.session.rejection_reasons)}")
        except grpc.aio.AioRpcError as err:
            out.errors.append(f"{err.code().name}: {err.details()}")
        progress()


async def run_level(address: str, key: bytes, clients: int, rounds: int, video: bytes, telemetry: bytes, level_tag: str) -> tuple[Latencies, float]:
    signer = TokenSigner(key)
    out = Latencies()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"{clients} clients", total=clients * rounds)
            tokens = [signer.issue(f"bench-{level_tag}-{i}", PLAYER, 3600, time.time())[0] for i in range(clients)]
            t0 = time.perf_counter()
            await asyncio.gather(
                *(client(stub, tokens[i], video, telemetry, rounds, f"{level_tag}-{i}", out, lambda: bar.advance(task)) for i in range(clients))
            )
            wall = time.perf_counter() - t0
    return out, wall


def upload_throughput(local: LocalStack, address: str, key: bytes, megabytes: int, repeats: int) -> tuple[float, float]:
    """MB/s through presigned POST targets vs a direct S3 PUT (minio put_object) of the same bytes, interleaved."""
    state = local.load()
    store = __import__("scalediffusion.platform.s3", fromlist=["ObjectStore"]).ObjectStore(local.s3_settings(state))
    blob = os.urandom(megabytes * 1024 * 1024)
    signer = TokenSigner(key)
    post_s, put_s = [], []
    with grpc.insecure_channel(address) as channel:
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        for i in range(repeats):
            token = signer.issue(f"bench-upload-{i}", PLAYER, 3600, time.time())[0]  # one player each: the open-session limit
            started = stub.StartSession(ingest_pb2.StartSessionRequest(), metadata=(("authorization", f"Bearer {token}"),))
            target = next(t for t in started.targets if t.kind == ingest_pb2.UPLOAD_KIND_VIDEO)
            t0 = time.perf_counter()
            upload_to_target(target, blob)
            post_s.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            store.client.put_object("raw", f"bench-direct/{i}.bin", io.BytesIO(blob), len(blob), part_size=64 * 1024 * 1024)
            put_s.append(time.perf_counter() - t0)
            store.client.remove_object("raw", target.key)
            store.client.remove_object("raw", f"bench-direct/{i}.bin")
    return megabytes / statistics.median(post_s), megabytes / statistics.median(put_s)


def plot(rows: list[tuple[int, float, float, float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(r[0]) for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.2
    for offset, idx, name in ((-1.5, 1, "StartSession p50"), (-0.5, 2, "StartSession p99"), (0.5, 3, "CompleteSession p50"), (1.5, 4, "CompleteSession p99")):
        ax.bar([i + offset * width for i in x], [r[idx] for r in rows], width, label=name)
    ax.set_xticks(list(x), labels)
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title("Ingest RPC latency (one ingest process, 2 cores)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--rounds", type=int, default=3, help="sessions per client at each level (<= the per-player open limit)")
    parser.add_argument("--upload-mb", type=int, default=32)
    parser.add_argument("--upload-repeats", type=int, default=5)
    parser.add_argument("--plot", default="bench/out/ingest_bench.png")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="sd-ingest-bench-") as tmp:
        local = LocalStack(Path(tmp), free_layout(), services=("ingest",), extra_env={"SD_LOG_LEVEL": "WARNING", "SD_INGEST_MAX_SESSIONS_PER_HOUR": "100000"})
        with console.status("starting S3, broker and ingest"):
            state = local.up()
        try:
            address = f"127.0.0.1:{state.layout.services['ingest'].grpc}"
            key = state.credentials["token_key"].encode()
            path = Path(tmp) / "v.webm"
            synthetic.write_vp8_webm(path, seconds=3.0, fps=15, width=320, height=180)
            video = path.read_bytes()
            telemetry = synthetic.make_telemetry("", seconds=3.0, video_fps=15, width=320, height=180).SerializeToString()
            console.print(f"session: {len(video) / 1024:.0f} KiB VP8 webm + {len(telemetry) / 1024:.0f} KiB telemetry; {args.rounds} sessions per client")
            rows = []
            for clients in args.clients:
                out, wall = asyncio.run(run_level(address, key, clients, args.rounds, video, telemetry, f"c{clients}"))
                done = len(out.complete)
                rows.append((clients, pct(out.start, 50), pct(out.start, 99), pct(out.complete, 50), pct(out.complete, 99), done / wall, len(out.errors)))
                if out.errors:
                    console.print(f"[red]{len(out.errors)} errors at {clients} clients, e.g. {out.errors[0]}")
            table = Table(title="Ingest RPC latency (ms) — one ingest process")
            for col in ("clients", "Start p50", "Start p99", "Complete p50", "Complete p99", "sessions/s", "errors"):
                table.add_column(col, justify="right")
            for r in rows:
                table.add_row(str(r[0]), *(f"{v:.1f}" for v in r[1:6]), str(r[6]))
            console.print(table)
            base = rows[0]
            for r in rows[1:]:
                console.print(f"p50 ratio vs {base[0]} client(s) at {r[0]}: StartSession {r[1] / base[1]:.2f}x, CompleteSession {r[3] / base[3]:.2f}x; throughput {r[5] / base[5]:.2f}x")
            with console.status(f"upload throughput, {args.upload_mb} MB x {args.upload_repeats}"):
                post_mbs, put_mbs = upload_throughput(local, address, key, args.upload_mb, args.upload_repeats)
            console.print(
                f"upload {args.upload_mb} MB: presigned POST target {post_mbs:.0f} MB/s, direct S3 PUT {put_mbs:.0f} MB/s, "
                f"ratio POST/PUT = {post_mbs / put_mbs:.2f}"
            )
            Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
            plot([r[:5] for r in rows], Path(args.plot))
            console.print(f"plot: {args.plot}")
        finally:
            local.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
