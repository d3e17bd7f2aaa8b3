"""Synthetic sessions for tests and benchmarks: a VP8 webm with textured moving content (OpenCV's VP80 writer,
like a browser's MediaRecorder output) and matching telemetry with scripted controls."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from scalediffusion.v1 import common_pb2, telemetry_pb2
from scalediffusion.vp8 import open_vp8_writer

ControlScript = Callable[[float], tuple[float, float, float]]


def textured_frame(index: int, width: int, height: int, rng_texture: np.ndarray) -> np.ndarray:
    """A frame of a scrolling texture with a moving bright box: real texture so blur/JPEG costs are realistic."""
    th, tw = rng_texture.shape[:2]
    dx = (index * 7) % tw
    dy = (index * 3) % th
    tiled = np.roll(np.roll(rng_texture, -dy, axis=0), -dx, axis=1)
    frame = cv2.resize(tiled, (width, height), interpolation=cv2.INTER_LINEAR)
    cx = int((0.5 + 0.4 * math.sin(index / 15.0)) * width)
    cy = int((0.5 + 0.3 * math.cos(index / 20.0)) * height)
    size = max(8, width // 12)
    cv2.rectangle(frame, (cx - size, cy - size), (cx + size, cy + size), (40, 220, 250), thickness=-1)
    cv2.putText(frame, f"{index:05d}", (10, height - 12), cv2.FONT_HERSHEY_SIMPLEX, max(0.5, width / 800), (255, 255, 255), 2)
    return frame


def draw_steer_marker(frame: np.ndarray, steer: float) -> None:
    """A vertical bar whose horizontal position shows the steering: a visible cue a policy can learn controls from."""
    height, width = frame.shape[:2]
    cx = int((0.5 + 0.4 * max(-1.0, min(1.0, steer))) * width)
    half = max(4, width // 20)
    cv2.rectangle(frame, (cx - half, 0), (cx + half, height - 1), (60, 255, 60), thickness=-1)


def write_vp8_webm(
    path: str | Path,
    seconds: float,
    fps: float = 30.0,
    width: int = 640,
    height: int = 360,
    seed: int = 0,
    script: ControlScript | None = None,
    lead_ms: float = 250.0,
) -> int:
    """Writes a VP8 webm; returns the number of frames written.

    With a control script, each frame also shows the steering the script gives at that frame's time on the
    telemetry clock (the video starts lead_ms in, as make_telemetry records), so the video carries the signal.

    Raises:
        RuntimeError: this OpenCV build cannot write VP8.
    """
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(96, 160, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(noise, (3, 3), 0)
    writer = open_vp8_writer(path, fps, width, height)
    frames = int(round(seconds * fps))
    try:
        for i in range(frames):
            frame = textured_frame(i, width, height, texture)
            if script is not None:
                draw_steer_marker(frame, script(lead_ms / 1000.0 + i / fps)[0])
            writer.write(frame)
    finally:
        writer.release()
    return frames


def right_turn_script(t_s: float) -> tuple[float, float, float]:
    """(steer, throttle, brake): straight for 2 s, hard right 2-4 s, then straight with a brake tap at 5-5.5 s."""
    if 2.0 <= t_s < 4.0:
        return 0.6, 0.5, 0.0
    if 5.0 <= t_s < 5.5:
        return 0.0, 0.0, 0.8
    return 0.0, 0.6, 0.0


def weave_script(period_s: float = 3.0, phase: float = 0.0, amplitude: float = 0.7) -> ControlScript:
    """Steering that sweeps left and right (a sine), steady throttle: every frame a different steer to learn."""

    def script(t_s: float) -> tuple[float, float, float]:
        return amplitude * math.sin(2 * math.pi * t_s / period_s + phase), 0.4, 0.0

    return script


DRAG_PER_M = 0.0041  # 1/m: (4 - 0.3) / 30^2, a 30 m/s top speed at full throttle


def make_telemetry(
    session_id: str,
    seconds: float,
    tick_hz: float = 60.0,
    script: ControlScript = right_turn_script,
    video_fps: float = 30.0,
    width: int = 640,
    height: int = 360,
    rtt_ms: float = 80.0,
    lead_ms: float = 250.0,
) -> telemetry_pb2.Telemetry:
    """Telemetry whose vehicle state integrates the scripted controls with a simple bicycle model.

    Like the game, telemetry starts before the recorder: the video starts lead_ms into the telemetry
    (recording_start_t_ms), so even the first frame's render time (one RTT before it was shown) is covered.
    The script runs on the telemetry clock."""
    telemetry = telemetry_pb2.Telemetry(
        schema_version=1, session_id=session_id, video_width=width, video_height=height, video_fps=video_fps,
        client_info="scalediffusion.synthetic", world_id="synthetic", recording_start_t_ms=lead_ms,
    )
    x = y = theta = speed = 0.0
    dt = 1.0 / tick_hz
    wheelbase = 2.7
    for i in range(int((seconds + lead_ms / 1000.0) * tick_hz) + 1):
        t = i * dt
        steer, throttle, brake = script(t)
        # Rolling resistance plus air drag: at full throttle the car tops out near 30 m/s however long it drives
        # (without drag a long session ran past the ingest's speed limit after ~69 s).
        speed = max(0.0, speed + (4.0 * throttle - 8.0 * brake - 0.3 - DRAG_PER_M * speed * speed) * dt)
        theta -= speed / wheelbase * math.tan(steer * 0.6) * dt  # positive steer turns right (clockwise)
        x += speed * math.cos(theta) * dt
        y += speed * math.sin(theta) * dt
        command = common_pb2.ROAD_OPTION_LANEFOLLOW
        if abs(steer) > 0.1:
            command = common_pb2.ROAD_OPTION_RIGHT if steer > 0 else common_pb2.ROAD_OPTION_LEFT
        tick = telemetry.ticks.add(t_ms=t * 1000.0, command=command)
        tick.controls.steer, tick.controls.throttle, tick.controls.brake = steer, throttle, brake
        tick.vehicle.x, tick.vehicle.y, tick.vehicle.theta, tick.vehicle.speed = x, y, theta, speed
        tick.camera.position.x, tick.camera.position.y, tick.camera.position.z = x, y, 1.5
        tick.camera.yaw, tick.camera.fov_deg = theta, 60.0
        if i % int(tick_hz / 2) == 0:
            telemetry.rtt_samples.add(t_ms=t * 1000.0, rtt_ms=rtt_ms)
    return telemetry
