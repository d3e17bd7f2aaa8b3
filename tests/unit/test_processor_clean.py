"""CLEAN: frames built to fail each metric come out with the right reason, metric, value, threshold and span; a
good segment passes; thresholds load from JSON and validate; nothing raises on arbitrary input."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from services.processor import clean
from services.processor.clean import CleanThresholds, Failure, FrameMetrics

T = CleanThresholds()
N = 60  # 2 s at 30 fps: enough frames for fractions, fast to measure
FPS = 30.0
SIZE = 256


def _texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Mid-gray texture with detail at several scales, like a street scene at 256x256.
    coarse = cv2.resize(rng.integers(40, 216, (32, 32, 3), dtype=np.uint8), (512, 512), interpolation=cv2.INTER_LINEAR)
    fine = rng.integers(-25, 26, (512, 512, 3))
    return np.clip(coarse.astype(np.int16) + fine, 0, 255).astype(np.uint8)


TEXTURE = _texture()


def moving_frames(n: int = N) -> list[np.ndarray]:
    """A scrolling textured view: sharp, mid-bright, changing every frame."""
    return [TEXTURE[(i * 3) % 256 : (i * 3) % 256 + SIZE, (i * 5) % 256 : (i * 5) % 256 + SIZE].copy() for i in range(n)]


def metrics_of(frames: list[np.ndarray]) -> list[FrameMetrics]:
    out, prev = [], None
    for frame in frames:
        gray = clean.to_gray(frame)
        out.append(clean.frame_metrics(gray, prev))
        prev = gray
    return out


def driving(n: int = N, speed: float = 10.0, fps: float = FPS) -> list[dict]:
    """Normal driving: steady speed along x, positions consistent with it, some throttle and steering."""
    dt = 1.0 / fps
    return [
        {
            "timestamp_ms": round(i * dt * 1000.0, 3),
            "x": speed * i * dt,
            "y": 0.0,
            "theta": 0.0,
            "speed": speed,
            "steer": 0.1 * math.sin(i / 10),
            "throttle": 0.4,
            "brake": 0.0,
            "command": 4,
        }
        for i in range(n)
    ]


def only(failures: list[Failure], reason: str) -> Failure:
    assert [f.reason for f in failures] == [reason], failures
    return failures[0]


def by_metric(failures: list[Failure], metric: str) -> Failure:
    matches = [f for f in failures if f.metric == metric]
    assert len(matches) == 1, failures
    return matches[0]


# --- frame metrics ------------------------------------------------------------------------------------------------


def test_a_good_segment_passes():
    metrics = metrics_of(moving_frames())
    assert all(clean.frame_flags(m, T) == set() for m in metrics)
    assert clean.evaluate_segment(metrics, driving(), T) == []


def test_the_first_frame_has_nan_differences_and_nan_never_fails():
    first = metrics_of(moving_frames(1))[0]
    assert math.isnan(first.diff_prev) and math.isnan(first.luma_jump)
    nan_frame = FrameMetrics(blur=math.nan, luma=math.nan, saturated=math.nan, diff_prev=math.nan, luma_jump=math.nan)
    assert clean.frame_flags(nan_frame, T) == set()


def test_to_gray_accepts_bgr_bgra_and_gray():
    bgr = moving_frames(1)[0]
    gray = clean.to_gray(bgr)
    assert gray.shape == (SIZE, SIZE) and gray.dtype == np.uint8
    assert np.array_equal(clean.to_gray(cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)), gray)
    assert np.array_equal(clean.to_gray(gray), gray)
    assert np.array_equal(clean.to_gray(gray[:, :, None]), gray)
    with pytest.raises(ValueError):
        clean.to_gray(np.zeros((0, 4, 3), np.uint8))


def test_frame_metrics_values():
    gray = np.full((16, 16), 100, np.uint8)
    gray[:, 8:] = 250
    prev = np.full((16, 16), 90, np.uint8)
    m = clean.frame_metrics(gray, prev)
    assert m.luma == pytest.approx(175.0)
    assert m.saturated == pytest.approx(0.5)
    assert m.diff_prev == pytest.approx((10 + 160) / 2)
    assert m.luma_jump == pytest.approx(85.0)
    assert m.blur > 0
    assert clean.frame_metrics(np.full((16, 16), 7, np.uint8), None).blur == 0.0
    with pytest.raises(ValueError, match="shape"):
        clean.frame_metrics(gray, np.zeros((8, 8), np.uint8))


def test_blurry_frames_fail_blur():
    frames = [cv2.GaussianBlur(f, (0, 0), 8) for f in moving_frames()]
    failures = clean.evaluate_segment(metrics_of(frames), driving(), T)
    f = only(failures, "BLUR")
    assert (f.metric, f.value, f.threshold, f.start_frame, f.end_frame) == ("blur_bad_fraction", 1.0, 0.2, 0, N)


def test_a_repeated_frame_fails_frozen_from_the_second_frame():
    frame = moving_frames(1)[0]
    failures = clean.evaluate_segment(metrics_of([frame] * N), driving(), T)
    f = only(failures, "FROZEN")
    assert f.metric == "frozen_bad_fraction"
    assert f.value == pytest.approx((N - 1) / N)  # the first frame has no previous one: NaN, not bad
    assert (f.threshold, f.start_frame, f.end_frame) == (0.2, 1, N)


def test_an_unchanged_view_while_the_car_stands_still_is_not_frozen():
    frame = moving_frames(1)[0]
    waiting = [dict(m, speed=0.0, x=0.0, throttle=0.0, brake=1.0) for m in driving()]  # waiting at a red light
    assert clean.evaluate_segment(metrics_of([frame] * N), waiting, T) == []
    half = [dict(m, speed=0.0, x=0.0) if i < N // 2 else dict(m, speed=1.0, x=(i - N // 2) / FPS) for i, m in enumerate(driving())]
    f = only(clean.evaluate_segment(metrics_of([frame] * N), half, T), "FROZEN")  # the view froze once it drove on
    assert f.start_frame == N // 2


def test_black_frames_fail_black():
    rng = np.random.default_rng(1)
    # Dark sensor noise: black, yet sharp and changing, so only BLACK fails.
    frames = [rng.integers(0, 12, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(N)]
    f = only(clean.evaluate_segment(metrics_of(frames), driving(), T), "BLACK")
    assert (f.metric, f.value, f.threshold, f.start_frame, f.end_frame) == ("black_bad_fraction", 1.0, 0.2, 0, N)


def test_pure_black_frames_report_each_reason_independently():
    frames = [np.zeros((SIZE, SIZE, 3), np.uint8)] * N
    reasons = [f.reason for f in clean.evaluate_segment(metrics_of(frames), driving(), T)]
    assert reasons == ["BLUR", "FROZEN", "BLACK"]  # flat and unchanging too, reported in REASONS order


def test_blown_out_frames_fail_blown_out_by_luma_or_saturation():
    rng = np.random.default_rng(2)
    frames = [rng.integers(240, 256, (SIZE, SIZE, 3), dtype=np.uint8) for _ in range(N)]
    f = only(clean.evaluate_segment(metrics_of(frames), driving(), T), "BLOWN_OUT")
    assert (f.metric, f.value, f.threshold) == ("blown_out_bad_fraction", 1.0, 0.2)
    # Mean luma below blown_min_luma, but 70% of pixels clipped: still blown out.
    m = FrameMetrics(blur=500.0, luma=200.0, saturated=0.7, diff_prev=5.0, luma_jump=1.0)
    assert clean.frame_flags(m, T) == {"BLOWN_OUT"}


def test_alternating_bright_and_dark_frames_fail_flicker():
    frames = [np.clip(f.astype(np.int16) + (50 if i % 2 else -50), 0, 255).astype(np.uint8) for i, f in enumerate(moving_frames())]
    metrics = metrics_of(frames)
    f = only(clean.evaluate_segment(metrics, driving(), T), "FLICKER")
    assert f.metric == "flicker_bad_fraction"
    assert f.value == pytest.approx((N - 1) / N)
    assert (f.threshold, f.start_frame, f.end_frame) == (0.2, 1, N)


def test_bad_frames_up_to_max_bad_fraction_are_tolerated():
    good = moving_frames()
    black = np.zeros((SIZE, SIZE, 3), np.uint8)
    allowed = int(N * T.max_bad_fraction)  # 12 of 60 = exactly 0.2: not more than the fraction
    frames = good[:20] + [black] * allowed + good[20 + allowed :]
    assert "BLACK" not in [f.reason for f in clean.evaluate_segment(metrics_of(frames), driving(), T)]
    frames = good[:20] + [black] * (allowed + 1) + good[21 + allowed :]
    f = by_metric(clean.evaluate_segment(metrics_of(frames), driving(), T), "black_bad_fraction")
    assert f.value == pytest.approx((allowed + 1) / N)
    assert (f.start_frame, f.end_frame) == (20, 21 + allowed)


# --- driving checks -----------------------------------------------------------------------------------------------


def test_afk_player_fails_no_input():
    idle = [{**m, "x": 5.0, "speed": 0.0, "steer": 0.0, "throttle": 0.0, "brake": 0.0} for m in driving()]
    f = only(clean.evaluate_segment(metrics_of(moving_frames()), idle, T), "NO_INPUT")
    assert (f.metric, f.value, f.threshold, f.start_frame, f.end_frame) == ("afk_fraction", 1.0, 0.8, 0, N)


def test_waiting_at_a_light_with_the_brake_held_is_not_afk():
    waiting = [{**m, "x": 5.0, "speed": 0.0, "steer": 0.0, "throttle": 0.0, "brake": 0.6} for m in driving()]
    assert clean.evaluate_segment([], waiting, T) == []


def test_implausible_speed():
    fast = driving(speed=75.0)
    f = only(clean.evaluate_segment([], fast, T), "IMPLAUSIBLE_MOTION")
    assert (f.metric, f.value, f.threshold, f.start_frame, f.end_frame) == ("max_speed_mps", 75.0, 60.0, 0, N)


def test_implausible_acceleration():
    # 10 m/s to standstill between two frames, positions consistent with the reported speed.
    ms = driving()
    stop = 30
    for i in range(stop, N):
        ms[i] = {**ms[i], "speed": 0.0, "x": ms[stop - 1]["x"], "throttle": 0.0, "brake": 1.0}
    f = only(clean.evaluate_segment([], ms, T), "IMPLAUSIBLE_MOTION")
    assert f.metric == "max_accel_mps2" and f.threshold == 15.0
    assert f.value == pytest.approx(10.0 / (8 / FPS), rel=1e-4)  # 10 m/s over the first frame pair >= MOTION_WINDOW_S apart
    assert f.start_frame < stop < f.end_frame


def test_hard_braking_sampled_from_held_telemetry_ticks_is_plausible():
    # 8 m/s^2 from 20 m/s, each 30 fps frame holding the latest 10 Hz tick: frame to frame this reads 24 m/s^2.
    ms = []
    for i in range(N):
        t = i / FPS
        tick = math.floor(t * 10) / 10
        v = max(0.0, 20.0 - 8.0 * tick)
        tb = min(tick, 2.5)
        ms.append({"timestamp_ms": t * 1000, "x": 20.0 * tb - 4.0 * tb * tb, "y": 0.0, "theta": 0.0, "speed": v,
                   "steer": 0.0, "throttle": 0.0, "brake": 0.8, "command": 4})
    assert clean.evaluate_segment([], ms, T) == []


def test_position_jump():
    ms = driving()
    for i in range(40, N):
        ms[i] = {**ms[i], "y": 12.0}  # a 12 m sideways step at 10 m/s
    f = only(clean.evaluate_segment([], ms, T), "IMPLAUSIBLE_MOTION")
    assert f.metric == "position_jump_m" and f.threshold == 3.0
    # Over a window of 8 frames the car may move 10 m/s * 8/30 s + 3 m; it moved hypot(8/3, 12).
    assert f.value == pytest.approx(math.hypot(10 * 8 / FPS, 12.0) - 10 * 8 / FPS, rel=1e-4)
    assert f.start_frame < 40 < f.end_frame


def test_motion_failures_keep_a_stable_order():
    ms = driving(speed=70.0)
    ms[30] = {**ms[30], "speed": 0.0, "y": 40.0}
    failures = clean.evaluate_segment([], ms, T)
    assert [f.metric for f in failures] == ["max_speed_mps", "max_accel_mps2", "position_jump_m"]
    assert all(f.reason == "IMPLAUSIBLE_MOTION" and f.detail for f in failures)


def test_failures_follow_the_reason_order():
    frames = [np.zeros((SIZE, SIZE, 3), np.uint8)] * N
    idle = [{**m, "speed": 99.0, "steer": 0.0, "throttle": 0.0, "brake": 0.0} for m in driving()]
    reasons = [f.reason for f in clean.evaluate_segment(metrics_of(frames), idle, T)]
    assert reasons == sorted(reasons, key=clean.REASONS.index)


# --- thresholds ---------------------------------------------------------------------------------------------------


def test_threshold_json_overrides_some_fields():
    t = CleanThresholds.from_json('{"min_blur": 30, "max_bad_fraction": 0.5}')
    assert t.min_blur == 30.0 and t.max_bad_fraction == 0.5 and t.max_speed_mps == T.max_speed_mps
    assert CleanThresholds.from_json("{}") == T
    frames = [cv2.GaussianBlur(f, (0, 0), 8) for f in moving_frames()]
    assert clean.evaluate_segment(metrics_of(frames), driving(), CleanThresholds.from_json('{"min_blur": 0}')) == []


@pytest.mark.parametrize(
    "text, match",
    [
        ('{"min_blurr": 30}', "min_blurr"),
        ('{"min_blur": "30"}', "min_blur"),
        ('{"min_blur": true}', "min_blur"),
        ('{"min_blur": null}', "min_blur"),
        ('{"min_blur": NaN}', "min_blur"),
        ('{"min_blur": 1e999}', "min_blur"),
        ('{"min_blur": -1}', "min_blur"),
        ('{"max_bad_fraction": 1.5}', "max_bad_fraction"),
        ('{"black_max_luma": 240}', "black_max_luma"),
        ("[1, 2]", "object"),
        ("{", "JSON"),
    ],
)
def test_bad_threshold_json_is_refused_naming_the_key(text, match):
    with pytest.raises(ValueError, match=match):
        CleanThresholds.from_json(text)


@pytest.mark.parametrize(
    "override, field",
    [
        ({"max_speed_mps": -1.0}, "max_speed_mps"),
        ({"frozen_max_diff": -0.1}, "frozen_max_diff"),
        ({"afk_max_fraction": 2.0}, "afk_max_fraction"),
        ({"blown_min_luma": 300.0}, "blown_min_luma"),
        ({"black_max_luma": 100.0, "blown_min_luma": 50.0}, "black_max_luma"),
        ({"max_accel_mps2": math.inf}, "max_accel_mps2"),
    ],
)
def test_validate_names_the_bad_field(override, field):
    with pytest.raises(ValueError, match=field):
        CleanThresholds(**override).validate()


def test_defaults_validate():
    T.validate()


# --- properties ---------------------------------------------------------------------------------------------------

shapes = st.tuples(st.integers(8, 48), st.integers(8, 48))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), shape=shapes, channels=st.sampled_from([0, 1, 3, 4]), with_prev=st.booleans())
def test_frame_metrics_never_raises_and_is_finite(data, shape, channels, with_prev):
    full = shape if channels == 0 else (*shape, channels)
    frame = data.draw(hnp.arrays(np.uint8, full))
    prev = data.draw(hnp.arrays(np.uint8, shape)) if with_prev else None
    m = clean.frame_metrics(clean.to_gray(frame), prev)
    for name in ("blur", "luma", "saturated"):
        assert math.isfinite(getattr(m, name))
    assert 0.0 <= m.luma <= 255.0 and 0.0 <= m.saturated <= 1.0 and m.blur >= 0.0
    if with_prev:
        assert math.isfinite(m.diff_prev) and math.isfinite(m.luma_jump)
    else:
        assert math.isnan(m.diff_prev) and math.isnan(m.luma_jump)
    assert isinstance(clean.frame_flags(m, T), set)


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-100, 100),
    st.integers(-1000, 1000),
    st.just(0.0),
)
measurement = st.fixed_dictionaries(
    {k: numbers for k in ("timestamp_ms", "x", "y", "theta", "speed", "steer", "throttle", "brake")}
    | {"command": st.integers(0, 6)}
)


@st.composite
def measurement_lists(draw):
    ms = draw(st.lists(measurement, max_size=40))
    if ms and draw(st.booleans()):
        # Equal or ordered timestamps, the common shapes after the pipeline normalises time.
        same = draw(st.booleans())
        step = draw(st.floats(0, 100))
        ms = [{**m, "timestamp_ms": 1000.0 if same else i * step} for i, m in enumerate(ms)]
    return ms


frame_metric = st.builds(FrameMetrics, blur=numbers, luma=numbers, saturated=numbers, diff_prev=numbers, luma_jump=numbers)


@settings(max_examples=200, deadline=None)
@given(ms=measurement_lists(), metrics=st.lists(frame_metric, max_size=20))
def test_evaluate_segment_never_raises(ms, metrics):
    failures = clean.evaluate_segment(metrics, ms, T)
    reasons = [f.reason for f in failures]
    assert reasons == sorted(reasons, key=clean.REASONS.index)
    for f in failures:
        assert f.reason in clean.REASONS and f.detail
        assert 0 <= f.start_frame < f.end_frame <= max(len(ms), len(metrics))
