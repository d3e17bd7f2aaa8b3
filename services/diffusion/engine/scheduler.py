"""SLO-aware batching of many players' frames: which frames go into the next batched forward, and which are dropped.

A game frame is only useful while it is fresh: a repainted frame that arrives after its deadline is worse than none
(the game shows the raw render instead). So the scheduler
- keeps at most `max_queued_per_stream` frames per stream, newest wins (a backlog is stale by construction; the
  queue can never grow without bound, whatever the offered load);
- serves earliest deadline first across streams, one frame per stream per batch (a stream never starves others);
- sizes each batch to the largest that, by the measured cost model, finishes before the earliest deadline in it;
- drops, with a reason, frames whose deadline has passed or cannot be met even alone.
Frames carry their `work` (the pump uses pixels / 256^2), so streams of different resolutions share one cost model.
A cost model only learns from batches that run, so each "unmeetable" drop relaxes it a little: a machine that got
slow for a while (or a too-pessimistic estimate) is re-measured by the next frame that is let through, instead of
every frame being refused forever on a stale estimate.
Pure: time is passed in; the service measures batch durations and feeds them back (`observe_batch`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

STALE = "stale"  # its deadline passed while queued
SUPERSEDED = "superseded"  # a newer frame of the same stream replaced it
UNMEETABLE = "unmeetable"  # even a batch of one would finish after its deadline


@dataclass(frozen=True)
class FrameRequest:
    stream_id: str
    frame_id: int
    arrival_s: float
    deadline_s: float
    payload: object = None
    work: float = 1.0  # relative cost of this frame (e.g. its pixels over a reference frame's)


@dataclass(frozen=True)
class Dropped:
    request: FrameRequest
    reason: str


@dataclass
class BatchCostModel:
    """Seconds for a batch of n frames holding `work` units (default: one per frame): measured seconds per unit for
    batches of that size (exponential moving average), else fixed + per_item * work. The prior defaults to 0 —
    optimistic until the first batches are measured — so a slow machine is never judged unable to serve before it
    has tried."""

    fixed_s: float = 0.0
    per_item_s: float = 0.0
    smoothing: float = 0.2
    relax_factor: float = 0.7  # applied to every measured size per unmeetable drop
    _by_size: dict[int, float] = field(default_factory=dict)  # seconds per unit of work

    def estimate(self, n: int, work: float | None = None) -> float:
        work = float(n) if work is None else work
        per_unit = self._by_size.get(n)
        return self.fixed_s + self.per_item_s * work if per_unit is None else per_unit * work

    def observe(self, n: int, seconds: float, work: float | None = None) -> None:
        per_unit = seconds / (float(n) if work is None else max(work, 1e-9))
        old = self._by_size.get(n)
        self._by_size[n] = per_unit if old is None else old + self.smoothing * (per_unit - old)

    def seconds_per_unit(self) -> float | None:
        """What one unit of work costs when it runs alone (None before anything was measured): a batch of one's
        measured cost, else the dearest measured batch size's (a conservative stand-in), else the prior."""
        if 1 in self._by_size:
            return self._by_size[1]
        if self._by_size:
            return max(self._by_size.values())
        return self.fixed_s + self.per_item_s if self.fixed_s + self.per_item_s > 0 else None

    def relax(self) -> None:
        for n in self._by_size:
            self._by_size[n] *= self.relax_factor


class FrameScheduler:
    def __init__(self, max_batch: int = 8, max_queued_per_stream: int = 1, cost: BatchCostModel | None = None) -> None:
        if max_batch < 1 or max_queued_per_stream < 1:
            raise ValueError("max_batch and max_queued_per_stream must be at least 1")
        self.max_batch, self.max_queued = max_batch, max_queued_per_stream
        self.cost = cost or BatchCostModel()
        self.queues: dict[str, deque[FrameRequest]] = {}
        self.dropped: dict[str, int] = {STALE: 0, SUPERSEDED: 0, UNMEETABLE: 0}

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self.queues.values())

    def submit(self, request: FrameRequest) -> list[Dropped]:
        """Queues a frame; returns what it pushed out (older frames of its stream beyond the per-stream bound)."""
        queue = self.queues.setdefault(request.stream_id, deque())
        queue.append(request)
        out = []
        while len(queue) > self.max_queued:
            out.append(Dropped(queue.popleft(), SUPERSEDED))
        self._count(out)
        return out

    def close_stream(self, stream_id: str) -> list[FrameRequest]:
        return list(self.queues.pop(stream_id, ()))

    def next_batch(self, now_s: float) -> tuple[list[FrameRequest], list[Dropped]]:
        """The frames to run now (possibly none) and the frames dropped while choosing them."""
        dropped: list[Dropped] = []
        heads: list[FrameRequest] = []
        for stream_id in sorted(self.queues):
            queue = self.queues[stream_id]
            while queue and queue[0].deadline_s <= now_s:
                dropped.append(Dropped(queue.popleft(), STALE))
            while queue and now_s + self.cost.estimate(1, queue[0].work) > queue[0].deadline_s:
                dropped.append(Dropped(queue.popleft(), UNMEETABLE))
                self.cost.relax()
            if queue:
                heads.append(queue[0])
        heads.sort(key=lambda r: (r.deadline_s, r.arrival_s, r.stream_id))
        batch: list[FrameRequest] = []
        for request in heads[: self.max_batch]:
            candidate = batch + [request]
            earliest = min(r.deadline_s for r in candidate)
            if now_s + self.cost.estimate(len(candidate), sum(r.work for r in candidate)) <= earliest:
                batch = candidate
            else:
                break  # later-deadline frames wait for the next batch rather than make this one late
        for request in batch:
            self.queues[request.stream_id].popleft()
        self._count(dropped)
        return batch, dropped

    def observe_batch(self, size: int, seconds: float, work: float | None = None) -> None:
        self.cost.observe(size, seconds, work)

    def _count(self, dropped: list[Dropped]) -> None:
        for d in dropped:
            self.dropped[d.reason] += 1

