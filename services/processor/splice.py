"""SPLICE: cut an aligned session into fixed-length segments at a chosen output rate, never across a gap, pause,
teleport, reset, collision or a stretch telemetry does not cover. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from services.processor.align import FrameAlignment, TickTimeline


@dataclass(frozen=True)
class SpliceSettings:
    segment_s: float = 5.0  # segment length
    min_segment_s: float = 1.0  # a shorter tail of a continuous run is dropped
    output_fps: float = 10.0  # frames per second written (CILRS/CARLA datasets are 10 Hz); 0 keeps every source frame
    # A hole between source frames longer than this many output intervals breaks continuity (tab hidden, a long
    # stall). Shorter ones are what a modest machine records and resampling absorbs them: every frame keeps its own
    # time, pose, controls and targets. Measured in headless Chromium on 2 cores: MediaRecorder frames 110-400 ms
    # apart; with diffusion on, repainted frames ~390 ms apart (p90 420, max 520). 800 ms at 10 Hz leaves 2x.
    max_gap_intervals: float = 8.0
    max_gap_ms: float = 250.0  # the hole limit when every source frame is kept (output_fps 0)
    # A frame whose render time moves this much more or less than its display time sits on an RTT change (a spike
    # the RTT samples only bracket): its pose is a guess, so continuity breaks there rather than CLEAN rejecting the
    # whole segment for a jump no car made.
    max_render_jump_ms: float = 250.0
    teleport_slack_m: float = 5.0  # a move larger than speed*dt plus this is a teleport

    def validate(self) -> None:
        if self.segment_s <= 0 or self.min_segment_s < 0 or self.min_segment_s > self.segment_s:
            raise ValueError("SD_SEGMENT_S must be > 0 and SD_MIN_SEGMENT_S within [0, SD_SEGMENT_S]")
        if self.output_fps < 0 or self.max_gap_ms <= 0 or self.max_gap_intervals < 1 or self.max_render_jump_ms <= 0:
            raise ValueError("SD_OUTPUT_FPS must be >= 0, SD_MAX_GAP_MS > 0, SD_MAX_GAP_INTERVALS >= 1 and SD_MAX_RENDER_JUMP_MS > 0")

    @property
    def hole_limit_ms(self) -> float:
        """The longest hole between source frames that does not break continuity."""
        return self.max_gap_intervals * 1000.0 / self.output_fps if self.output_fps > 0 else self.max_gap_ms


@dataclass(frozen=True)
class Break:
    """Why continuity breaks before frame `frame`."""

    frame: int
    cause: str  # "gap", "pause", "reset", "collision", "rtt_jump", "teleport", "uncovered"


@dataclass(frozen=True)
class Candidate:
    """A window that may become a segment: its index among all windows of the session and its frames."""

    index: int
    frames: list[int]


def find_breaks(frames: list[FrameAlignment], timeline: TickTimeline, s: SpliceSettings) -> list[Break]:
    breaks: list[Break] = []
    for i, f in enumerate(frames):
        if not f.covered:
            breaks.append(Break(i, "uncovered"))
            continue
        paused, reset = timeline.flags_between(frames[i - 1].display_ms if i else f.display_ms - 1e-3, f.display_ms)
        if paused:
            breaks.append(Break(i, "pause"))
            continue
        if i == 0:
            continue
        prev = frames[i - 1]
        dt_ms = f.display_ms - prev.display_ms
        if reset:
            breaks.append(Break(i, "reset"))
        elif timeline.collided_between(min(prev.render_ms, f.render_ms), max(prev.render_ms, f.render_ms)):
            breaks.append(Break(i, "collision"))
        elif dt_ms > s.hole_limit_ms:
            breaks.append(Break(i, "gap"))
        elif rtt_jump(prev, f, s):
            breaks.append(Break(i, "rtt_jump"))
        elif math.hypot(f.x - prev.x, f.y - prev.y) > max(abs(f.speed), abs(prev.speed)) * dt_ms / 1000.0 + s.teleport_slack_m:
            breaks.append(Break(i, "teleport"))
    return breaks


def rtt_jump(prev: FrameAlignment, f: FrameAlignment, s: SpliceSettings) -> bool:
    """Whether the picture's game time jumps against the display time between two frames. Guessed render times
    (clock + RTT model) break on any jump over max_render_jump_ms; recorded ones are exact, so only a picture that
    shows an earlier moment than the one before it (a repaint older than the raw render it follows) breaks."""
    if f.exact and prev.exact:
        return f.render_ms < prev.render_ms
    return abs((f.render_ms - prev.render_ms) - (f.display_ms - prev.display_ms)) > s.max_render_jump_ms


def continuous_runs(n_frames: int, breaks: list[Break]) -> list[range]:
    """Maximal runs of frames with no break inside; frames that are themselves unusable (uncovered, paused) are
    left out of every run."""
    unusable = {b.frame for b in breaks if b.cause in ("uncovered", "pause")}
    starts = {b.frame for b in breaks}
    runs: list[range] = []
    start = None
    for i in range(n_frames):
        if i in unusable:
            if start is not None:
                runs.append(range(start, i))
            start = None
            continue
        if start is None:
            start = i
        elif i in starts:
            runs.append(range(start, i))
            start = i
    if start is not None:
        runs.append(range(start, n_frames))
    return [r for r in runs if len(r) > 0]


def resample(run: range, times_ms: list[float], fps: float) -> list[int]:
    """Frame indices of a run at the output rate: the frame nearest each grid time, never the same frame twice
    (a slower source keeps its own frames), never an invented one."""
    if fps <= 0 or len(run) < 2:
        return list(run)
    step = 1000.0 / fps
    picked: list[int] = []
    i = run.start
    t = times_ms[run.start]
    end = times_ms[run.stop - 1]
    while t <= end + 1e-6:
        while i + 1 < run.stop and abs(times_ms[i + 1] - t) <= abs(times_ms[i] - t):
            i += 1
        if not picked or picked[-1] != i:
            picked.append(i)
        t += step
    return picked


def windows(frames: list[int], times_ms: list[float], s: SpliceSettings) -> list[list[int]]:
    """Consecutive segment_s windows of a run's (resampled) frames; a tail under min_segment_s is dropped."""
    out: list[list[int]] = []
    current: list[int] = []
    for f in frames:
        if current and times_ms[f] - times_ms[current[0]] >= s.segment_s * 1000.0:
            out.append(current)
            current = []
        current.append(f)
    if current and (times_ms[current[-1]] - times_ms[current[0]]) / 1000.0 >= s.min_segment_s:
        out.append(current)
    return out


def splice(frames: list[FrameAlignment], timeline: TickTimeline, s: SpliceSettings) -> tuple[list[Candidate], list[Break]]:
    """Candidate segments (numbered in time order across the session) and the breaks that shaped them."""
    times = [f.display_ms for f in frames]
    breaks = find_breaks(frames, timeline, s)
    candidates: list[Candidate] = []
    for run in continuous_runs(len(frames), breaks):
        for window in windows(resample(run, times, s.output_fps), times, s):
            candidates.append(Candidate(index=len(candidates), frames=window))
    return candidates, breaks
