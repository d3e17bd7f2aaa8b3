"""The frame pump: frames from every stream in, batched forwards of the engine out, within each frame's deadline.

TransformFrame (and each message of Stream) submits a frame and awaits its result; one loop takes batches from the
SLO-aware scheduler (engine/scheduler.py), runs them on the engine in a worker thread (the model holds the GIL only
between kernels), and resolves the waiting calls — with the repainted frame, or `dropped` when the frame could not
make its deadline (a newer frame of the stream superseded it, or it went stale). Nothing queues without bound.

The engine is anything with
    new_stream(config) -> state                               # per-stream caches, motion history, generator
    transform(batch: list[(state, rgb uint8 [H, W, 3])]) -> list[(rgb uint8 [H, W, 3], strength)]
"""

from __future__ import annotations

import asyncio
import time
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


class FramePump:
    def __init__(self, engine, scheduler: FrameScheduler, latency_target_s: float) -> None:
        self.engine, self.scheduler, self.latency_target_s = engine, scheduler, latency_target_s
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
        work = work_of(image.shape[1], image.shape[0])
        for dropped in self.scheduler.submit(FrameRequest(stream_id, seq, now, now + self.latency_target_s, image, work)):
            self._resolve_dropped(dropped.request, dropped.reason)
        QUEUED.set(self.scheduler.queued)
        self._wake.set()
        return await future

    def forget(self, stream_id: str) -> None:
        for request in self.scheduler.close_stream(stream_id):
            self._resolve_dropped(request, "closed")
        self._states.pop(stream_id, None)

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
                outputs = await asyncio.to_thread(self.engine.transform, items)
            except Exception:  # the engine failed this batch: its callers get an error, the pump goes on
                for request in batch:
                    future = self._waiting.pop((request.stream_id, request.frame_id), None)
                    if future is not None and not future.done():
                        future.set_exception(RuntimeError("the diffusion engine failed on this frame"))
                continue
            finished = time.monotonic()
            self.scheduler.observe_batch(len(batch), finished - started, sum(r.work for r in batch))
            BATCH_SIZE.observe(len(batch))
            for request, (image, strength) in zip(batch, outputs):
                FRAMES.labels("transformed").inc()
                FRAME_SECONDS.observe(finished - request.arrival_s)
                future = self._waiting.pop((request.stream_id, request.frame_id), None)
                if future is not None and not future.done():
                    future.set_result(FrameResult(image, float(strength), finished - request.arrival_s))
