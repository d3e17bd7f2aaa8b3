"""The game's unit-test city (clients/web/src/world/fixtures/grid3x3.ts, built by gridWorld in
clients/web/src/world/gridWorld.ts), rebuilt here so the simulator's tests can assert what the game's
vehicle.test.ts and routing.test.ts assert, on the same streets. Building heights are a constant (the game varies
them by id; nothing tested here depends on height).

    y=200  i0_2 ── ew2_0 ── i1_2 ── ew2_1 ── i2_2
             │               │               │
           ns0_1           ns1_1           ns2_1
             │               │               │
    y=100  i0_1 ── ew1_0 ── i1_1 ── ew1_1 ── i2_1
             │               │               │
           ns0_0           ns1_0           ns2_0
             │               │               │
    y=0    i0_0 ── ew0_0 ── i1_0 ── ew0_1 ── i2_0
           x=0             x=100           x=200
"""

from __future__ import annotations

import math

from scalediffusion.v1 import world_pb2


def grid3x3(cols: int = 3, rows: int = 3, spacing: float = 100.0, road_width: float = 10.0, sidewalk: float = 3.0) -> world_pb2.World:
    s, w = spacing, road_width
    world = world_pb2.World(world_id=f"grid-{cols}x{rows}", name=f"{cols}x{rows} grid", version=1, light_cycle_s=60, light_yellow_s=3)
    world.min.x, world.min.y = -s / 2, -s / 2
    world.max.x, world.max.y = (cols - 1) * s + s / 2, (rows - 1) * s + s / 2
    roads_at: dict[str, list[str]] = {}

    def node(c: int, r: int) -> str:
        return f"i{c}_{r}"

    def add_road(rid: str, kind: int, a: tuple[int, int], b: tuple[int, int]) -> None:
        world.roads.add(id=rid, name=rid, kind=kind, start=world_pb2.Point2(x=a[0] * s, y=a[1] * s),
                        end=world_pb2.Point2(x=b[0] * s, y=b[1] * s), width_m=w, sidewalk_m=sidewalk, lanes_forward=1,
                        lanes_backward=1, from_intersection=node(*a), to_intersection=node(*b))
        for iid in (node(*a), node(*b)):
            roads_at.setdefault(iid, []).append(rid)

    for r in range(rows):
        for c in range(cols - 1):
            add_road(f"ew{r}_{c}", world_pb2.ROAD_KIND_STREET, (c, r), (c + 1, r))
    for c in range(cols):
        for r in range(rows - 1):
            add_road(f"ns{c}_{r}", world_pb2.ROAD_KIND_AVENUE, (c, r), (c, r + 1))
    for c in range(cols):
        for r in range(rows):
            corner = c in (0, cols - 1) and r in (0, rows - 1)
            inner = 0 < c < cols - 1 and 0 < r < rows - 1
            control = (world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT if inner
                       else world_pb2.INTERSECTION_CONTROL_STOP_SIGN if corner else world_pb2.INTERSECTION_CONTROL_NONE)
            world.intersections.add(id=node(c, r), position=world_pb2.Point2(x=c * s, y=r * s), control=control,
                                    road_ids=sorted(roads_at.get(node(c, r), [])), light_offset_s=(r * 7) % 60 if inner else 0)
    inset = w / 2 + sidewalk + 1
    for c in range(cols - 1):
        for r in range(rows - 1):
            x0, x1, y0, y1 = c * s + inset, (c + 1) * s - inset, r * s + inset, (r + 1) * s - inset
            world.buildings.add(id=f"b{c}_{r}", height_m=20.0, footprint=[
                world_pb2.Point2(x=x0, y=y0), world_pb2.Point2(x=x1, y=y0), world_pb2.Point2(x=x1, y=y1), world_pb2.Point2(x=x0, y=y1)])
    for r in range(rows):
        for c in range(cols - 1):
            world.parked.add(position=world_pb2.Point2(x=c * s + s / 2, y=r * s - (w / 2 - 1.2)), heading=0, length_m=4.6, width_m=1.9)
    for c in range(cols):
        world.spawn_points.add(position=world_pb2.Point2(x=c * s + w / 4, y=s * 0.25), heading=math.pi / 2, road_id=f"ns{c}_0")
    return world
