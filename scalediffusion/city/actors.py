"""Moving actors on looping timetables (World.actors): where each NPC vehicle and pedestrian is at world time t.
Pure; the game's src/world/actors.ts implements the same rule and is golden-tested against this one."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from scalediffusion.v1 import world_pb2


def actor_pose(track: world_pb2.ActorTrack, t: float) -> tuple[float, float, float]:
    """(x, y, heading) at world time t: keyframes interpolated at t mod period (linear position, heading the short
    way round); after the last keyframe the next one is keyframes[0] at period_s."""
    frames = track.keyframes
    if len(frames) == 1 or track.period_s <= 0:
        k = frames[0]
        return k.position.x, k.position.y, k.heading
    u = t % track.period_s
    times = [k.t_s for k in frames]
    i = bisect.bisect_right(times, u) - 1
    a = frames[i]
    b, tb = (frames[i + 1], frames[i + 1].t_s) if i + 1 < len(frames) else (frames[0], track.period_s)
    w = (u - a.t_s) / (tb - a.t_s) if tb > a.t_s else 0.0
    delta = math.atan2(math.sin(b.heading - a.heading), math.cos(b.heading - a.heading))
    return (
        a.position.x + w * (b.position.x - a.position.x),
        a.position.y + w * (b.position.y - a.position.y),
        a.heading + w * delta,
    )


@dataclass(frozen=True, slots=True)
class ActorPose:
    """Where a moving actor is at one time, with its size: what the game's actorPoses returns (ActorPose)."""

    id: str
    kind: int  # world_pb2.ActorKind
    x: float
    y: float
    heading: float  # radians, counter-clockwise from +x
    length_m: float
    width_m: float


# Sizes for tracks that leave length_m / width_m at 0 (DEFAULT_ACTOR_SIZE in actors.ts): (length, width).
DEFAULT_VEHICLE_SIZE_M = (4.6, 1.9)
DEFAULT_PEDESTRIAN_SIZE_M = (0.5, 0.5)


def actor_poses(world: world_pb2.World, t: float) -> list[ActorPose]:
    """Every actor with keyframes at world time t, in World order, with its size (defaults filled in)."""
    out = []
    for track in world.actors:
        if not track.keyframes:
            continue
        length, width = DEFAULT_PEDESTRIAN_SIZE_M if track.kind == world_pb2.ACTOR_KIND_PEDESTRIAN else DEFAULT_VEHICLE_SIZE_M
        x, y, heading = actor_pose(track, t)
        out.append(ActorPose(id=track.id, kind=track.kind, x=x, y=y, heading=heading,
                             length_m=track.length_m if track.length_m > 0 else length,
                             width_m=track.width_m if track.width_m > 0 else width))
    return out


def block_loop(track_id: str, corners: list[tuple[float, float]], speed_mps: float, turn_s: float, start_corner: int) -> world_pb2.ActorTrack:
    """A vehicle driving round a closed polygon of corners at constant speed, turning during the last turn_s
    before each corner (heading constant along each side)."""
    corners = corners[start_corner:] + corners[:start_corner]
    track = world_pb2.ActorTrack(id=track_id, kind=world_pb2.ACTOR_KIND_VEHICLE, length_m=4.5, width_m=1.9)
    t = 0.0
    for k, (x0, y0) in enumerate(corners):
        x1, y1 = corners[(k + 1) % len(corners)]
        length = math.hypot(x1 - x0, y1 - y0)
        heading = math.atan2(y1 - y0, x1 - x0)
        track.keyframes.add(t_s=round(t, 6), position=world_pb2.Point2(x=x0, y=y0), heading=round(heading, 9))
        straight = max(length - turn_s * speed_mps, 0.0)
        w = straight / length if length else 0.0
        t_straight = t + straight / speed_mps
        track.keyframes.add(
            t_s=round(t_straight, 6), position=world_pb2.Point2(x=round(x0 + w * (x1 - x0), 6), y=round(y0 + w * (y1 - y0), 6)), heading=round(heading, 9)
        )
        t += length / speed_mps
    track.period_s = round(t, 6)
    return track


def crossing(track_id: str, a: tuple[float, float], b: tuple[float, float], speed_mps: float, wait_s: float) -> world_pb2.ActorTrack:
    """A pedestrian waiting, crossing from a to b, waiting, and crossing back."""
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    out = math.atan2(b[1] - a[1], b[0] - a[0])
    back = math.atan2(a[1] - b[1], a[0] - b[0])
    walk = length / speed_mps
    track = world_pb2.ActorTrack(id=track_id, kind=world_pb2.ACTOR_KIND_PEDESTRIAN, length_m=0.5, width_m=0.5)
    for t, (x, y), heading in (
        (0.0, a, out),
        (wait_s, a, out),
        (wait_s + walk, b, out),
        (2 * wait_s + walk, b, back),
        (2 * wait_s + 2 * walk, a, back),
    ):
        track.keyframes.add(t_s=round(t, 6), position=world_pb2.Point2(x=x, y=y), heading=round(heading, 9))
    track.period_s = round(2 * wait_s + 2 * walk + 1.0, 6)  # turn round at a during the last second
    return track
