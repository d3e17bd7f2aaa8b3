"""Reads the render-time stamp the game draws across the top of each picture with ?stamp=on
(clients/web/src/game/stamp.ts) back from a processor output frame."""

from __future__ import annotations

import math

import cv2
import numpy as np

STAMP_BITS = 16
STAMP_HEIGHT = 1 / 14  # of the picture, as in stamp.ts


def read_stamp(jpeg: bytes) -> int | None:
    """The stamped value (render time in whole ms, low 16 bits), or None where a block is neither clearly black nor
    clearly white (no stamp, or a picture the codec smeared)."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        return None
    height, width = image.shape
    band = height * STAMP_HEIGHT
    rows = image[int(band * 0.3) : max(int(band * 0.3) + 1, int(band * 0.7))]
    value = 0
    for i in range(STAMP_BITS):
        x0, x1 = i * width / STAMP_BITS, (i + 1) * width / STAMP_BITS
        margin = (x1 - x0) * 0.3
        level = float(rows[:, int(x0 + margin) : int(x1 - margin)].mean())
        if 70 < level < 185:
            return None
        value = (value << 1) | int(level >= 185)
    return value


def stamp_error_ms(stamp: int, render_ms: float) -> int:
    """Signed difference stamp - render time (ms), modulo the stamp's 16 bits. The game rounds half up (JavaScript's
    Math.round) and measurements.json keeps 3 decimals, so an exact frame reads 0, or ±1 at a .5 boundary."""
    diff = (stamp - (math.floor(render_ms + 0.5) & 0xFFFF)) & 0xFFFF
    return diff - 0x10000 if diff >= 0x8000 else diff
