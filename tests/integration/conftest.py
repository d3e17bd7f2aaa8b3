"""Fixtures shared by the integration tests (the stack itself comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from scalediffusion import synthetic


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


