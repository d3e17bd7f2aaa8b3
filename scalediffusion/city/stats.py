"""Summary numbers of a World that the game computes too (clients/web/src/world/worldGeometry.ts worldStats):
the shared golden test that Python and the game see the same streets."""

from __future__ import annotations

import math

from scalediffusion.v1 import world_pb2


def world_stats(world: world_pb2.World) -> dict:
    return {
        "worldId": world.world_id,
        "version": world.version,
        "roadCount": len(world.roads),
        "roadLengthM": sum(math.hypot(r.end.x - r.start.x, r.end.y - r.start.y) for r in world.roads),
        "buildingCount": len(world.buildings),
        "intersectionCount": len(world.intersections),
        "intersections": [{"id": i.id, "x": i.position.x, "y": i.position.y} for i in sorted(world.intersections, key=lambda i: i.id)],
        "boundsMin": {"x": world.min.x, "y": world.min.y},
        "boundsMax": {"x": world.max.x, "y": world.max.y},
    }
