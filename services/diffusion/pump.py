"""The frame pump: frames from every stream in, batched forwards of the engine out, within each frame's deadline.

TransformFrame (and each message of Stream) submits a frame and awaits its result; one loop takes batches from the
SLO-aware scheduler (engine/scheduler.py), runs them on the engine in a worker thread (the model holds the GIL only
between kernels), and resolves the waiting calls — with the repainted frame, or `dropped` when the frame could not
make its deadline (a newer frame of the stream superseded it, or it went stale). Nothing queues without bound.

The engine is anything with
    new_stream(config) -> state                               # per-stream caches, motion history, generator
    transform(batch: list[(state, rgb uint8 [H, W, 3])]) -> list[(rgb uint8 [H, W, 3], strength)]
and, for the stream batch (stream_batch=True, a GPU replica's option: SD_DIFFUSION_STREAM_BATCH),
    transform_pipelined(state, rgb) -> rgb | None             # the frame that finished, k - 1 calls after it came
With the stream batch a frame's call is answered with the frame of its stream that finished on it — an earlier one,
named by FrameResult.seq — or, while the stream's pipeline fills, `dropped` with reason "filling".
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

from services.diffusion.admission import work_of
from services.diffusion.engine.scheduler import FrameRequest, FrameScheduler

FRAMES = Counter("sd_diffusion_frames_total", "Frames by outcome (transformed, superseded, stale, unmeetable)", ["outcome"])
BATCH_SIZE = Histogram("sd_diffusion_batch_size", "Frames per batched forward", buckets=(1, 2, 3, 4, 6, 8, 12, 16))
FRAME_SECONDS = Histogram("sd_diffusion_frame_seconds", "From submission to result, per transformed frame",
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0, 2.0, 5.0))
QUEUED = Gauge("sd_diffusion_queued_frames", "Frames waiting for a batch")


@dataclass
class FrameResult:
    image: np.ndarray | None  # None when dropped
    strength: float
    server_s: float
    dropped_reason: str = ""
    seq: int | None = None  # the frame the image is of, when not the one submitted (stream batch)


class FramePump:
    def __init__(self, engine, scheduler: FrameScheduler, latency_target_s: float, stream_batch: bool = False,
                 frame_overhead: float = 0.0) -> None:
        self.engine, self.scheduler, self.latency_target_s = engine, scheduler, latency_target_s
        self.frame_overhead = frame_overhead  # units of work per frame on top of its pixels (admission.py)
        self.stream_batch = stream_batch
        # Stream batch: per stream, the engine state its frames went into and their seqs in flight, oldest first
        # (a resized stream gets a new state, whose pipeline starts empty).
        self._in_pipeline: dict[str, tuple[object, deque[int]]] = {}
        self._waiting: dict[tuple[str, int], asyncio.Future] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._states: dict[str, object] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="frame-pump")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for future in self._waiting.values():
            if not future.done():
                future.set_result(FrameResult(None, 0.0, 0.0, "shutdown"))

    async def submit(self, stream_id: str, engine_state: object, seq: int, image: np.ndarray) -> FrameResult:
        now = time.monotonic()
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        key = (stream_id, seq)
        self._waiting[key] = future
        self._states[stream_id] = engine_state
        work = work_of(image.shape[1], image.shape[0]) + self.frame_overhead
        for dropped in self.scheduler.submit(FrameRequest(stream_id, seq, now, now + self.latency_target_s, image, work)):
            self._resolve_dropped(dropped.request, dropped.reason)
        QUEUED.set(self.scheduler.queued)
        self._wake.set()
        return await future

    def forget(self, stream_id: str) -> None:
        for request in self.scheduler.close_stream(stream_id):
            self._resolve_dropped(request, "closed")
        self._states.pop(stream_id, None)
        self._in_pipeline.pop(stream_id, None)

    def _resolve_dropped(self, request: FrameRequest, reason: str) -> None:
        FRAMES.labels(reason).inc()
        future = self._waiting.pop((request.stream_id, request.frame_id), None)
        if future is not None and not future.done():
            future.set_result(FrameResult(None, 0.0, time.monotonic() - request.arrival_s, reason))

    async def _loop(self) -> None:
        while True:
            batch, dropped = self.scheduler.next_batch(time.monotonic())
            for d in dropped:
                self._resolve_dropped(d.request, d.reason)
            QUEUED.set(self.scheduler.queued)
            if not batch:
                self._wake.clear()
                if self.scheduler.queued == 0:
                    await self._wake.wait()
                else:  # frames wait for the running estimate to allow a batch; look again shortly
                    await asyncio.sleep(0.002)
                continue
            items = [(self._states[r.stream_id], r.payload) for r in batch]
            started = time.monotonic()
            try:
                run = self._run_stream_batch if self.stream_batch else self.engine.transform
                outputs = await asyncio.to_thread(run, items)
            except Exception:  # noqa: BLE001 - the engine failed this batch: its callers get an error, the pump goes on
                for request in batch:
                    future = self._waiting.pop((request.stream_id, request.frame_id), None)
                    if future is not None and not future.done():
                        future.set_exception(RuntimeError("the diffusion engine failed on this frame"))
                continue
            finished = time.monotonic()
            self.scheduler.observe_batch(len(batch), finished - started, sum(r.work for r in batch))
            BATCH_SIZE.observe(len(batch))
            for (state, _), request, output in zip(items, batch, outputs):
                image, strength = output[0], output[1]
                future = self._waiting.pop((request.stream_id, request.frame_id), None)
                done_seq = None
                if self.stream_batch:
                    pipeline = self._in_pipeline.get(request.stream_id)
                    if pipeline is not None and pipeline[0] is state:
                        seqs = pipeline[1]
                    else:  # a new stream, or a new state for it: its pipeline starts empty
                        seqs = deque()
                        self._in_pipeline[request.stream_id] = (state, seqs)
                    seqs.append(request.frame_id)
                    if image is None:  # the stream's pipeline is still filling: this frame comes out later
                        FRAMES.labels("filling").inc()
                        if future is not None and not future.done():
                            future.set_result(FrameResult(None, 0.0, finished - request.arrival_s, "filling"))
                        continue
                    done_seq = seqs.popleft()
                FRAMES.labels("transformed").inc()
                FRAME_SECONDS.observe(finished - request.arrival_s)
                if future is not None and not future.done():
                    future.set_result(FrameResult(image, float(strength), finished - request.arrival_s, seq=done_seq))

    def _run_stream_batch(self, items: list) -> list[tuple[np.ndarray | None, float]]:
        """One engine call per stream of the batch, each one batched forward over that stream's frames in flight."""
        return [(self.engine.transform_pipelined(state, rgb), getattr(state, "last_strength", 0.0))
                for state, rgb in items]
