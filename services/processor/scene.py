"""What a frame is re-rendered from (the video check, labels by replay): the tick whose state it shows, its camera
and the moving actors the client drew. Pure.

The game draws the world's timetable actors (World.actors on the world clock); the bots draw their own traffic and
record it per drawn frame (Telemetry.drawn_actors). Either way the processor draws the same actors the player saw.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from scalediffusion.city.actors import actor_poses
from scalediffusion.v1 import telemetry_pb2, world_pb2

# Larger than any vehicle the clients draw: a recorded actor this big could hide the scene from the video check.
MAX_ACTOR_LENGTH_M = 20.0
MAX_ACTOR_WIDTH_M = 4.0


def check_drawn_actors(telemetry: telemetry_pb2.Telemetry) -> None:
    """Raises ValueError (the reason) when the recorded actors are not ones a client draws."""
    for frame in telemetry.drawn_actors:
        for a in frame.actors:
            numbers = (a.x, a.y, a.heading, a.length_m, a.width_m)
            if not all(math.isfinite(v) for v in numbers):
                raise ValueError(f"drawn actor {a.id!r} at t={frame.t_ms:.0f} ms has a non-finite pose or size")
            if not (0 < a.length_m <= MAX_ACTOR_LENGTH_M and 0 < a.width_m <= MAX_ACTOR_WIDTH_M):
                raise ValueError(f"drawn actor {a.id!r} at t={frame.t_ms:.0f} ms is {a.length_m:g} x {a.width_m:g} m: "
                                 f"at most {MAX_ACTOR_LENGTH_M:g} x {MAX_ACTOR_WIDTH_M:g} m")


class SceneActors:
    """The moving actors of a session's frames: its recorded drawn actors where it has them (the frame drawn at or
    before the time, else the first), else the world's timetable actors at world time (t_ms + offset) / 1000."""

    def __init__(self, telemetry: telemetry_pb2.Telemetry, world: world_pb2.World) -> None:
        self.world = world
        self.offset_ms = telemetry.world_clock_offset_ms if telemetry.HasField("world_clock_offset_ms") else 0.0
        self.frames = list(telemetry.drawn_actors)
        self.times = [f.t_ms for f in self.frames]

    def at(self, t_ms: float) -> Sequence:
        if self.frames:
            i = max(bisect.bisect_right(self.times, t_ms) - 1, 0)
            return list(self.frames[i].actors)
        return actor_poses(self.world, self.world_s(t_ms))

    def world_s(self, t_ms: float) -> float:
        """The world clock (lights, timetables) at telemetry time t_ms, in seconds."""
        return (t_ms + self.offset_ms) / 1000.0
