"""What a stream can have on this replica now: the frame size at OpenStream and the frame rate at every frame.

The replica repaints every open stream's frames in turns. By the scheduler's measured cost model a turn costs about
`seconds_per_unit * (the work of one frame of every open stream)` (work: pixels / 256²; batching across streams only
makes it cheaper, so this errs on the safe side). A new stream gets the largest size — the client's aspect ratio
kept, sides multiples of the engine's, never larger than asked — for which that turn fits both in `latency_share`
of the latency target (the rest is for codecs and the network) and in 1 / `min_fps`: a player is better served by
a smaller repainted frame scaled up at a few frames per second than by a sharp one that is always dropped. Below
`min_width` it stops shrinking and the stream gets the rate it can. The rate is one frame per turn, capped at
`max_fps`; as the measured cost rises under load, the rate each frame's reply advises falls, so clients slow down
before the scheduler has to drop their frames.

Before anything has been measured the offer is what was asked at `max_fps` (the service measures at warm-up, so
this only happens in tests). Pure: the costs come from the scheduler, the sizes from the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REFERENCE_PIXELS = 256 * 256  # one unit of scheduler work


@dataclass(frozen=True)
class AdmissionSettings:
    min_fps: float = 4.0  # the rate a new stream is sized for
    max_fps: float = 15.0  # never advise faster than this
    latency_share: float = 0.6  # of the latency target, what one turn of repainting may take
    min_width: int = 128  # never offer narrower than this (or than asked)

    def __post_init__(self) -> None:
        if not (0 < self.min_fps <= self.max_fps):
            raise ValueError(f"need 0 < min_fps <= max_fps, got {self.min_fps}, {self.max_fps}")
        if not (0 < self.latency_share <= 1):
            raise ValueError(f"latency_share must be in (0, 1], got {self.latency_share}")
        if self.min_width < 1:
            raise ValueError(f"min_width must be >= 1, got {self.min_width}")


@dataclass(frozen=True)
class Offer:
    width: int
    height: int
    frame_rate: float  # 0 when nothing has been measured yet


def work_of(width: int, height: int) -> float:
    return width * height / REFERENCE_PIXELS


def frame_rate(seconds_per_unit: float | None, turn_work: float, settings: AdmissionSettings) -> float:
    """Frames per second each stream gets when one turn holds `turn_work` units (0: unmeasured)."""
    if seconds_per_unit is None or seconds_per_unit <= 0 or turn_work <= 0:
        return 0.0
    return min(settings.max_fps, 1.0 / (seconds_per_unit * turn_work))


def offer(width: int, height: int, multiple: int, seconds_per_unit: float | None, open_work: float,
          latency_target_s: float, settings: AdmissionSettings, min_side: int = 64) -> Offer:
    """The size and rate for one more stream that asked for width x height (already normalised: multiples of
    `multiple`, at least `min_side`), with `open_work` units per turn already taken by the open streams."""
    if seconds_per_unit is None or seconds_per_unit <= 0:
        return Offer(width, height, 0.0)
    turn_s = min(settings.latency_share * latency_target_s, 1.0 / settings.min_fps)
    room = turn_s / seconds_per_unit - open_work  # units this stream may take per turn
    asked = work_of(width, height)
    scale = 1.0 if room >= asked else math.sqrt(max(room, 0.0) / asked)
    floor_w = min(width, max(settings.min_width, min_side))
    new_w = max(floor_w, int(width * scale) // multiple * multiple)
    new_w = max(new_w, min_side)

    def height_for(w: int) -> int:  # the aspect kept as nearly as the multiple allows
        return min(height, max(min_side, round(w * height / width / multiple) * multiple))

    new_h = height_for(new_w)
    while new_w - multiple >= floor_w and scale < 1.0 and work_of(new_w, new_h) > room:  # rounding went over
        new_w -= multiple
        new_h = height_for(new_w)
    return Offer(new_w, new_h, frame_rate(seconds_per_unit, open_work + work_of(new_w, new_h), settings))
