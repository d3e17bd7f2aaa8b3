"""Players' streams: the config the server applies, per-stream state, limits and idle eviction. Pure (time passed in).

A stream is opened with a StreamConfig; the server fills defaults and clamps values (and says so in the response),
keeps the stream's engine state (its KV caches, motion history, seeds) until it is closed or idle for longer than
idle_timeout_s, and refuses new streams beyond max_streams (the GPU's memory holds that many caches).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from scalediffusion.v1 import diffusion_pb2
from services.diffusion.engine.styles import STYLE_NAMES

STYLES = STYLE_NAMES
DEFAULT_STYLE = "photoreal-day"
MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE = 64, 1024, 16
DEFAULT_SIDE = 256


class StreamError(ValueError):
    """A request the stream registry refuses; `code` names the gRPC status it maps to."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalise_config(config: diffusion_pb2.StreamConfig, side_multiple: int = SIDE_MULTIPLE,
                     prompts: bool = False, default_steps: int = 1, default_strength: float = 0.7
                     ) -> diffusion_pb2.StreamConfig:
    """Defaults filled and values clamped: the config the server will apply (returned to the client). Sides are
    rounded down to the engine's pixel multiple; a prompt is kept only when the model reads prompts (prompts=True),
    otherwise it comes back empty so the client sees it was not applied."""
    style = config.style or DEFAULT_STYLE
    if style not in STYLES:
        raise StreamError("INVALID_ARGUMENT", f"unknown style {style!r}; known: {', '.join(STYLES)}")

    def side(value: int) -> int:
        value = value or DEFAULT_SIDE
        value = max(MIN_SIDE, min(MAX_SIDE, value))
        return max(MIN_SIDE, (value // side_multiple) * side_multiple)

    if config.strength < 0 or config.strength != config.strength:
        raise StreamError("INVALID_ARGUMENT", f"strength must be in (0, 1] (0 for the default), got {config.strength}")
    strength = config.strength if config.strength > 0 else default_strength
    return diffusion_pb2.StreamConfig(
        style=style, prompt=config.prompt[:500] if prompts else "", width=side(config.width), height=side(config.height),
        steps=max(1, min(4, config.steps or default_steps)), strength=min(1.0, strength),
        seed=config.seed or secrets.randbits(48),
    )


def engine_options(config: diffusion_pb2.StreamConfig) -> dict:
    """StreamEngine.new_stream's arguments for an applied (normalised) config; strength is the base that
    motion-aware noise lowers on fast motion."""
    return {"style": config.style, "seed": config.seed, "steps": config.steps, "strength": config.strength,
            "motion_aware": True}


CLIENT_TIMES_KEPT = 64  # frames of a stream whose client times are remembered (far more than ever in flight)


@dataclass
class StreamState:
    stream_id: str
    config: diffusion_pb2.StreamConfig
    opened_at: float
    last_used: float
    engine_state: object = None  # what the engine keeps per stream (caches, motion, generator)
    frames: int = 0
    dropped: int = 0
    last_seq: int = -1
    in_flight: int = field(default=0)  # frames submitted and not yet answered; such a stream is never idle
    asked: tuple[int, int] = (0, 0)  # the size the client asked for (renegotiation never goes above it)
    resized: int = 0  # times the size was renegotiated
    frames_at_resize: int = 0  # the stream's frame count at its last resize
    client_times: dict[int, float] = field(default_factory=dict)  # seq -> client_t_ms of recent frames

    def remember_client_time(self, seq: int, client_t_ms: float) -> None:
        """Kept for the stream batch, whose replies carry an earlier frame: its echo needs that frame's time."""
        self.client_times[seq] = client_t_ms
        while len(self.client_times) > CLIENT_TIMES_KEPT:
            self.client_times.pop(next(iter(self.client_times)))

    def client_time(self, seq: int, default: float) -> float:
        return self.client_times.get(seq, default)


class StreamRegistry:
    def __init__(self, max_streams: int, idle_timeout_s: float) -> None:
        self.max_streams, self.idle_timeout_s = max_streams, idle_timeout_s
        self.streams: dict[str, StreamState] = {}

    def open(self, config: diffusion_pb2.StreamConfig, now: float, engine_state: object = None) -> StreamState:
        if len(self.streams) >= self.max_streams:
            raise StreamError("RESOURCE_EXHAUSTED", f"this server holds {self.max_streams} streams, all in use; retry later or on another replica")
        stream = StreamState(f"st-{secrets.token_hex(8)}", config, now, now, engine_state)
        self.streams[stream.stream_id] = stream
        return stream

    def get(self, stream_id: str, now: float) -> StreamState:
        stream = self.streams.get(stream_id)
        if stream is None:
            raise StreamError("NOT_FOUND", f"stream {stream_id!r} is not open here (closed, idle for over {self.idle_timeout_s:.0f} s, or on another replica)")
        stream.last_used = now
        return stream

    def close(self, stream_id: str) -> StreamState:
        stream = self.streams.pop(stream_id, None)
        if stream is None:
            raise StreamError("NOT_FOUND", f"stream {stream_id!r} is not open here")
        return stream

    def evict_idle(self, now: float) -> list[StreamState]:
        idle = [s for s in self.streams.values() if s.in_flight == 0 and now - s.last_used > self.idle_timeout_s]
        for stream in idle:
            del self.streams[stream.stream_id]
        return idle
