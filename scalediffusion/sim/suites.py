"""Route suites for the embedded evaluator: fixed routes through the default city, fixed seeds, versioned.

A suite is named ``<name>@<version>``; a version never changes once released (a report names the version it was
scored on). Difficulty grows with traffic, not with the routes: every suite drives the same routes, so scores are
comparable across suites.

  easy@1     empty streets: lights and stop signs only
  traffic@1  + 16 NPC vehicles
  dense@1    + 40 NPC vehicles and 24 pedestrians crossing
  smoke@1    one short route, empty streets: a quick check that the whole loop works (tests, demos)
"""

from __future__ import annotations

from dataclasses import dataclass

from scalediffusion.city.grid import GridSpec


@dataclass(frozen=True)
class RouteSpec:
    route_id: str
    nodes: tuple[str, ...]  # intersections, in order (each pair joined by a road)


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    version: int
    routes: tuple[RouteSpec, ...]
    npc_vehicles: int
    pedestrians: int
    seed: int
    world: GridSpec = GridSpec(npc_vehicles=0, pedestrians=0)  # the city's own timetable actors are replaced by traffic

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


# Grid nodes are i<avenue>_<street>: avenues 280 m apart (x), streets 80 m apart (y). Right turns, left turns,
# straight runs through lights and stop signs (i1_4 and i2_4 have stop signs in the default grid).
ROUTES_V1 = (
    RouteSpec("r0_north_right", ("i1_1", "i1_2", "i1_3", "i2_3")),
    RouteSpec("r1_east_left", ("i0_2", "i1_2", "i2_2", "i2_3", "i2_4")),
    RouteSpec("r2_south_straight", ("i2_6", "i2_5", "i2_4", "i2_3", "i2_2", "i2_1")),
    RouteSpec("r3_west_right", ("i3_5", "i2_5", "i1_5", "i1_6")),
    RouteSpec("r4_north_left", ("i1_3", "i1_4", "i1_5", "i0_5")),
    RouteSpec("r5_loop", ("i1_5", "i1_6", "i2_6", "i2_5", "i2_4")),
)

SUITES: dict[str, SuiteSpec] = {
    s.key: s
    for s in (
        SuiteSpec("easy", 1, ROUTES_V1, npc_vehicles=0, pedestrians=0, seed=101),
        SuiteSpec("traffic", 1, ROUTES_V1, npc_vehicles=16, pedestrians=0, seed=202),
        SuiteSpec("dense", 1, ROUTES_V1, npc_vehicles=40, pedestrians=24, seed=303),
        SuiteSpec("smoke", 1, (RouteSpec("s0_north", ("i1_1", "i1_2", "i1_3")),), npc_vehicles=0, pedestrians=0, seed=404),
    )
}


def suite(key: str) -> SuiteSpec:
    if key not in SUITES:
        raise KeyError(f"unknown suite {key!r}; known: {', '.join(sorted(SUITES))}")
    return SUITES[key]
