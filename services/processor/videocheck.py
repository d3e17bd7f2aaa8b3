"""The video check (anti-cheat): does the video show the drive its telemetry records? Pure, given a renderer.

The replay check proves the poses follow from the controls; it cannot see the video. A session whose telemetry is
genuine but whose video is another drive's (or the same video under telemetry moved to another route) passes it.
The processor knows the world, and the Python renderer (scalediffusion/sim/render.py) draws the game's view from a
recorded camera pose to about 1/255 of the game's own pixels. So, about once a second of each candidate segment, the
frame the player saw is compared with the city re-rendered from the camera pose of the tick it was rendered at:

- only raw frames (the game's own render, FrameAlignment.raw): a repainted frame shows the diffusion model's
  picture of the scene, not the renderer's colours;
- both images are reduced to a small grid of block means (VideoCheckSettings.compare_width across), which absorbs
  video compression, sub-pixel camera differences and the render-time error of a clock-aligned frame;
- a frame's agreement is the share of the re-render's textured blocks (facades, kerbs, markings, poles) whose mean
  colour in the video is within pixel_tolerance on every channel: sky and asphalt look alike on every street. Moving
  actors are not re-rendered (a bot's own traffic is not in the telemetry), so a genuine frame agrees less where
  cars pass;
- the segment's agreement is the median over its checked frames; below min_agreement the segment is rejected with
  REJECTION_REASON_VIDEO_MISMATCH and the metric video_agreement.

Measured (services/processor/README.md): genuine segments agree 0.92-1.0 (bots with traffic, browser drives through
turns); another drive's video at most 0.82; the same video under its poses moved 40-280 m mostly at most 0.80, but up
to 0.912 for an avenue seen from a block further along (it looks much alike): that case passes the 0.85 threshold.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from services.processor.align import FrameAlignment


@dataclass(frozen=True)
class VideoCheckSettings:
    enabled: bool = True
    every_s: float = 1.0  # one frame checked per this much of a segment's telemetry time
    compare_width: int = 64  # the block grid's width (its height keeps the frame's aspect)
    pixel_tolerance: int = 16  # 0..255 on each channel: a block's mean colour agrees within this
    min_texture: float = 8.0  # a block of the re-render is textured above this standard deviation (0..255)
    min_textured_blocks: int = 10
    # The top of the picture is left out: the browser end-to-end test's render-time stamp (clients/web/src/game/stamp.ts,
    # 1/14 of the height; never on for players) sits there.
    skip_top: float = 1 / 14
    # Re-renders from the ticks within this of a clock-aligned frame's render time (MediaRecorder and the bots place
    # frames by the recorder's clock, to within a frame or so), the nearest first; the best match counts.
    search_ms: float = 100.0
    # ... and a frame placed by its frame record, from the ticks this close to its render time (a record's time and
    # the tick's can differ by a rounding; the nearest is tried first).
    exact_search_ms: float = 20.0
    enough: float = 0.98  # a re-render agreeing this well ends the search for a frame
    # A segment's median agreement below this: the video is not the drive. Measured (README): genuine segments of bot
    # drives 0.954-1.0 and of browser drives 0.92-0.998 (0.92 in CI's browser on a loaded machine); another drive's
    # video at most 0.82; the same video under its poses moved 40-280 m mostly 0.13-0.80, but up to 0.912 for a drive
    # down an avenue moved a block along it. A genuine player must not lose a drive: the threshold sits below the
    # genuine range, and lets that avenue case through.
    min_agreement: float = 0.85
    min_frames: int = 2  # fewer checkable (raw) frames than this: the segment is not judged

    def validate(self) -> None:
        if not (self.every_s > 0 and 8 <= self.compare_width <= 1024 and 0 <= self.pixel_tolerance <= 255 and self.min_texture >= 0):
            raise ValueError("video check: every_s > 0, compare_width in [8, 1024], pixel_tolerance in [0, 255]")
        if not 0 <= self.min_agreement <= 1:
            raise ValueError("SD_VIDEO_MIN_AGREEMENT must be in [0, 1]")


@dataclass(frozen=True)
class VideoCheckResult:
    checked: int  # frames compared
    agreements: tuple[float, ...]  # per checked frame, in frame order
    frames: tuple[int, ...]  # their indices in the segment

    @property
    def agreement(self) -> float:
        """The segment's agreement: the median over its checked frames (1.0 when none was checked)."""
        return statistics.median(self.agreements) if self.agreements else 1.0

    def failed(self, s: VideoCheckSettings) -> bool:
        return self.checked >= s.min_frames and self.agreement < s.min_agreement

    def detail(self, s: VideoCheckSettings) -> str:
        worst = min(range(len(self.agreements)), key=self.agreements.__getitem__) if self.agreements else 0
        return (f"the video does not show the recorded drive: {self.checked} frames re-rendered from their camera poses "
                f"agree {self.agreement:.0%} in the median (at least {s.min_agreement:.0%} needed; "
                f"worst {min(self.agreements, default=1.0):.0%} at frame {self.frames[worst] if self.frames else 0})")


def block_stats(image: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(block means (h, width, 3), block standard deviation (h, width), the largest over the channels) of an
    image (H, W, 3) on a grid `width` wide that keeps the aspect."""
    h, w = image.shape[:2]
    size = (width, max(1, round(width * h / w)))
    f = image.astype(np.float32)
    mean = cv2.resize(f, size, interpolation=cv2.INTER_AREA)
    square = cv2.resize(f * f, size, interpolation=cv2.INTER_AREA)
    return mean, np.sqrt(np.maximum(square - mean * mean, 0.0)).max(axis=2)


def frame_agreement(video_rgb: np.ndarray, render_rgb: np.ndarray, s: VideoCheckSettings) -> float | None:
    """Among the re-render's textured blocks (facades, kerbs, markings, poles: standard deviation above
    s.min_texture), the share whose mean colour in the video is within s.pixel_tolerance on every channel. Sky and
    asphalt look alike all over the city and would let another street's video agree; what stands on them does not.
    None when the re-render has fewer than s.min_textured_blocks textured blocks (nothing to compare)."""
    render_mean, render_std = block_stats(render_rgb, s.compare_width)
    video_mean, _ = block_stats(video_rgb, s.compare_width)
    textured = render_std > s.min_texture
    textured[: math.ceil(textured.shape[0] * s.skip_top)] = False
    if int(textured.sum()) < s.min_textured_blocks:
        return None
    agrees = np.all(np.abs(video_mean - render_mean) <= s.pixel_tolerance, axis=2)
    return float(agrees[textured].mean())


def frames_to_check(frames: Sequence[int], aligned: Sequence[FrameAlignment], s: VideoCheckSettings) -> list[int]:
    """Indices into `frames` of the raw frames to compare: the first, then one per s.every_s of render time."""
    out: list[int] = []
    next_ms = -math.inf
    for k, f in enumerate(frames):
        a = aligned[f]
        if a.raw and a.covered and a.render_ms >= next_ms:
            out.append(k)
            next_ms = a.render_ms + s.every_s * 1000.0
    return out


def check_segment(frames: Sequence[int], aligned: Sequence[FrameAlignment], video_rgb: Callable[[int], np.ndarray],
                  rendered_rgb: Callable[[int, int, int], Iterable[np.ndarray]], s: VideoCheckSettings) -> VideoCheckResult:
    """Compares a segment's sampled raw frames with re-renders (frames with nothing textured to compare are left out). video_rgb(frame) is the decoded frame (RGB);
    rendered_rgb(frame, width, height) yields re-renders of the city at that size from the camera poses of the ticks
    around the frame's render time, the most likely first; the frame's agreement is the best of them (the search
    stops at one that agrees VideoCheckSettings.enough)."""
    picked = frames_to_check(frames, aligned, s)
    agreements, checked = [], []
    for k in picked:
        video = video_rgb(frames[k])
        # The best of the re-renders around the frame's render time (a clock-aligned frame's time is known to a frame
        # or so, and a pose a tick off in a turn shifts every facade edge): tried in order until one agrees.
        agreement: float | None = None
        for render in rendered_rgb(frames[k], video.shape[1], video.shape[0]):
            score = frame_agreement(video, render, s)
            if score is not None and (agreement is None or score > agreement):
                agreement = score
            if agreement is not None and agreement >= s.enough:
                break
        if agreement is not None:
            agreements.append(agreement)
            checked.append(k)
    return VideoCheckResult(checked=len(checked), agreements=tuple(agreements), frames=tuple(checked))
