"""Planning a session (services/processor/plan.py): pure, from frame timestamps and telemetry to candidate segments
and the rejections the plan alone implies."""

from __future__ import annotations

import pytest

from scalediffusion import synthetic
from scalediffusion.v1 import processor_pb2
from scalediffusion.webm import WebmInfo
from services.processor.align import TickTimeline
from services.processor.plan import plan_from_container, plan_holds, plan_session, session_rejections
from services.processor.splice import SpliceSettings

SETTINGS = SpliceSettings(segment_s=5, min_segment_s=3, output_fps=0)


def _session(seconds: float = 12.0, fps: float = 30.0):
    telemetry = synthetic.make_telemetry("s1", seconds=seconds, video_fps=fps)
    frames = [k * 1000.0 / fps for k in range(int(seconds * fps) - 10)]
    return telemetry, TickTimeline(telemetry), frames


def test_a_plan_cuts_candidates_and_holds_only_for_the_same_frame_times():
    telemetry, timeline, frames = _session()
    plan = plan_session(frames, telemetry, timeline, SETTINGS)
    assert len(plan.candidates) == 2 and len(plan.aligned) == len(frames)
    assert plan_holds(plan, plan.video_ms)
    assert plan_holds(plan, [t + 0.3 for t in plan.video_ms])  # float noise between container and decoder
    assert not plan_holds(plan, [t + 2.0 for t in plan.video_ms])
    assert not plan_holds(plan, plan.video_ms[:-1]) and not plan_holds(None, plan.video_ms)
    assert session_rejections(plan, truncated=False, video_duration_s=11.0, min_segment_s=3) == []


def test_the_container_plan_is_skipped_when_its_timestamps_cannot_be_trusted():
    telemetry, timeline, frames = _session()
    def probe(count: int) -> WebmInfo:
        return WebmInfo(frame_count=count, duration_ms=frames[-1], first_timestamp_ms=0.0, width=640, height=360,
                        codec_id="V_VP8", truncated=False, declared_duration_ms=None, timestamps_ms=tuple(frames))

    assert plan_from_container(probe(len(frames)), telemetry, timeline, SETTINGS) is not None
    short = probe(len(frames) + 1)  # laced blocks: fewer timestamps than frames
    assert plan_from_container(short, telemetry, timeline, SETTINGS) is None
    assert plan_from_container(None, telemetry, timeline, SETTINGS) is None


@pytest.mark.parametrize("seconds,truncated,expect", [
    (2.5, False, [processor_pb2.REJECTION_REASON_TOO_SHORT]),
    (12.0, True, [processor_pb2.REJECTION_REASON_VIDEO_TRUNCATED]),
])
def test_what_the_plan_says_against_a_session(seconds, truncated, expect):
    telemetry, timeline, frames = _session(seconds)
    plan = plan_session(frames, telemetry, timeline, SETTINGS)
    assert [r.reason for r in session_rejections(plan, truncated, seconds, 3.0)] == expect


def test_frames_the_telemetry_does_not_cover_are_a_mismatch_not_a_short_session():
    telemetry, timeline, frames = _session(6.0)
    frames = frames + [frames[-1] + k * 33.3 for k in range(1, 200)]  # video runs on long after the telemetry ends
    plan = plan_session(frames, telemetry, timeline, SETTINGS)
    reasons = [r for r in session_rejections(plan, False, frames[-1] / 1000, 3.0)]
    assert reasons and reasons[0].reason == processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH
    assert reasons[0].metric == "uncovered_frames" and reasons[0].end_frame > reasons[0].start_frame
