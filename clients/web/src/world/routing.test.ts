import { describe, expect, it } from "vitest";
import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import { grid3x3 } from "./fixtures/grid3x3";
import {
  buildRoadGraph,
  classifyTurn,
  extendRoute,
  locateOnRoad,
  makeRoute,
  navigate,
  RoutePlanner,
  shortestPath,
  turnAngle,
} from "./routing";

const deg = (d: number) => (d * Math.PI) / 180;

describe("road graph and shortest paths", () => {
  it("has an edge each way per two-way road", () => {
    const g = buildRoadGraph(grid3x3());
    expect(g.nodes.size).toBe(9);
    const out = [...g.edges.values()].reduce((n, e) => n + e.length, 0);
    expect(out).toBe(24);
    expect(g.edges.get("i1_1")!.map((e) => e.to).sort()).toEqual(["i0_1", "i1_0", "i1_2", "i2_1"]);
  });

  it("finds the shortest path by length", () => {
    const g = buildRoadGraph(grid3x3());
    const straight = shortestPath(g, "i0_0", "i2_0")!;
    expect(straight.nodes).toEqual(["i0_0", "i1_0", "i2_0"]);
    expect(straight.roads).toEqual(["ew0_0", "ew0_1"]);
    expect(straight.lengthM).toBeCloseTo(200);
    const diagonal = shortestPath(g, "i0_0", "i2_2")!;
    expect(diagonal.lengthM).toBeCloseTo(400);
    expect(diagonal.nodes).toHaveLength(5);
    // Deterministic tie-breaking: the same answer every time.
    expect(shortestPath(g, "i0_0", "i2_2")!.nodes).toEqual(diagonal.nodes);
    expect(shortestPath(g, "i1_1", "i1_1")).toEqual({ nodes: ["i1_1"], roads: [], lengthM: 0 });
    expect(shortestPath(g, "i0_0", "nowhere")).toBeNull();
  });

  it("routes around a missing road and respects one-way streets", () => {
    const world = grid3x3();
    world.roads = world.roads.filter((r) => r.id !== "ew0_0");
    const around = shortestPath(buildRoadGraph(world), "i0_0", "i1_0")!;
    expect(around.lengthM).toBeCloseTo(300);
    expect(around.nodes).toEqual(["i0_0", "i0_1", "i1_1", "i1_0"]);

    const oneWay = grid3x3();
    const r = oneWay.roads.find((x) => x.id === "ew0_0")!;
    r.lanesForward = 0; // only i1_0 -> i0_0 (westbound)
    const g = buildRoadGraph(oneWay);
    expect(shortestPath(g, "i1_0", "i0_0")!.lengthM).toBeCloseTo(100);
    expect(shortestPath(g, "i0_0", "i1_0")!.lengthM).toBeCloseTo(300);
    expect(shortestPath(buildRoadGraph(oneWay, { respectOneWay: false }), "i0_0", "i1_0")!.lengthM).toBeCloseTo(100);
  });
});

describe("turn classification", () => {
  it("signs the turn angle counter-clockwise positive", () => {
    const o = { x: 0, y: 0 };
    expect(turnAngle({ x: -1, y: 0 }, o, { x: 0, y: 1 })).toBeCloseTo(deg(90)); // east then north: left
    expect(turnAngle({ x: -1, y: 0 }, o, { x: 0, y: -1 })).toBeCloseTo(deg(-90)); // east then south: right
    expect(turnAngle({ x: -1, y: 0 }, o, { x: 1, y: 0 })).toBeCloseTo(0);
  });

  it("uses a 30 degree threshold", () => {
    expect(classifyTurn(deg(31))).toBe(RoadOption.LEFT);
    expect(classifyTurn(deg(-31))).toBe(RoadOption.RIGHT);
    expect(classifyTurn(deg(29))).toBe(RoadOption.STRAIGHT);
    expect(classifyTurn(deg(-29))).toBe(RoadOption.STRAIGHT);
  });
});

describe("navigation commands on the 3x3 grid", () => {
  const g = buildRoadGraph(grid3x3());
  // From the spawn on ns0_0 heading north: right at i0_1 (onto ew1_0 east), left at i1_1 (north), then straight
  // through i1_2? No: i1_2 is the end. Route: start -> i0_1 -> i1_1 -> i1_2.
  const route = makeRoute(g, ["i0_1", "i1_1", "i1_2"], { x: 2.5, y: 25 });

  it("marks manoeuvres per intersection", () => {
    expect(route.maneuvers).toEqual([RoadOption.LANEFOLLOW, RoadOption.RIGHT, RoadOption.LEFT, RoadOption.LANEFOLLOW]);
    expect(route.lengthM).toBeCloseTo(Math.hypot(2.5, 75) + 200);
  });

  it("says LANEFOLLOW between intersections and the turn within 40 m of it", () => {
    const far = navigate(route, { x: 2.5, y: 30 });
    expect(far.command).toBe(RoadOption.LANEFOLLOW);
    expect(far.nextIntersectionId).toBe("i0_1");
    expect(far.distanceToNextM).toBeCloseTo(70, 0);
    expect(far.nextTurn).toMatchObject({ command: RoadOption.RIGHT });

    const near = navigate(route, { x: 2.5, y: 65 });
    expect(near.command).toBe(RoadOption.RIGHT);
    expect(near.distanceToNextM!).toBeLessThan(40);

    // Just through the junction the right turn still holds, then it is lane following again.
    const through = navigate(route, { x: 5, y: 100 }, near.segment);
    expect(through.command).toBe(RoadOption.RIGHT);
    expect(through.nextIntersectionId).toBe("i1_1");
    const mid = navigate(route, { x: 50, y: 101 }, through.segment);
    expect(mid.command).toBe(RoadOption.LANEFOLLOW);
    expect(mid.distanceToNextM).toBeCloseTo(50);
    expect(mid.nextTurn).toMatchObject({ command: RoadOption.LEFT, distanceM: expect.closeTo(50, 5) });

    const left = navigate(route, { x: 70, y: 101 }, mid.segment);
    expect(left.command).toBe(RoadOption.LEFT);

    const last = navigate(route, { x: 101, y: 180 }, left.segment);
    expect(last.command).toBe(RoadOption.LANEFOLLOW); // the destination is not a manoeuvre
    expect(last.nextTurn).toBeNull();
    expect(last.remainingM).toBeCloseTo(20, 0);
  });

  it("says STRAIGHT when crossing an intersection without turning", () => {
    const r = makeRoute(g, ["i0_0", "i1_0", "i2_0"]);
    expect(r.maneuvers[1]).toBe(RoadOption.STRAIGHT);
    expect(navigate(r, { x: 20, y: -2 }).command).toBe(RoadOption.LANEFOLLOW);
    expect(navigate(r, { x: 70, y: -2 }).command).toBe(RoadOption.STRAIGHT);
    expect(navigate(r, { x: 105, y: -2 }, 0).command).toBe(RoadOption.STRAIGHT);
    expect(navigate(r, { x: 150, y: -2 }, 1).command).toBe(RoadOption.LANEFOLLOW);
    expect(navigate(r, { x: 150, y: -2 }, 1).nextTurn).toBeNull();
  });

  it("extends a route and re-derives the manoeuvre at the old end", () => {
    const r = makeRoute(g, ["i0_0", "i1_0"]);
    const longer = extendRoute(g, r, ["i1_0", "i1_1"]);
    expect(longer.nodeIds).toEqual(["i0_0", "i1_0", "i1_1"]);
    expect(longer.maneuvers[1]).toBe(RoadOption.LEFT);
  });
});

describe("locating and planning", () => {
  it("finds the road and the intersection ahead", () => {
    const w = grid3x3();
    expect(locateOnRoad(w, { x: 2.5, y: 25 }, Math.PI / 2)).toMatchObject({ roadId: "ns0_0", aheadNode: "i0_1", behindNode: "i0_0" });
    expect(locateOnRoad(w, { x: 2.5, y: 25 }, -Math.PI / 2)).toMatchObject({ roadId: "ns0_0", aheadNode: "i0_0" });
    expect(locateOnRoad(w, { x: 50, y: 50 }, 0)).toBeNull(); // inside a block
  });

  it("keeps a route ahead of the car and re-plans when it leaves it", () => {
    const planner = new RoutePlanner(grid3x3(), { seed: 7, minLegM: 200 });
    const nav = planner.update({ x: 2.5, y: 25 }, Math.PI / 2)!;
    expect(nav).not.toBeNull();
    expect(planner.route!.nodeIds[1]).toBe("i0_1");
    expect(planner.route!.lengthM).toBeGreaterThan(200);
    // Drive somewhere else entirely: the planner starts again from the road the car is on.
    planner.route = makeRoute(planner.graph, ["i0_1", "i0_2"], { x: 2.5, y: 25 });
    const away = planner.update({ x: 197.5, y: 150 }, -Math.PI / 2)!;
    expect(away.lateralM).toBeLessThan(25);
    expect(planner.route!.nodeIds[1]).toBe("i2_1");
  });
});
