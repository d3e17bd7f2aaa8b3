"""The quality plot: a PNG of bounded size, drawn for empty and NaN-laden inputs, byte-identical for equal inputs,
and safe to render from several threads at once."""

from __future__ import annotations

import math
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.processor.clean import CleanThresholds, FrameMetrics
from services.processor.report import plot_quality

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
T = CleanThresholds()


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_MAGIC and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def session(n: int = 300, fps: float = 30.0) -> tuple[list[float], list[FrameMetrics]]:
    times = [i / fps for i in range(n)]
    metrics = [
        FrameMetrics(
            blur=150.0 + 100.0 * math.sin(i / 7),
            luma=120.0 + 30.0 * math.sin(i / 25),
            saturated=0.01,
            diff_prev=math.nan if i == 0 else 8.0 + 4.0 * math.cos(i / 5),
            luma_jump=math.nan if i == 0 else abs(2.0 * math.sin(i / 3)),
        )
        for i in range(n)
    ]
    return times, metrics


SEGMENTS = [(0.0, 5.0, True, "accepted"), (5.0, 10.0, False, "BLUR, FROZEN"), (10.0, 10.0, False, "")]


def test_plot_is_a_png_of_about_1000x800_under_300_kb():
    times, metrics = session()
    png = plot_quality("session-1", times, metrics, T, SEGMENTS)
    width, height = png_size(png)
    assert 900 <= width <= 1100 and 700 <= height <= 900
    assert len(png) < 300_000


def test_a_long_session_stays_under_300_kb():
    times, metrics = session(n=30 * 300)  # five minutes at 30 fps, 60 segments
    segments = [(s * 5.0, s * 5.0 + 5.0, s % 3 != 0, "ok" if s % 3 else "FLICKER, IMPLAUSIBLE_MOTION") for s in range(60)]
    png = plot_quality("long", times, metrics, T, segments)
    assert png[:8] == PNG_MAGIC and len(png) < 300_000


def test_empty_inputs_still_plot():
    assert plot_quality("empty", [], [], T, [])[:8] == PNG_MAGIC
    assert plot_quality("segments only", [], [], T, SEGMENTS)[:8] == PNG_MAGIC


def test_nan_and_inf_values_are_drawn_as_gaps():
    times, metrics = session(50)
    nan = FrameMetrics(blur=math.nan, luma=math.inf, saturated=math.nan, diff_prev=-math.inf, luma_jump=math.nan)
    metrics = [nan if i % 4 == 0 else m for i, m in enumerate(metrics)]
    times[10] = math.nan
    segments = [*SEGMENTS, (math.nan, 3.0, False, "bad span")]
    assert plot_quality("nans", times, metrics, T, segments)[:8] == PNG_MAGIC
    all_nan = [FrameMetrics(math.nan, math.nan, math.nan, math.nan, math.nan)] * 3
    assert plot_quality("all nan", [0.0, 0.1, 0.2], all_nan, T, [])[:8] == PNG_MAGIC


def test_identical_inputs_give_identical_bytes():
    times, metrics = session()
    first = plot_quality("same", times, metrics, T, SEGMENTS)
    assert plot_quality("same", times, metrics, T, SEGMENTS) == first
    assert plot_quality("other", times, metrics, T, SEGMENTS) != first


def test_concurrent_renders_match_a_serial_one():
    times, metrics = session(100)
    expected = plot_quality("threads", times, metrics, T, SEGMENTS)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: plot_quality("threads", times, metrics, T, SEGMENTS), range(4)))
    assert all(r == expected for r in results)


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="times_s"):
        plot_quality("x", [0.0], [], T, [])
