"""The size and rate a stream is offered (services/diffusion/admission.py), from a measured cost and the load."""

from __future__ import annotations

import pytest

from services.diffusion.admission import (
    AdmissionSettings,
    Offer,
    frame_overhead,
    frame_rate,
    offer,
    renegotiate,
    work_of,
)
from services.diffusion.engine.scheduler import BatchCostModel

SETTINGS = AdmissionSettings(min_fps=4.0, max_fps=15.0, latency_share=0.6, min_width=128)


def test_a_fast_replica_grants_what_was_asked_and_caps_the_rate():
    got = offer(512, 288, 16, seconds_per_unit=0.01, open_work=0.0, latency_target_s=1.5, settings=SETTINGS)
    assert got == Offer(512, 288, 15.0)


def test_a_slow_replica_offers_a_smaller_frame_of_the_same_aspect_at_the_rate_it_was_sized_for():
    # 0.45 s per 256x256: a 4 fps turn (0.25 s) holds 0.56 units, i.e. about 250x140 of a 16:9 frame.
    got = offer(512, 288, 16, seconds_per_unit=0.45, open_work=0.0, latency_target_s=1.5, settings=SETTINGS)
    assert (got.width, got.height) == (240, 128)
    assert got.width % 16 == 0 and got.height % 16 == 0
    assert got.frame_rate == pytest.approx(1 / (0.45 * work_of(240, 128)))
    assert got.frame_rate >= SETTINGS.min_fps


def test_the_latency_target_bounds_the_turn_when_it_is_tighter_than_the_rate():
    loose = offer(512, 288, 16, 0.08, 0.0, latency_target_s=10.0, settings=SETTINGS)  # 0.25 s turn: 3.1 units
    tight = offer(512, 288, 16, 0.08, 0.0, latency_target_s=0.2, settings=SETTINGS)  # 0.12 s of repainting
    assert (loose.width, loose.height) == (512, 288)
    assert work_of(tight.width, tight.height) * 0.08 <= 0.12 < work_of(loose.width, loose.height) * 0.08


def test_load_shrinks_the_next_offer_and_its_rate_and_never_below_the_floor():
    offers, open_work = [], 0.0
    for _ in range(6):
        got = offer(512, 288, 16, 0.1, open_work, 1.5, SETTINGS)
        offers.append(got)
        open_work += work_of(got.width, got.height)
    areas = [o.width * o.height for o in offers]
    assert areas == sorted(areas, reverse=True) and areas[-1] < areas[0]
    rates = [o.frame_rate for o in offers]
    assert rates == sorted(rates, reverse=True) and rates[-1] < SETTINGS.min_fps  # past capacity: the floor, slower
    assert all(o.width >= SETTINGS.min_width and o.height >= 64 for o in offers)


def test_never_more_than_asked_even_when_the_floor_is_larger():
    got = offer(64, 64, 16, seconds_per_unit=10.0, open_work=5.0, latency_target_s=1.5, settings=SETTINGS)
    assert (got.width, got.height) == (64, 64) and 0 < got.frame_rate < 1
    for width, height in [(128, 720), (1024, 64), (96, 96), (640, 352)]:
        got = offer(width, height, 16, 3.0, 0.0, 1.5, SETTINGS)
        assert got.width <= width and got.height <= height


def test_unmeasured_cost_grants_what_was_asked_with_no_rate():
    assert offer(512, 288, 16, None, 3.0, 1.5, SETTINGS) == Offer(512, 288, 0.0)
    assert frame_rate(None, 1.0, SETTINGS) == 0.0 and frame_rate(0.1, 0.0, SETTINGS) == 0.0


def test_the_rate_falls_as_the_measured_cost_rises():
    assert frame_rate(0.1, 2.0, SETTINGS) == pytest.approx(5.0)
    assert frame_rate(0.2, 2.0, SETTINGS) == pytest.approx(2.5)
    assert frame_rate(0.001, 2.0, SETTINGS) == SETTINGS.max_fps


def test_the_cost_per_unit_is_a_batch_of_ones_else_the_dearest_measured():
    cost = BatchCostModel()
    assert cost.seconds_per_unit() is None
    cost.observe(4, 0.8, work=4.0)
    cost.observe(2, 0.6, work=2.0)
    assert cost.seconds_per_unit() == pytest.approx(0.3)
    cost.observe(1, 0.5, work=1.0)
    assert cost.seconds_per_unit() == pytest.approx(0.5)


@pytest.mark.parametrize("bad", [dict(min_fps=0), dict(min_fps=20, max_fps=10), dict(latency_share=1.5), dict(min_width=0)])
def test_settings_are_checked(bad):
    with pytest.raises(ValueError):
        AdmissionSettings(**bad)


def test_an_open_stream_shrinks_when_the_measured_cost_rises_and_grows_back_when_it_falls():
    """Sized on an idle replica (0.4 s per unit) at 4 fps, the stream is 256x144; the player's browser then takes
    the cores and a unit costs 0.8 s: the stream is renegotiated down to what fits 4 fps, aspect kept."""
    opened = offer(512, 288, 16, 0.4, 0.0, 1.5, SETTINGS)
    assert (opened.width, opened.height) == (256, 144)
    smaller = renegotiate(opened.width, opened.height, 512, 288, 16, 0.8, 0.0, 1.5, SETTINGS)
    assert smaller is not None and smaller[0] < 256 and smaller[0] % 16 == 0 and smaller[1] % 16 == 0
    assert abs(smaller[0] / smaller[1] - 512 / 288) < 0.3
    assert frame_rate(0.8, work_of(*smaller), SETTINGS) >= SETTINGS.min_fps
    # The load goes away: back up, never above what was asked.
    assert renegotiate(*smaller, 512, 288, 16, 0.4, 0.0, 1.5, SETTINGS) == (256, 144)
    assert renegotiate(*smaller, 512, 288, 16, 0.01, 0.0, 1.5, SETTINGS) == (512, 288)


def test_small_changes_in_the_measured_cost_keep_the_size():
    """Hysteresis: a cost 5 % up or 20 % down does not resize (measurement noise must not make a stream flap)."""
    opened = offer(512, 288, 16, 0.4, 0.0, 1.5, SETTINGS)
    w, h = opened.width, opened.height
    assert renegotiate(w, h, 512, 288, 16, 0.42, 0.0, 1.5, SETTINGS) is None
    assert renegotiate(w, h, 512, 288, 16, 0.32, 0.0, 1.5, SETTINGS) is None


def test_other_streams_load_shrinks_a_stream_and_unmeasured_cost_never_resizes():
    opened = offer(512, 288, 16, 0.4, 0.0, 1.5, SETTINGS)
    w, h = opened.width, opened.height
    crowded = renegotiate(w, h, 512, 288, 16, 0.4, 0.4, 1.5, SETTINGS)  # others take 0.4 units per turn
    assert crowded is not None and crowded[0] * crowded[1] < w * h
    assert renegotiate(w, h, 512, 288, 16, None, 0.0, 1.5, SETTINGS) is None
    # At the floor a slower replica has nothing smaller to offer: the size stays, the rate falls.
    assert renegotiate(128, 64, 512, 288, 16, 5.0, 0.0, 1.5, SETTINGS) is None


def test_a_stream_grows_only_after_it_has_run_a_while_at_its_size_and_shrinks_at_once():
    """Each resize restarts the stream's KV cache: growing waits grow_after_frames frames, shrinking does not."""
    smaller = renegotiate(256, 144, 512, 288, 16, 0.8, 0.0, 1.5, SETTINGS, frames_at_size=0)
    assert smaller is not None and smaller[0] < 256  # straight away
    assert renegotiate(*smaller, 512, 288, 16, 0.4, 0.0, 1.5, SETTINGS, frames_at_size=SETTINGS.grow_after_frames - 1) is None
    assert renegotiate(*smaller, 512, 288, 16, 0.4, 0.0, 1.5, SETTINGS, frames_at_size=SETTINGS.grow_after_frames) == (256, 144)


@pytest.mark.parametrize("shrink, grow", [(0.0, 1.5), (1.0, 1.5), (0.85, 1.0)])
def test_renegotiation_hysteresis_is_checked(shrink, grow):
    with pytest.raises(ValueError):
        AdmissionSettings(shrink_below=shrink, grow_above=grow)


def test_the_frame_overhead_is_recovered_from_two_sizes_and_clamped():
    def cost(work: float) -> float:  # k * (overhead + work): k = 0.2 s per unit, 0.3 units fixed per frame
        return 0.2 * (0.3 + work)

    assert frame_overhead(cost(1.0), 1.0, cost(0.125), 0.125) == pytest.approx(0.3)
    assert frame_overhead(0.2, 1.0, 0.025, 0.125) == pytest.approx(0.0)  # proportional: no overhead
    assert frame_overhead(0.2, 1.0, 0.01, 0.125) == 0.0  # noise below proportional: clamped
    assert frame_overhead(0.2, 1.0, 0.2, 0.125) == 2.0  # the small frame no cheaper: all overhead, clamped
    with pytest.raises(ValueError):
        frame_overhead(0.2, 0.125, 0.1, 1.0)


def _drive(overhead_known: float, true_overhead: float = 1.0, per_unit_s: float = 0.12, frames: int = 200,
           spike: range = range(50, 60)) -> list[tuple[int, tuple[int, int]]]:
    """A stream that asked for 512x288 on a replica whose frames cost per_unit_s * (true_overhead + pixels), four
    times that during `spike` (the machine busy with something else): after every frame the cost model learns from
    it (work counted with overhead_known) and the stream is renegotiated. Returns (frame, size) at every resize."""
    model = BatchCostModel()
    size, since, sizes = (512, 288), 0, [(-1, (512, 288))]
    for i in range(frames):
        pixels = work_of(*size)
        busy = 4.0 if i in spike else 1.0
        model.observe(1, busy * per_unit_s * (true_overhead + pixels), pixels + overhead_known)
        since += 1
        new = renegotiate(*size, 512, 288, 16, model.seconds_per_unit(), 0.0, 1.5, SETTINGS, frames_at_size=since,
                          overhead=overhead_known)
        if new is not None:
            size, since = new, 0
            sizes.append((i, size))
    return sizes


def test_with_the_overhead_counted_a_stream_recovers_from_a_busy_spell_at_once():
    sizes = _drive(overhead_known=1.0)
    settled = sizes[1][1]  # sized at the first measured frame
    assert 0.12 * (1.0 + work_of(*settled)) <= 1 / SETTINGS.min_fps < 0.12 * (1.0 + work_of(512, 288))
    final_at, final = sizes[-1]
    # One step back up, to within the hysteresis of where it was (a trace of the spell is still in the average).
    assert final_at < 60 + SETTINGS.grow_after_frames + 5, sizes
    assert work_of(*settled) / SETTINGS.grow_above < work_of(*final) <= work_of(*settled), sizes
    # Counted as proportional, a small frame looks dearer per unit of pixels than a large one (its fixed part is
    # spread over fewer pixels): after the same spell the stream stays at the floor, its frames at a third of the
    # time the rate allows.
    blind = _drive(overhead_known=0.0)
    assert blind[-1][1][0] == SETTINGS.min_width, blind
    assert 0.12 * (1.0 + work_of(*blind[-1][1])) < 0.6 / SETTINGS.min_fps


def test_an_offer_leaves_room_for_the_new_frames_overhead():
    plain = offer(512, 288, 16, 0.2, 0.0, 1.5, SETTINGS)
    with_overhead = offer(512, 288, 16, 0.2, 0.0, 1.5, SETTINGS, overhead=0.3)
    assert work_of(with_overhead.width, with_overhead.height) < work_of(plain.width, plain.height)
    assert with_overhead.frame_rate == pytest.approx(1 / (0.2 * (0.3 + work_of(with_overhead.width,
                                                                             with_overhead.height))))
    assert with_overhead.frame_rate >= SETTINGS.min_fps
