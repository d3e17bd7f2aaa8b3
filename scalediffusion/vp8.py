"""Writing VP8 WebM video with OpenCV, as a browser's MediaRecorder produces it (bots and synthetic sessions).

OpenCV's FFmpeg backend prints "tag 0x30385056/'VP80' is not supported with codec id 139 and format 'webm / WebM'"
to the process's stderr (fprintf, not its logger) every time such a writer opens, then writes the file correctly
with the muxer's own tag; a fleet of bots printed a screen of it. The notice is swallowed here, and only there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2

_STDERR_LOCK = threading.Lock()  # fd 2 is process-wide: one redirection at a time


@contextlib.contextmanager
def _quiet_fd2() -> Iterator[None]:
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def open_vp8_writer(path: str | Path, fps: float, width: int, height: int) -> cv2.VideoWriter:
    """An open VP8 WebM writer (frames BGR uint8 [height, width, 3]). Raises RuntimeError when this OpenCV build
    cannot write VP8 (it needs the FFmpeg backend with libvpx)."""
    with _quiet_fd2():
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"VP80"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV could not open a VP80 writer (needs the FFmpeg backend with libvpx)")
    return writer
