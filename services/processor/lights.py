"""Traffic-light labels per frame, from the world and the session's world clock. Pure (the world comes in).

The processor knows the world (by the telemetry's world_id) and, when the client recorded it, where the world's
clock stood at t_ms = 0 (Telemetry.world_clock_offset_ms). From a frame's pose and render time it follows:
- the lane the car drives in (sim.lanes.LaneMap.lane_at) and the metres left to that lane's stop line;
- what controls that stop line (a traffic light or a stop sign) and, for a light, its colour at the world time the
  image shows, by the game's own light rule (sim.geometry.light_color).

measurements.json gets, per frame:
- "light": the colour of the light the car is heading for when its stop line is within range_m, else "none"
  ("none" too for a stop sign, an uncontrolled junction, inside the junction box and off the lanes). This is the
  target of a policy's traffic-light head (TransFuser++'s auxiliary classification).
- "stop_ahead": {"intersection", "control" ("traffic_light" | "stop_sign"), "distance_m", "light"} for the next
  controlled stop line within range_m; absent otherwise. distance_m is from the vehicle's reference point.
Sessions without a world clock, or on a world this deployment does not know, get neither field: a label that
could be wrong is not written.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from scalediffusion.city.catalog import get_world
from scalediffusion.driving import LIGHT_CLASSES
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.traffic import LightClock
from scalediffusion.v1 import world_pb2

CONTROL_NAMES = {world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT: "traffic_light", world_pb2.INTERSECTION_CONTROL_STOP_SIGN: "stop_sign"}


@dataclass(frozen=True)
class LightSettings:
    # A light counts for a frame when its stop line is at most this far ahead: from 30 m at 8.5 m/s a car stops
    # with 1.2 m/s^2, and a lamp 30 m out is still a few pixels tall in a 256x144 frame.
    range_m: float = 30.0

    def validate(self) -> None:
        if not self.range_m > 0:
            raise ValueError("SD_LIGHT_RANGE_M must be > 0")

    def describe(self) -> dict:
        return {"range_m": self.range_m, "classes": list(LIGHT_CLASSES)}


@cache
def _world_lanes(world_id: str) -> tuple[LaneMap, LightClock] | None:
    world = get_world(world_id)
    return None if world is None else (LaneMap(world), LightClock(world))


class LightLabeler:
    def __init__(self, lanes: LaneMap, clock: LightClock, world_clock_offset_ms: float, settings: LightSettings) -> None:
        self.lanes, self.clock, self.offset_ms, self.settings = lanes, clock, world_clock_offset_ms, settings

    @classmethod
    def for_session(cls, telemetry, settings: LightSettings) -> LightLabeler | None:
        """The labeler for a session, or None when its telemetry has no world clock or names an unknown world."""
        if not telemetry.HasField("world_clock_offset_ms"):
            return None
        known = _world_lanes(telemetry.world_id)
        return None if known is None else cls(known[0], known[1], telemetry.world_clock_offset_ms, settings)

    def label(self, x: float, y: float, theta: float, t_ms: float) -> dict:
        """The frame's "light" (and "stop_ahead" when a controlled stop line is in range) at telemetry time t_ms."""
        found = self.lanes.lane_at(x, y, theta)
        if found is None:
            return {"light": "none"}
        seg, distance = found
        node = self.lanes.intersections[seg.to_node]
        if node.control not in CONTROL_NAMES or distance > self.settings.range_m:
            return {"light": "none"}
        stop = {"intersection": node.id, "control": CONTROL_NAMES[node.control], "distance_m": round(distance, 3)}
        if node.control != world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT:
            return {"light": "none", "stop_ahead": stop}
        color = self.clock.color(node.id, seg.axis, (t_ms + self.offset_ms) / 1000.0)
        return {"light": color, "stop_ahead": {**stop, "light": color}}
