"""Streaming mechanics of the diffusion engine: the SLO-aware frame scheduler and motion-aware noise strength."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.diffusion.engine.motion import MotionAwareStrength, motion_between
from services.diffusion.engine.scheduler import (
    STALE,
    SUPERSEDED,
    UNMEETABLE,
    BatchCostModel,
    FrameRequest,
    FrameScheduler,
)


def req(stream: str, frame: int, now: float, slo: float = 0.1) -> FrameRequest:
    return FrameRequest(stream, frame, now, now + slo)


def test_a_newer_frame_supersedes_the_queued_one():
    s = FrameScheduler(max_batch=4, max_queued_per_stream=1)
    assert s.submit(req("a", 1, 0.0)) == []
    dropped = s.submit(req("a", 2, 0.01))
    assert [(d.request.frame_id, d.reason) for d in dropped] == [(1, SUPERSEDED)]
    batch, _ = s.next_batch(0.02)
    assert [r.frame_id for r in batch] == [2]


def test_stale_and_unmeetable_frames_are_dropped_with_reasons():
    s = FrameScheduler(max_batch=4, cost=BatchCostModel(fixed_s=0.05, per_item_s=0.0))
    s.submit(FrameRequest("late", 1, 0.0, 0.10))  # deadline passes before the scheduler looks
    s.submit(FrameRequest("tight", 1, 0.0, 0.14))  # 0.12 + 0.05 > 0.14: cannot be met even alone
    s.submit(FrameRequest("fine", 1, 0.0, 0.30))
    batch, dropped = s.next_batch(0.12)
    assert [r.stream_id for r in batch] == ["fine"]
    assert sorted((d.request.stream_id, d.reason) for d in dropped) == [("late", STALE), ("tight", UNMEETABLE)]
    assert s.dropped == {STALE: 1, SUPERSEDED: 0, UNMEETABLE: 1}


def test_batches_are_sized_to_meet_the_earliest_deadline():
    # 10 ms fixed + 10 ms per frame; deadlines 45 ms away: a batch of 3 (40 ms) fits, 4 (50 ms) does not.
    s = FrameScheduler(max_batch=8, cost=BatchCostModel(fixed_s=0.010, per_item_s=0.010))
    for k in range(6):
        s.submit(FrameRequest(f"s{k}", 1, 0.0, 0.045 + 0.001 * k))
    batch, dropped = s.next_batch(0.0)
    assert [r.stream_id for r in batch] == ["s0", "s1", "s2"] and dropped == []
    assert s.queued == 3  # the rest wait for the next batch


def test_work_scales_the_estimate_and_unmeetable_drops_relax_a_stale_one():
    cost = BatchCostModel()
    cost.observe(1, 0.2, work=4.0)  # a 512x512 frame took 200 ms
    assert cost.estimate(1, 1.0) == pytest.approx(0.05) and cost.estimate(1, 4.0) == pytest.approx(0.2)
    s = FrameScheduler(cost=BatchCostModel())
    s.observe_batch(1, 3.0)  # one very slow batch (a busy machine): 3 s per frame, the target is 1 s
    outcomes = []
    for k in range(40):
        s.submit(FrameRequest("p", k, float(k), float(k) + 1.0))
        batch, dropped = s.next_batch(float(k))
        outcomes.append("ran" if batch else dropped[0].reason)
        if batch:
            break
    assert outcomes[0] == "unmeetable" and outcomes[-1] == "ran"  # re-measured instead of refused forever


def test_measured_batch_times_replace_the_prior():
    cost = BatchCostModel(fixed_s=0.010, per_item_s=0.010, smoothing=0.5)
    cost.observe(2, 0.100)
    cost.observe(2, 0.200)
    assert cost.estimate(2) == pytest.approx(0.150) and cost.estimate(3) == pytest.approx(0.040)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0.0, 0.05)), min_size=1, max_size=200), st.integers(1, 4))
def test_queues_stay_bounded_and_each_frame_is_served_or_dropped_once(events, max_batch):
    s = FrameScheduler(max_batch=max_batch, max_queued_per_stream=2)
    now, submitted, seen = 0.0, 0, []
    for k, (stream, dt) in enumerate(events):
        now += dt
        seen += [d.request for d in s.submit(FrameRequest(f"p{stream}", k, now, now + 0.08))]
        submitted += 1
        assert s.queued <= 2 * 6  # never more than the per-stream bound, whatever the load
        if k % 3 == 0:
            batch, dropped = s.next_batch(now)
            assert len(batch) <= max_batch and len({r.stream_id for r in batch}) == len(batch)
            seen += batch + [d.request for d in dropped]
    batch, dropped = s.next_batch(now + 1.0)  # everything left is stale by then
    seen += batch + [d.request for d in dropped]
    assert len(seen) == submitted and len({(r.stream_id, r.frame_id) for r in seen}) == submitted


def frames(motion_px: int, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(72, 128, 3), dtype=np.uint8)
    return [np.roll(base, k * motion_px, axis=1) for k in range(n)]


def test_still_frames_keep_the_base_strength_and_motion_lowers_it_smoothly():
    still = MotionAwareStrength(base=0.7, min_strength=0.3)
    assert [still.update(f) for f in frames(0, 5)] == [0.7] * 5
    moving = MotionAwareStrength(base=0.7, min_strength=0.3)
    strengths = [moving.update(f) for f in frames(6, 8)]
    assert strengths[0] == 0.7 and strengths[-1] < strengths[1] < 0.7  # falls gradually (EMA), not at once
    assert all(0.3 <= s <= 0.7 for s in strengths)


def test_motion_metric_is_zero_for_identical_frames_and_rejects_size_changes():
    a = frames(0, 1)[0]
    assert motion_between(a, a) == 0.0
    black, white = np.zeros_like(a), np.full_like(a, 255)
    assert motion_between(black, white) == pytest.approx(1.0) and 0.0 < motion_between(a, 255 - a) < 1.0
    with pytest.raises(ValueError, match="differ in size"):
        motion_between(a, a[:10])
    with pytest.raises(ValueError):
        MotionAwareStrength(base=0.2, min_strength=0.5)
