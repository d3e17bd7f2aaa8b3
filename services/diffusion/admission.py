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

The size is renegotiated while the stream runs (`renegotiate`): the offer at OpenStream comes from the cost measured
on an idle replica, and on a machine that also runs the player's browser the same frame costs two to three times
as much. After every repainted frame the service recomputes the offer for the stream (its own work left out of
the open work) from the cost measured now; a stream shrinks when the offer is under `shrink_below` of its area and
grows back when the offer is at least `grow_above` times its area and it has run `grow_after_frames` frames at its
size (hysteresis, so measurement noise does not make it flap: each resize restarts the stream's KV cache). The reply tells the client the new size (TransformFrameResponse.width/height).

A frame's work is its pixels plus a fixed overhead per frame (`overhead` units: the codecs, the per-call work of the
model, measured at warm-up from two frame sizes, `frame_overhead`): a frame costs seconds_per_unit * (pixels + overhead).
Without it a small frame's measured cost per unit of pixels looks dear, so a shrinking stream is offered ever
smaller sizes (and a stale, dear estimate opens the next stream at the floor).

Before anything has been measured the offer is what was asked at `max_fps` (the service measures at warm-up, so
this only happens in tests). Pure: the costs come from the scheduler, the sizes from the request.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

REFERENCE_PIXELS = 256 * 256  # one unit of scheduler work


@dataclass(frozen=True)
class AdmissionSettings:
    # The rate a stream is sized for. Above what a player should see (4/s): the round trip never keeps a replica's
    # turn busy all the time (on 2 shared cores, sized for 4 the player saw ~3.2/s, sized for 5 4.2-4.4/s).
    min_fps: float = 5.0
    max_fps: float = 15.0  # never advise faster than this
    latency_share: float = 0.6  # of the latency target, what one turn of repainting may take
    min_width: int = 128  # never offer narrower than this (or than asked)
    shrink_below: float = 0.85  # renegotiate down when the offer's area is under this share of the stream's
    grow_above: float = 1.5  # renegotiate up when the offer's area is at least this multiple of the stream's
    grow_after_frames: int = 20  # ... and the stream has repainted this many frames at its current size

    def __post_init__(self) -> None:
        if not (0 < self.min_fps <= self.max_fps):
            raise ValueError(f"need 0 < min_fps <= max_fps, got {self.min_fps}, {self.max_fps}")
        if not (0 < self.latency_share <= 1):
            raise ValueError(f"latency_share must be in (0, 1], got {self.latency_share}")
        if self.min_width < 1:
            raise ValueError(f"min_width must be >= 1, got {self.min_width}")
        if not (0 < self.shrink_below < 1 < self.grow_above):
            raise ValueError(f"need 0 < shrink_below < 1 < grow_above, got {self.shrink_below}, {self.grow_above}")
        if self.grow_after_frames < 0:
            raise ValueError(f"grow_after_frames must be >= 0, got {self.grow_after_frames}")


@dataclass(frozen=True)
class Offer:
    width: int
    height: int
    frame_rate: float  # 0 when nothing has been measured yet


def work_of(width: int, height: int) -> float:
    return width * height / REFERENCE_PIXELS


def frame_overhead(reference_s: float, reference_work: float, small_s: float, small_work: float,
                   most: float = 2.0) -> float:
    """The fixed part of a frame's cost in units of work, from two frame sizes timed alike: with
    seconds = k * (overhead + work), overhead = (small_s * reference_work - reference_s * small_work) /
    (reference_s - small_s); clamped to [0, most] (timing noise can make two close sizes say anything)."""
    if reference_work <= small_work or reference_s <= 0 or small_s <= 0:
        raise ValueError("need reference_work > small_work and positive times")
    if reference_s <= small_s:  # the larger frame was no dearer: all overhead as far as this can tell
        return most
    overhead = (small_s * reference_work - reference_s * small_work) / (reference_s - small_s)
    return min(max(overhead, 0.0), most)


def frame_rate(seconds_per_unit: float | None, turn_work: float, settings: AdmissionSettings) -> float:
    """Frames per second each stream gets when one turn holds `turn_work` units (0: unmeasured)."""
    if seconds_per_unit is None or seconds_per_unit <= 0 or turn_work <= 0:
        return 0.0
    return min(settings.max_fps, 1.0 / (seconds_per_unit * turn_work))


def offer(width: int, height: int, multiple: int, seconds_per_unit: float | None, open_work: float,
          latency_target_s: float, settings: AdmissionSettings, min_side: int = 64, overhead: float = 0.0) -> Offer:
    """The size and rate for one more stream that asked for width x height (already normalised: multiples of
    `multiple`, at least `min_side`), with `open_work` units per turn already taken by the open streams (their
    overheads included) and `overhead` units per frame on top of the pixels."""
    if seconds_per_unit is None or seconds_per_unit <= 0:
        return Offer(width, height, 0.0)
    turn_s = min(settings.latency_share * latency_target_s, 1.0 / settings.min_fps)
    room = turn_s / seconds_per_unit - open_work - overhead  # units of pixels this stream may take per turn
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
    return Offer(new_w, new_h, frame_rate(seconds_per_unit, open_work + work_of(new_w, new_h) + overhead, settings))


def renegotiate(width: int, height: int, asked_width: int, asked_height: int, multiple: int,
                seconds_per_unit: float | None, other_work: float, latency_target_s: float,
                settings: AdmissionSettings, min_side: int = 64, frames_at_size: int | None = None,
                overhead: float = 0.0) -> tuple[int, int] | None:
    """A new size for an open stream of width x height that asked for asked_width x asked_height, given the cost
    measured now and `other_work` units per turn taken by the other open streams (overheads included); None to keep
    its size. frames_at_size: frames repainted since its last resize (None: no limit on growing)."""
    if seconds_per_unit is None or seconds_per_unit <= 0:
        return None
    new = offer(asked_width, asked_height, multiple, seconds_per_unit, other_work, latency_target_s, settings,
                min_side, overhead)
    area, new_area = width * height, new.width * new.height
    settled = frames_at_size is None or frames_at_size >= settings.grow_after_frames
    if new_area < settings.shrink_below * area or (new_area >= settings.grow_above * area and settled):
        return (new.width, new.height) if (new.width, new.height) != (width, height) else None
    return None
