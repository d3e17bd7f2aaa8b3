"""Frames on the wire <-> RGB arrays for the engine. Pure (bytes in, bytes out).

Clients send JPEG or PNG (Frame.content_type says which; empty means "look at the bytes"). A frame whose size is not
the stream's is resized to it (browsers capture at whatever their canvas is); the repainted frame goes back at the
stream's size in the client's format (JPEG quality 85).
"""

from __future__ import annotations

import cv2
import numpy as np

JPEG, PNG = "image/jpeg", "image/png"
CONTENT_TYPES = (JPEG, PNG)
MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_SIDE = 4096
JPEG_QUALITY = 85


class FrameError(ValueError):
    """A frame the service cannot read; the message says why (answered as INVALID_ARGUMENT)."""


def sniff(image: bytes) -> str | None:
    if image.startswith(b"\xff\xd8\xff"):
        return JPEG
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    return None


def decode_frame(image: bytes, content_type: str, width: int, height: int) -> tuple[np.ndarray, str]:
    """(RGB uint8 [height, width, 3], the content type to answer in)."""
    if not image:
        raise FrameError("frame.image is empty: send the render as JPEG or PNG bytes")
    if len(image) > MAX_IMAGE_BYTES:
        raise FrameError(f"frame.image is {len(image)} bytes; the limit is {MAX_IMAGE_BYTES}")
    declared = content_type.split(";")[0].strip().lower()
    if declared and declared not in CONTENT_TYPES:
        raise FrameError(f"content_type {content_type!r} is not supported; use {' or '.join(CONTENT_TYPES)}")
    actual = sniff(image)
    if actual is None:
        raise FrameError("frame.image is neither JPEG nor PNG (its first bytes match neither signature)")
    if declared and declared != actual:
        raise FrameError(f"content_type says {declared} but the bytes are {actual}")
    bgr = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FrameError(f"frame.image could not be decoded as {actual} (truncated or corrupt)")
    if bgr.shape[0] > MAX_SIDE or bgr.shape[1] > MAX_SIDE:
        raise FrameError(f"frame is {bgr.shape[1]}x{bgr.shape[0]}; sides are limited to {MAX_SIDE}")
    if bgr.shape[:2] != (height, width):
        shrinking = bgr.shape[0] * bgr.shape[1] > width * height
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.ascontiguousarray(bgr[:, :, ::-1]), actual


def encode_frame(rgb: np.ndarray, content_type: str) -> bytes:
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    if content_type == PNG:
        ok, buf = cv2.imencode(".png", bgr)
    else:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {rgb.shape} frame as {content_type}")
    return buf.tobytes()
