"""Fixtures shared by the integration tests (the stack itself comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from scalediffusion import synthetic
from scalediffusion.uploader import upload_session
from tests.e2e.test_walking_skeleton import wait_for_report

# The processor of the test stack writes every accepted session into this dataset.
DATASET = "default"


@pytest.fixture(scope="session")
def small_session(tmp_path_factory):
    """A valid 2 s recording (video + telemetry), generated once."""
    path = tmp_path_factory.mktemp("small") / "v.webm"
    synthetic.write_vp8_webm(path, seconds=2.0, fps=15, width=160, height=96)
    return path.read_bytes(), synthetic.make_telemetry("", seconds=2.0, video_fps=15, width=160, height=96).SerializeToString()


def unique_video(video: bytes, salt: str) -> bytes:
    """The same recording with different bytes (a trailing EBML Void element), so duplicate detection stays out of the way."""
    payload = salt.encode()
    return video + b"\xec" + bytes([0x80 | len(payload)]) + payload


@pytest.fixture(scope="session")
def pipeline_sessions(stack, ingest, processor, tmp_path_factory):
    """Four 6 s sessions whose video shows the steering (weave scripts with different phases), uploaded and processed."""
    player = stack.auth("trainer-it")
    session_ids = []
    for i in range(4):
        script = synthetic.weave_script(period_s=2.5 + 0.5 * i, phase=1.3 * i)
        path = tmp_path_factory.mktemp("video") / "video.webm"
        synthetic.write_vp8_webm(path, seconds=6.0, fps=20, width=320, height=180, seed=i, script=script)
        telemetry = synthetic.make_telemetry("", seconds=6.5, script=script, video_fps=20, width=320, height=180)
        session_ids.append(upload_session(ingest, path.read_bytes(), telemetry.SerializeToString(), metadata=player).session_id)
    for session_id in session_ids:
        report = wait_for_report(processor, session_id)
        assert report.segments, f"session {session_id} produced no segment: {report}"
    return session_ids
