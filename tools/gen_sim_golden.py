"""Write the simulator's golden fixture, clients/web/src/sim/fixtures/sim_golden.json: what the Python ports of the
game's vehicle model and routing (scalediffusion/sim/vehicle.py, scalediffusion/sim/routing.py) compute for fixed
inputs in the default city. The game's clients/web/src/sim/golden.test.ts runs its own vehicle.ts / routing.ts on the
same inputs (the world from src/world/fixtures/golden_world.json) and expects the same outputs, so the embedded
simulator drives the car players drive and gives the commands players see.

    python tools/gen_sim_golden.py     # after changing either side's vehicle model or routing, or the city

tests/unit/test_sim_vehicle.py fails while the committed fixture differs from what this writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalediffusion.city.grid import GridSpec, manhattan_grid
from scalediffusion.sim import routing
from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.geometry_core import Vec2, road_frame
from scalediffusion.v1 import world_pb2

OUT = Path(__file__).resolve().parents[1] / "clients" / "web" / "src" / "sim" / "fixtures" / "sim_golden.json"
DT = 1 / 60
# Field names that differ between the ports beyond snake_case vs camelCase (`from` is a Python keyword).
RENAMED = {"from_node": "from", "to_node": "to"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_json(value: object) -> object:
    """A port's result as the game's object: dataclass fields in camelCase, tuples as arrays."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {RENAMED.get(f.name, camel(f.name)): to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def drive_json(d: vm.DriveInput) -> dict:
    return {"steer": d.steer, "throttle": d.throttle, "brake": d.brake, "reverse": d.reverse}


def state(x: float, y: float, theta: float = 0.0, speed: float = 0.0) -> vm.VehicleState:
    return vm.VehicleState(x=x, y=y, theta=theta, speed=speed)


def drive(steer: float = 0.0, throttle: float = 0.0, brake: float = 0.0, reverse: bool = False) -> vm.DriveInput:
    return vm.DriveInput(steer=steer, throttle=throttle, brake=brake, reverse=reverse)


# ---- (a) vehicle dynamics ------------------------------------------------------------------------------------


SCRIPTS: list[tuple[str, vm.VehicleState, list[tuple[vm.DriveInput, int]], int]] = [
    # name, start, phases (input, steps), record every n steps
    ("accelerate from rest", state(0, 0), [(drive(throttle=1), 600)], 20),
    ("accelerate at speed (power-limited)", state(10, -5, 0.3, 30), [(drive(throttle=1), 300)], 20),
    ("brake to a stop and stay stopped", state(0, 0, 1.0, 20), [(drive(brake=1), 240), (drive(brake=1), 60)], 10),
    ("coast to a stop", state(0, 0, -2.0, 1), [(drive(), 300)], 20),
    ("full lock right at 3 m/s", state(0, 0, 0, 3), [(drive(steer=1, throttle=0.2), 300)], 10),
    ("full lock right at 8 m/s", state(0, 0, 0, 8), [(drive(steer=1, throttle=0.3), 300)], 10),
    ("full lock right at 15 m/s", state(0, 0, 0, 15), [(drive(steer=1, throttle=0.5), 300)], 10),
    ("full lock right at 30 m/s", state(0, 0, 0, 30), [(drive(steer=1, throttle=0.6), 300)], 10),
    ("full lock left at 8 m/s (steer sign)", state(0, 0, 0, 8), [(drive(steer=-1, throttle=0.3), 300)], 10),
    ("heading wraps through pi", state(5, 5, 3.1, 8), [(drive(steer=-1, throttle=0.3), 240)], 10),
    ("weave", state(100, 200, -1.2, 0), [(drive(steer=0.5, throttle=0.8), 120), (drive(steer=-0.37, throttle=0.5), 120),
                                         (drive(brake=0.5), 60), (drive(steer=1, throttle=0.2), 120)], 15),
    ("reverse from rest", state(0, 0), [(drive(throttle=1, reverse=True), 600)], 20),
    ("reverse gear while rolling forward", state(0, 0, 0.5, 3), [(drive(throttle=1, reverse=True), 300)], 5),
    ("forward gear while rolling backward", state(0, 0, 0, -4), [(drive(throttle=1), 240)], 5),
    ("reverse with full lock", state(0, 0, 0, 0), [(drive(steer=1, throttle=0.7, reverse=True), 300)], 10),
    ("brake in reverse", state(0, 0, 2.0, -5), [(drive(brake=1, reverse=True), 60)], 5),
    ("out-of-range inputs are clamped", state(0, 0, 0, 10), [(drive(steer=5, throttle=9, brake=-3), 120)], 10),
]


def run_script(start: vm.VehicleState, phases: list[tuple[vm.DriveInput, int]], every: int) -> list:
    total = sum(n for _, n in phases)
    s, count, states = start, 0, []
    for d, n in phases:
        for _ in range(n):
            s = vm.step(s, d, DT)
            count += 1
            if count % every == 0 or count == total:
                states.append(to_json(s))
    return states


def vehicle_section() -> dict:
    speeds = [0, 0.00001, 1, 3, 4.4, 5, 8, 12.5, 20, 30, 40, -3, -8]
    inputs = [drive(throttle=1), drive(throttle=0.35), drive(throttle=1, reverse=True), drive(throttle=-1), drive(throttle=2)]
    angles = [0, 0.5, math.pi, -math.pi, 3 * math.pi / 2, -3 * math.pi / 2, 7, -7, 100.25, -1000.5, 2 * math.pi, 1e-12]
    single = [(state(1, 2, 0.5, 0), drive(steer=1), DT), (state(1, 2, 0.5, 7), drive(throttle=1), 0), (state(1, 2, 0.5, 7), drive(throttle=1), -1),
              (state(-3, 4, -2.5, 12), drive(steer=-0.25, brake=0.2), 0.1), (state(0, 0, 0, 39.99), drive(throttle=1), 0.5)]
    return {
        "dt": DT,
        "params": to_json(vm.DEFAULT_PARAMS),
        "scripts": [{"name": name, "start": to_json(start), "phases": [{"input": drive_json(d), "steps": n} for d, n in phases],
                     "recordEvery": every, "states": run_script(start, phases, every)} for name, start, phases, every in SCRIPTS],
        "maxSteerAngle": [{"speed": v, "value": vm.max_steer_angle(v)} for v in speeds],
        "driveAccel": [{"speed": v, "input": drive_json(d), "value": vm.drive_accel(v, d)} for v in speeds for d in inputs],
        "normaliseAngle": [{"angle": a, "value": vm.normalise_angle(a)} for a in angles],
        "step": [{"state": to_json(s), "input": drive_json(d), "dt": dt, "next": to_json(vm.step(s, d, dt))} for s, d, dt in single],
    }


# ---- (b) collisions ------------------------------------------------------------------------------------------


def collides_cases(world: world_pb2.World, cw: vm.CollisionWorld) -> list:
    cases: list[tuple[str, vm.VehicleState]] = []
    for k, sp in enumerate(world.spawn_points[:4]):
        cases.append((f"spawn {k}: clear", state(sp.position.x, sp.position.y, sp.heading)))
    for b in list(world.buildings)[::37]:
        xs, ys = [p.x for p in b.footprint], [p.y for p in b.footprint]
        cases.append((f"inside building {b.id}", state(sum(xs) / len(xs), sum(ys) / len(ys), 0.7)))
        cases.append((f"nose into building {b.id}", state(min(xs) - 2.2, (min(ys) + max(ys)) / 2, 0.0)))
        cases.append((f"just short of building {b.id}", state(min(xs) - 2.31, (min(ys) + max(ys)) / 2, 0.0)))
    for i, v in list(enumerate(world.parked))[::23]:
        cases.append((f"on parked-{i}", state(v.position.x, v.position.y, v.heading + 0.2)))
        cases.append((f"behind parked-{i}", state(v.position.x - math.cos(v.heading) * 4.5, v.position.y - math.sin(v.heading) * 4.5, v.heading)))
        cases.append((f"beside parked-{i}", state(v.position.x, v.position.y + 2.5 * (1 if v.heading == 0 else -1), v.heading)))
    cases += [("outside west", state(world.min.x - 10, 0)), ("nose over the south edge", state(0, world.min.y + 2.0, -math.pi / 2)),
              ("touching the east edge", state(world.max.x - 2.29, 100, 0)), ("inside the east edge", state(world.max.x - 2.31, 0, 0))]
    rng = random.Random(2024)
    for k in range(80):
        cases.append((f"random {k}", state(rng.uniform(world.min.x, world.max.x), rng.uniform(world.min.y, world.max.y), rng.uniform(-math.pi, math.pi))))
    for k in range(120):
        road = world.roads[rng.randrange(len(world.roads))]
        f = road_frame(road)
        along = rng.uniform(-5, f.length + 5)
        across = rng.uniform(-1, 1) * (road.width_m / 2 + road.sidewalk_m + 2)
        heading = math.atan2(f.u.y, f.u.x) + rng.choice((0.0, math.pi)) + rng.gauss(0, 0.3)
        cases.append((f"near road {road.id} {k}", state(f.start.x + f.u.x * along + f.n.x * across, f.start.y + f.u.y * along + f.n.y * across, heading)))
    out = [{"label": label, "state": to_json(s), "expected": to_json(vm.collides(s, cw))} for label, s in cases]
    kinds = {c["expected"]["kind"] if c["expected"] else None for c in out}
    assert kinds == {None, "building", "parked", "bounds"}, kinds
    return out


ACTOR_TIMES = [0.0, 21.9, 44.4]


def actor_cases(world: world_pb2.World) -> list:
    out = []
    for t in ACTOR_TIMES:
        poses = vm.actor_poses(world, t)
        cases = []
        for a in poses:
            c, s = math.cos(a.heading), math.sin(a.heading)
            for label, ahead, left, theta in (("on", 0.0, 0.0, 0.4), ("nose to tail", a.length_m / 2 + 2.3 - 0.05, 0.0, a.heading),
                                              ("just ahead", a.length_m / 2 + 2.3 + 0.05, 0.0, a.heading),
                                              ("crossing", a.length_m / 2 + 0.9, 0.0, a.heading + math.pi / 2),
                                              ("alongside", 0.0, a.width_m / 2 + 1.0, a.heading), ("far", 30.0, 30.0, 0.0)):
                car = state(a.x + c * ahead - s * left, a.y + s * ahead + c * left, theta)
                cases.append({"label": f"{label} {a.id}", "state": to_json(car), "expected": to_json(vm.actor_collision(car, poses))})
        out.append({"t": t, "cases": cases})
    hits = {c["expected"] is not None for group in out for c in group["cases"]}
    assert hits == {True, False}
    return out


def drive_with_collisions(world, cw, start, phases, every, start_time_s):
    """Steps with collisions; actors (when start_time_s is not None) at start_time_s + k * dt before step k."""
    total = sum(n for _, n in phases)
    s, count, states, events = start, 0, [], []
    for d, n in phases:
        for _ in range(n):
            actors = vm.actor_poses(world, start_time_s + count * DT) if start_time_s is not None else []
            r = vm.step_with_collisions(s, d, DT, cw, vm.DEFAULT_PARAMS, actors)
            s = r.state
            count += 1
            if r.collision is not None:
                last = events[-1] if events else None
                if last and last[1] == count - 1 and last[2] == r.collision.kind and last[3] == r.collision.id:
                    last[1] = count
                else:
                    events.append([count, count, r.collision.kind, r.collision.id])
            if count % every == 0 or count == total:
                states.append(to_json(s))
    return states, events


def npc_in_the_way(world: world_pb2.World, cw: vm.CollisionWorld) -> tuple[float, vm.VehicleState]:
    """A time and a place 14 m ahead of an NPC vehicle, facing it and clear of everything else (the first found)."""
    for t in (30.0, 41.0, 52.0, 63.0, 74.0, 85.0):
        for a in vm.actor_poses(world, t):
            if a.kind != world_pb2.ACTOR_KIND_VEHICLE:
                continue
            s = state(a.x + math.cos(a.heading) * 14, a.y + math.sin(a.heading) * 14, a.heading + math.pi)
            if vm.collides(s, cw) is None and vm.actor_collision(s, vm.actor_poses(world, t)) is None:
                return t, s
    raise AssertionError("no NPC with a clear road ahead")


def step_with_collisions_cases(world: world_pb2.World, cw: vm.CollisionWorld) -> list:
    sp = world.spawn_points[0]
    parked = world.parked[0]
    npc_t, npc_start = npc_in_the_way(world, cw)
    ped_track = next(a for a in world.actors if a.kind == world_pb2.ACTOR_KIND_PEDESTRIAN)
    pa, pb = ped_track.keyframes[1].position, ped_track.keyframes[2].position  # waits at a, then walks to b
    scenarios = [
        ("spawn, throttle and steer right into a building", state(sp.position.x, sp.position.y, sp.heading), [(drive(steer=0.3, throttle=1), 600)], 20, None, "building"),
        ("up behind a parked car", state(parked.position.x - math.cos(parked.heading) * 14, parked.position.y - math.sin(parked.heading) * 14, parked.heading),
         [(drive(throttle=0.5), 240), (drive(throttle=1, reverse=True), 60)], 10, None, "parked"),
        ("south off the edge of the world", state(140, 0, -math.pi / 2), [(drive(throttle=1), 600)], 20, None, "bounds"),
        ("standing in an NPC's way, then backing out", npc_start, [(drive(brake=1), 180), (drive(throttle=1, reverse=True), 120)], 10, npc_t, "actor"),
        ("standing on a crosswalk, then driving on", state((pa.x + pb.x) / 2, (pa.y + pb.y) / 2, math.pi / 2),
         [(drive(brake=1), 60 * 12), (drive(throttle=0.5), 120)], 30, 0.0, "actor"),
    ]
    out = []
    for label, start, phases, every, t0, expect in scenarios:
        states, events = drive_with_collisions(world, cw, start, phases, every, t0)
        assert any(e[2] == expect for e in events), (label, events)
        out.append({"label": label, "start": to_json(start), "phases": [{"input": drive_json(d), "steps": n} for d, n in phases],
                    "recordEvery": every, "startTimeS": t0, "states": states, "events": events})
    return out


# ---- (c) routing ---------------------------------------------------------------------------------------------


ONE_WAY = {"st0_0": {"lanesForward": 0}, "ave1_2": {"lanesBackward": 0}, "st3_1": {"lanesForward": 0, "lanesBackward": 0}}
PAIRS = [("i0_0", "i3_7"), ("i3_7", "i0_0"), ("i1_1", "i2_6"), ("i0_0", "i1_0"), ("i1_0", "i0_0"), ("i2_3", "i2_3"),
         ("i0_7", "i3_0"), ("i1_2", "i1_3"), ("i1_3", "i1_2"), ("i0_0", "nowhere"), ("nowhere", "i0_0")]


def with_one_way(world: world_pb2.World) -> world_pb2.World:
    w = world_pb2.World()
    w.CopyFrom(world)
    for road in w.roads:
        for field, value in ONE_WAY.get(road.id, {}).items():
            setattr(road, {"lanesForward": "lanes_forward", "lanesBackward": "lanes_backward"}[field], value)
    return w


def graph_json(graph: routing.RoadGraph) -> dict:
    return {"nodeOrder": list(graph.nodes), "nodes": to_json(graph.nodes), "edges": to_json(graph.edges)}


def edge_sample(route: routing.Route, hint: int) -> dict:
    """Navigation and target point at (3, 4) on a one-point or empty route (target: that point, or None)."""
    nav = routing.navigate(route, Vec2(3.0, 4.0), hint)
    return {"pos": {"x": 3.0, "y": 4.0}, "hint": hint, "nav": to_json(nav), "target": to_json(routing.target_point(route, nav))}


def navigation_samples(route: routing.Route, rng: random.Random, approach_m: float | None, exit_m: float | None) -> list:
    """Positions about every 20 m along the route, pushed off it by varied amounts, tracked with the previous segment as
    the hint (as a driver would), and some cold (hint 0 or far off)."""
    options = {k: v for k, v in (("approach_m", approach_m), ("exit_m", exit_m)) if v is not None}
    samples, hint, s = [], 0, -8.0
    offsets = [0.0, 2.5, -4.0, 0.5, 12.0, -1.5, 30.0, -60.0]
    k = 0
    while s <= route.length_m + 8:
        i = max([j for j, c in enumerate(route.cumulative) if c <= max(s, 0)] or [0])
        i = min(i, len(route.points) - 2)
        a, b = route.points[i], route.points[i + 1]
        seg = math.hypot(b.x - a.x, b.y - a.y) or 1.0
        ux, uy = (b.x - a.x) / seg, (b.y - a.y) / seg
        along = s - route.cumulative[i]
        off = offsets[k % len(offsets)]
        pos = Vec2(a.x + ux * along - uy * off, a.y + uy * along + ux * off)
        for h in ((hint, 0) if k % 8 == 0 else (hint,)):
            nav = routing.navigate(route, pos, h, **options)
            samples.append({"pos": to_json(pos), "hint": h, "nav": to_json(nav), "target": to_json(routing.target_point(route, nav))})
        hint = routing.navigate(route, pos, hint, **options).segment
        s += 20.0 + rng.uniform(-3, 3)
        k += 1
    return samples


def planner_drive(world: world_pb2.World) -> dict:
    """A car following the planner's route (2 m right of it, 25 m per update, so the route gets extended), jumping
    far away once (so it is re-planned)."""
    options = {"seed": 7, "minLegM": 300.0, "extendBelowM": 200.0, "rerouteAboveM": 25.0, "approachM": 35.0, "exitM": 12.0}
    planner = routing.RoutePlanner(world, seed=7, min_leg_m=300.0, extend_below_m=200.0, reroute_above_m=25.0, approach_m=35.0, exit_m=12.0)
    sp = world.spawn_points[1]
    pos, heading = Vec2(sp.position.x, sp.position.y), sp.heading
    steps, last_route = [], None
    for k in range(120):
        if k == 70:  # teleported: the planner re-plans from the road the car is on
            jump = world.spawn_points[3]
            pos, heading = Vec2(jump.position.x + 1.0, jump.position.y + 7.0), jump.heading
        nav = planner.update(pos, heading)
        route = planner.route
        step = {"pos": to_json(pos), "heading": heading, "nav": to_json(nav), "routeLengthM": route.length_m}
        if route is not last_route:  # planned, re-planned or extended at this update
            step["routeNodeIds"] = list(route.node_ids)
        last_route = route
        steps.append(step)
        progress = nav.progress_m + 25.0
        i = min(max(j for j, c in enumerate(route.cumulative) if c <= progress), len(route.points) - 2)
        a, b = route.points[i], route.points[i + 1]
        seg = math.hypot(b.x - a.x, b.y - a.y) or 1.0
        ux, uy = (b.x - a.x) / seg, (b.y - a.y) / seg
        along = min(progress - route.cumulative[i], seg)
        pos, heading = Vec2(a.x + ux * along + uy * 2.0, a.y + uy * along - ux * 2.0), math.atan2(uy, ux)
    return {"options": options, "spawn": 1, "steps": steps}


def routing_section(world: world_pb2.World) -> dict:
    rng = random.Random(1811)
    variants = {"default": (world, True), "oneWay": (with_one_way(world), True), "oneWayIgnored": (with_one_way(world), False)}
    graphs = {}
    for name, (w, respect) in variants.items():
        g = routing.build_road_graph(w, respect_one_way=respect)
        graphs[name] = {**(graph_json(g) if name == "default" else {"edgeCount": sum(len(e) for e in g.edges.values())}), "respectOneWay": respect,
                        "paths": [{"from": a, "to": b, "path": to_json(routing.shortest_path(g, a, b))} for a, b in PAIRS]}
    g = routing.build_road_graph(world)
    turn_points = [(Vec2(-1, 0), Vec2(0, 0), Vec2(0, 1)), (Vec2(-1, 0), Vec2(0, 0), Vec2(0, -1)), (Vec2(-1, 0), Vec2(0, 0), Vec2(1, 0)),
                   (Vec2(0, 0), Vec2(10, 0), Vec2(20, 5.5)), (Vec2(0, 0), Vec2(10, 0), Vec2(20, -6)), (Vec2(3, 4), Vec2(3, 4), Vec2(9, 1)),
                   (Vec2(0, 0), Vec2(10, 0), Vec2(0, 0.001)), (Vec2(0, 0), Vec2(10, 0), Vec2(0, -0.001))]
    turns = [{"a": to_json(a), "b": to_json(b), "c": to_json(c), "angle": routing.turn_angle(a, b, c),
              "option": routing.classify_turn(routing.turn_angle(a, b, c)), "option20": routing.classify_turn(routing.turn_angle(a, b, c), 20)}
             for a, b, c in turn_points]
    route_inputs = [
        (list(routing.shortest_path(g, "i0_0", "i3_7").nodes), Vec2(5.0, -30.0), 30.0),
        (["i1_1", "i1_2", "i2_2", "i2_3", "i1_3", "i1_4", "i0_4"], None, 30.0),
        (["i2_1", "i2_2", "i3_2"], Vec2(560.0, 80.0), 30.0),  # the start is the first intersection
        (["i0_5", "i1_5", "i1_6"], Vec2(3.0, 360.0), 60.0),
        (["i2_4"], None, 30.0),
        ([], None, 30.0),
    ]
    routes = [routing.make_route(g, nodes, start, thr) for nodes, start, thr in route_inputs]
    make_routes = [{"nodes": nodes, "start": to_json(start), "turnThresholdDeg": thr, "route": to_json(r)}
                   for (nodes, start, thr), r in zip(route_inputs, routes)]
    extend = [{"route": 1, "more": ["i0_4", "i0_5", "i1_5"], "extended": to_json(routing.extend_route(g, routes[1], ["i0_4", "i0_5", "i1_5"]))},
              {"route": 0, "more": ["i3_6"], "extended": to_json(routing.extend_route(g, routes[0], ["i3_6"]))},
              {"route": 3, "more": [], "extended": to_json(routing.extend_route(g, routes[3], []))}]
    navigation = [{"route": 0, "options": {}, "samples": navigation_samples(routes[0], rng, None, None)},
                  {"route": 1, "options": {"approachM": 25.0, "exitM": 5.0}, "samples": navigation_samples(routes[1], rng, 25.0, 5.0)},
                  {"route": 3, "options": {}, "samples": navigation_samples(routes[3], rng, None, None)},
                  {"route": 4, "options": {}, "samples": [edge_sample(routes[4], 0)]},
                  {"route": 5, "options": {}, "samples": [edge_sample(routes[5], 2)]}]
    locate_inputs = [(Vec2(i.position.x, i.position.y), h) for i in list(world.intersections)[::5] for h in (0.0, math.pi / 2)]
    locate_inputs += [(Vec2(rng.uniform(world.min.x, world.max.x), rng.uniform(world.min.y, world.max.y)), rng.uniform(-math.pi, math.pi)) for _ in range(150)]
    locate_inputs += [(Vec2(r.start.x + (r.end.x - r.start.x) * 0.3 + rng.uniform(-12, 12), r.start.y + (r.end.y - r.start.y) * 0.3 + rng.uniform(-12, 12)),
                       rng.choice((0.0, math.pi / 2, math.pi, -math.pi / 2))) for r in list(world.roads)[::3]]
    locate = [{"pos": to_json(p), "heading": h, "location": to_json(routing.locate_on_road(world, p, h))} for p, h in locate_inputs]
    nearest_inputs = [Vec2(rng.uniform(world.min.x, world.max.x), rng.uniform(world.min.y, world.max.y)) for _ in range(40)] + [Vec2(140.0, 40.0)]
    nearest = [{"pos": to_json(p), "node": routing.nearest_node(g, p)} for p in nearest_inputs]
    seeds = [1, 7, 0, 42, 4294967295, 4294967296 + 3, -5, 2.7, 123456789]
    prng = []
    for seed in seeds:
        rand = routing.mulberry32(seed)
        prng.append({"seed": seed, "values": [rand() for _ in range(8)]})
    return {
        "oneWay": ONE_WAY,
        "graphs": graphs,
        "turns": turns,
        "makeRoute": make_routes,
        "extendRoute": extend,
        "navigate": navigation,
        "locateOnRoad": locate,
        "nearestNode": nearest,
        "mulberry32": prng,
        "planner": planner_drive(world),
        "roadOptionName": [{"option": o, "name": routing.road_option_name(o)} for o in range(8)],
    }


def golden() -> str:
    world = manhattan_grid(GridSpec())
    cw = vm.collision_world(world)
    doc = {
        "about": "Written by tools/gen_sim_golden.py from scalediffusion/sim (Python ports of src/sim/vehicle.ts and src/world/routing.ts); "
                 "src/sim/golden.test.ts expects the game to compute the same. Do not edit by hand.",
        "world": {"worldId": world.world_id, "version": world.version, "roads": len(world.roads), "buildings": len(world.buildings),
                  "parked": len(world.parked), "actors": len(world.actors)},
        "vehicle": vehicle_section(),
        "collisions": {"collides": collides_cases(world, cw), "actorCollision": actor_cases(world),
                       "stepWithCollisions": step_with_collisions_cases(world, cw)},
        "routing": routing_section(world),
    }
    return dumps(doc) + "\n"


def dumps(value: object, level: int = 0, width: int = 160) -> str:
    """JSON with sorted keys, one small object or array per line (readable diffs at a third of indent=1's size)."""
    flat = json.dumps(value, sort_keys=True, separators=(", ", ": "), allow_nan=False)
    if len(flat) + level <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    pad = " " * (level + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {dumps(value[k], level + 1, width)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"
    return "[\n" + ",\n".join(pad + dumps(v, level + 1, width) for v in value) + "\n" + " " * level + "]"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(golden())
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
