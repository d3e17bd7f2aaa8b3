"""The diffusion service's stream bookkeeping and frame pump, run with a small deterministic engine (colour
inversion) so the scheduling, dropping and resolution of waiting calls are what is tested."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from scalediffusion.v1 import diffusion_pb2
from services.diffusion.engine.scheduler import BatchCostModel, FrameScheduler
from services.diffusion.pump import FramePump
from services.diffusion.streams import StreamError, StreamRegistry, normalise_config


def test_configs_get_defaults_and_clamps():
    config = normalise_config(diffusion_pb2.StreamConfig(width=5000, height=100, steps=9, strength=3.0, seed=7))
    assert (config.style, config.width, config.height, config.steps, config.strength, config.seed) == ("photoreal-day", 1024, 96, 4, 1.0, 7)
    assert normalise_config(diffusion_pb2.StreamConfig()).width == 256 and normalise_config(diffusion_pb2.StreamConfig()).seed > 0
    with pytest.raises(StreamError, match="unknown style") as info:
        normalise_config(diffusion_pb2.StreamConfig(style="cartoon"))
    assert info.value.code == "INVALID_ARGUMENT"


def test_the_registry_limits_streams_and_evicts_idle_ones():
    registry = StreamRegistry(max_streams=2, idle_timeout_s=10.0)
    a = registry.open(normalise_config(diffusion_pb2.StreamConfig()), now=0.0)
    b = registry.open(normalise_config(diffusion_pb2.StreamConfig()), now=0.0)
    with pytest.raises(StreamError) as info:
        registry.open(normalise_config(diffusion_pb2.StreamConfig()), now=0.0)
    assert info.value.code == "RESOURCE_EXHAUSTED"
    registry.get(a.stream_id, now=8.0)
    b.in_flight = 1  # a frame in flight keeps a stream alive
    assert registry.evict_idle(now=12.0) == []
    b.in_flight = 0
    assert [s.stream_id for s in registry.evict_idle(now=12.0)] == [b.stream_id]
    assert [s.stream_id for s in registry.evict_idle(now=19.0)] == [a.stream_id]
    with pytest.raises(StreamError) as info:
        registry.get(a.stream_id, now=20.0)
    assert info.value.code == "NOT_FOUND"


class InvertEngine:
    """Inverts colours; records batch sizes; can be slowed down to build a queue."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s, self.batches, self.lock = delay_s, [], threading.Lock()

    def new_stream(self, config):
        return {"config": config}

    def transform(self, batch):
        with self.lock:
            self.batches.append(len(batch))
        time.sleep(self.delay_s)
        return [(255 - image, 0.5) for _, image in batch]


def test_frames_of_many_streams_are_batched_and_answered():
    async def run():
        engine = InvertEngine(delay_s=0.02)
        pump = FramePump(engine, FrameScheduler(max_batch=4), latency_target_s=5.0)
        pump.start()
        image = np.full((8, 8, 3), 10, np.uint8)
        results = await asyncio.gather(*[pump.submit(f"s{k}", {}, 0, image) for k in range(6)])
        await pump.stop()
        return engine, results

    engine, results = asyncio.run(run())
    assert all(r.image is not None and int(r.image[0, 0, 0]) == 245 and r.strength == 0.5 for r in results)
    assert sum(engine.batches) == 6 and max(engine.batches) <= 4 and len(engine.batches) < 6  # batched, bounded


def test_a_newer_frame_supersedes_the_waiting_one_and_stale_frames_are_dropped():
    async def run():
        engine = InvertEngine(delay_s=0.05)
        pump = FramePump(engine, FrameScheduler(max_batch=1, cost=BatchCostModel()), latency_target_s=0.03)
        pump.start()
        image = np.zeros((4, 4, 3), np.uint8)
        blocker = asyncio.create_task(pump.submit("busy", {}, 0, image))  # occupies the engine for 50 ms
        await asyncio.sleep(0.005)
        first = asyncio.create_task(pump.submit("s", {}, 1, image))
        await asyncio.sleep(0.001)
        second = asyncio.create_task(pump.submit("s", {}, 2, image))
        results = await asyncio.gather(blocker, first, second)
        await pump.stop()
        return results

    blocker, first, second = asyncio.run(run())
    assert blocker.image is not None
    assert first.image is None and first.dropped_reason == "superseded"
    assert second.image is None and second.dropped_reason in ("stale", "unmeetable")  # 30 ms target, 50 ms batches
