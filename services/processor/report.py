"""The session quality plot: CLEAN's frame metrics over time with its thresholds and the segment verdicts.

Pure: numbers in, PNG bytes out. It draws on its own Figure with an Agg canvas and never touches pyplot, whose
global figure manager is not thread-safe, so worker threads may render reports concurrently.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from PIL import Image  # matplotlib's own imaging dependency

from services.processor.clean import CleanThresholds, FrameMetrics

FIG_SIZE_IN = (10.0, 8.0)
DPI = 100  # 1000x800 px
ACCEPTED_COLOR = "tab:green"
REJECTED_COLOR = "tab:red"
SPAN_ALPHA = 0.15
MAX_LABEL_CHARS = 40  # long reason lists are cut so labels stay inside their span's column


def _finite_or_nan(values: Sequence[float]) -> list[float]:
    # inf would wreck autoscaling; NaN leaves a gap in the line, which is what a missing value should look like.
    return [float(v) if math.isfinite(v) else math.nan for v in values]


def plot_quality(
    session_id: str,
    times_s: list[float],
    metrics: list[FrameMetrics],
    t: CleanThresholds,
    segments: list[tuple[float, float, bool, str]],
) -> bytes:
    """PNG of the frame metrics over time: blur, luma, diff_prev and luma_jump in stacked subplots with their
    thresholds, and each segment (start_s, end_s, accepted, label) as a green (accepted) or red (rejected) span on
    every subplot, its label written in the top one. Identical inputs give identical bytes.

    Raises:
        ValueError: times_s and metrics differ in length.
    """
    if len(times_s) != len(metrics):
        raise ValueError(f"times_s has {len(times_s)} entries but metrics has {len(metrics)}")
    times = _finite_or_nan(times_s)
    series = [
        ("blur (Laplacian var)", [m.blur for m in metrics], [(t.min_blur, "min_blur", "tab:orange")]),
        (
            "luma (mean gray)",
            [m.luma for m in metrics],
            [(t.black_max_luma, "black_max_luma", "black"), (t.blown_min_luma, "blown_min_luma", "tab:orange")],
        ),
        ("diff to previous", [m.diff_prev for m in metrics], [(t.frozen_max_diff, "frozen_max_diff", "tab:orange")]),
        ("luma jump", [m.luma_jump for m in metrics], [(t.flicker_max_jump, "flicker_max_jump", "tab:orange")]),
    ]

    fig = Figure(figsize=FIG_SIZE_IN, dpi=DPI)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(series), 1, sharex=True)
    for ax, (title, values, lines) in zip(axes, series):
        if times:
            ax.plot(times, _finite_or_nan(values), color="tab:blue", linewidth=0.8)
        for level, name, color in lines:
            ax.axhline(level, color=color, linestyle="--", linewidth=1.0, label=f"{name} {level:g}")
        ax.set_ylim(bottom=0)  # every metric is non-negative; a zero floor keeps axes comparable across reports
        ax.set_ylabel(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
        ax.grid(True, linewidth=0.3, alpha=0.5)
    # Sharp frames reach thousands while the threshold sits near 60: symlog keeps both readable. Its default tick
    # labels are mathtext, whose parser is shared and not thread-safe, so they are plain text here.
    axes[0].set_yscale("symlog", linthresh=10.0)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axes[0].yaxis.set_minor_formatter(NullFormatter())

    for start_s, end_s, accepted, label in segments:
        if not (math.isfinite(start_s) and math.isfinite(end_s)):
            continue
        color = ACCEPTED_COLOR if accepted else REJECTED_COLOR
        for ax in axes:
            ax.axvspan(start_s, end_s, color=color, alpha=SPAN_ALPHA, linewidth=0)
        text = label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"
        # x in data coordinates, y in axes coordinates: the label sits at the top of its span whatever the scale.
        axes[0].text(
            (start_s + end_s) / 2,
            0.97,
            text,
            transform=axes[0].get_xaxis_transform(),
            rotation=90,
            ha="center",
            va="top",
            fontsize=6,
            color=color,
            clip_on=True,
            parse_math=False,  # a "$" in a label is text, not mathtext
        )

    if not times and not segments:
        axes[0].text(0.5, 0.5, "no frames", transform=axes[0].transAxes, ha="center", va="center")
    axes[-1].set_xlabel("session time (s)", fontsize=8)
    n_rejected = sum(1 for s in segments if not s[2])
    fig.suptitle(
        f"{session_id}: {len(metrics)} frames, {len(segments)} segments, {n_rejected} rejected", fontsize=10, parse_math=False
    )
    fig.tight_layout()
    return _to_png(fig)


def _to_png(fig: Figure) -> bytes:
    """The figure as a 256-colour palette PNG. A plot has few colours, but antialiased dense lines make a true-colour
    RGBA PNG of a long session exceed 300 KB; the palette roughly halves it. Pillow writes no timestamp or software
    chunk, so the bytes depend only on the pixels."""
    fig.canvas.draw()
    rgb = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")  # type: ignore[attr-defined]  # Agg canvas
    palette = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    palette.save(buf, format="png", optimize=True)
    return buf.getvalue()
