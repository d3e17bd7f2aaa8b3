"""Planning a session, pure: from frame timestamps and telemetry to the candidate segments (ALIGN + SPLICE), and
the session-level rejections that follow from the plan. No I/O: the worker (worker.py) downloads, decodes and
writes around it.

A session is planned once from the container's block timestamps, before decoding, so that accepted segments can be
written while later frames are still decoding; that plan is kept only if the decoder's timestamps turn out to be
the same (plan_holds), otherwise the session is planned again from the decoder's.
"""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass

from scalediffusion.v1 import processor_pb2
from scalediffusion.webm import WebmInfo
from services.processor import pipeline
from services.processor.align import FrameAlignment, TickTimeline, align_frames
from services.processor.splice import SpliceSettings, splice

REASONS = {name.removeprefix("REJECTION_REASON_"): value for name, value in processor_pb2.RejectionReason.items()}
SAME_TIME_MS = 0.5  # container and decoder timestamps this close are the same frame time


@dataclass
class Plan:
    raw_ms: list[float]  # the timestamps planned from, as given
    video_ms: list[float]  # normalised to the session's frame rate
    aligned: list[FrameAlignment]
    candidates: list
    breaks: list

    def break_counts(self) -> dict[str, int]:
        return dict(sorted(Tally(b.cause for b in self.breaks).items()))


def rejection(reason: str, metric: str, value: float = 0.0, threshold: float = 0.0, detail: str = "", start: int = 0,
              end: int = 0) -> processor_pb2.Rejection:
    return processor_pb2.Rejection(reason=REASONS[reason], metric=metric, value=float(value), threshold=float(threshold), detail=detail,
                                   start_frame=start, end_frame=end)


def plan_session(timestamps_ms: list[float], telemetry, timeline: TickTimeline, settings: SpliceSettings) -> Plan:
    """ALIGN every frame to the telemetry clock, then SPLICE candidate segments. Raises FrameRecordsMismatch when
    the telemetry's frame records cannot describe these frames."""
    video_ms = pipeline.normalize_timestamps(list(timestamps_ms), telemetry.video_fps)
    aligned = align_frames(video_ms, telemetry, nominal_frame_ms=1000.0 / (telemetry.video_fps or 30.0))
    candidates, breaks = splice(aligned, timeline, settings)
    return Plan(raw_ms=list(timestamps_ms), video_ms=video_ms, aligned=aligned, candidates=candidates, breaks=breaks)


def plan_from_container(probe: WebmInfo | None, telemetry, timeline: TickTimeline, settings: SpliceSettings) -> Plan | None:
    """The plan before decoding, from the container's block timestamps; None when they cannot be trusted (no
    probe, a count that differs from the frames) or do not align (then the decoder's timestamps decide)."""
    from services.processor.align import FrameRecordsMismatch

    if probe is None or not probe.timestamps_ms or len(probe.timestamps_ms) != probe.frame_count:
        return None
    try:
        return plan_session(list(probe.timestamps_ms), telemetry, timeline, settings)
    except FrameRecordsMismatch:
        return None


def plan_holds(plan: Plan | None, decoded_video_ms: list[float]) -> bool:
    """Whether a plan made from the container's timestamps is the one the decoded frames call for."""
    return (plan is not None and len(plan.video_ms) == len(decoded_video_ms)
            and all(abs(a - b) <= SAME_TIME_MS for a, b in zip(plan.video_ms, decoded_video_ms)))


def session_rejections(plan: Plan, truncated: bool, video_duration_s: float, min_segment_s: float) -> list[processor_pb2.Rejection]:
    """What the plan itself says against the session, before any segment is judged: a cut-off video (its frames
    before the cut are still used), frames the telemetry does not cover, and no stretch long enough for a segment."""
    out = []
    if truncated:
        out.append(rejection("VIDEO_TRUNCATED", "truncated", 1, 0, "the video is cut off; frames before the cut are used"))
    uncovered = [b.frame for b in plan.breaks if b.cause == "uncovered"]
    if uncovered:
        out.append(rejection("TELEMETRY_MISMATCH", "uncovered_frames", len(uncovered), 0,
                             "telemetry does not cover these frames", min(uncovered), max(uncovered) + 1))
    if not plan.candidates and not uncovered:
        out.append(rejection("TOO_SHORT", "continuous_s", video_duration_s, min_segment_s,
                             "no continuous stretch long enough for a segment"))
    return out
