// The simulator's golden test: tools/gen_sim_golden.py writes fixtures/sim_golden.json with the Python ports of
// ./vehicle.ts and ../world/routing.ts (scalediffusion/sim/vehicle.py and routing.py) in the default city; the game
// must compute the same from the same inputs (to 9 decimal places), so the embedded simulator drives the car players
// drive and gives the commands players see. The world is src/world/fixtures/golden_world.json (the same city).
import { readFileSync } from "node:fs";
import { clone, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WorldSchema, type World } from "../gen/scalediffusion/v1/world_pb";
import { actorPoses } from "../world/actors";
import {
  buildRoadGraph,
  classifyTurn,
  extendRoute,
  locateOnRoad,
  makeRoute,
  mulberry32,
  navigate,
  targetPoint,
  nearestNode,
  roadOptionName,
  RoutePlanner,
  shortestPath,
  turnAngle,
  type NavOptions,
  type PlannerOptions,
} from "../world/routing";
import type { Vec2 } from "../world/worldGeometry";
import {
  actorCollision,
  collides,
  collisionWorld,
  DEFAULT_PARAMS,
  driveAccel,
  maxSteerAngle,
  normaliseAngle,
  step,
  stepWithCollisions,
  type DriveInput,
  type VehicleState,
} from "./vehicle";

interface Phase {
  input: DriveInput;
  steps: number;
}

interface Golden {
  world: { worldId: string; version: number; roads: number; buildings: number; parked: number; actors: number };
  vehicle: {
    dt: number;
    params: unknown;
    scripts: { name: string; start: VehicleState; phases: Phase[]; recordEvery: number; states: unknown[] }[];
    maxSteerAngle: { speed: number; value: number }[];
    driveAccel: { speed: number; input: DriveInput; value: number }[];
    normaliseAngle: { angle: number; value: number }[];
    step: { state: VehicleState; input: DriveInput; dt: number; next: unknown }[];
  };
  collisions: {
    collides: { label: string; state: VehicleState; expected: unknown }[];
    actorCollision: { t: number; cases: { label: string; state: VehicleState; expected: unknown }[] }[];
    stepWithCollisions: {
      label: string;
      start: VehicleState;
      phases: Phase[];
      recordEvery: number;
      startTimeS: number | null;
      states: unknown[];
      events: [number, number, string, string][];
    }[];
  };
  routing: {
    oneWay: Record<string, { lanesForward?: number; lanesBackward?: number }>;
    graphs: Record<
      string,
      {
        respectOneWay: boolean;
        nodeOrder?: string[];
        nodes?: unknown;
        edges?: unknown;
        edgeCount?: number;
        paths: { from: string; to: string; path: unknown }[];
      }
    >;
    turns: { a: Vec2; b: Vec2; c: Vec2; angle: number; option: number; option20: number }[];
    makeRoute: { nodes: string[]; start: Vec2 | null; turnThresholdDeg: number; route: unknown }[];
    extendRoute: { route: number; more: string[]; extended: unknown }[];
    navigate: { route: number; options: NavOptions; samples: { pos: Vec2; hint: number; nav: unknown; target: Vec2 | null }[] }[];
    locateOnRoad: { pos: Vec2; heading: number; location: unknown }[];
    nearestNode: { pos: Vec2; node: string | null }[];
    mulberry32: { seed: number; values: number[] }[];
    planner: { options: PlannerOptions; steps: { pos: Vec2; heading: number; nav: unknown; routeLengthM: number; routeNodeIds?: (string | null)[] }[] };
    roadOptionName: { option: number; name: string }[];
  };
}

const golden = JSON.parse(readFileSync(new URL("./fixtures/sim_golden.json", import.meta.url), "utf8")) as Golden;
const world: World = fromJson(WorldSchema, JSON.parse(readFileSync(new URL("../world/fixtures/golden_world.json", import.meta.url), "utf8")) as JsonValue);
const DIGITS = 9;

/** Deep equality with numbers compared to 9 decimal places; `where` names the first difference. */
function expectClose(actual: unknown, expected: unknown, where: string): void {
  if (typeof expected === "number") {
    expect(typeof actual, where).toBe("number");
    expect(actual as number, where).toBeCloseTo(expected, DIGITS);
  } else if (Array.isArray(expected)) {
    expect(Array.isArray(actual), `${where} is an array`).toBe(true);
    const list = actual as unknown[];
    expect(list.length, `${where}.length`).toBe(expected.length);
    expected.forEach((e, i) => expectClose(list[i], e, `${where}[${i}]`));
  } else if (expected !== null && typeof expected === "object") {
    expect(actual !== null && typeof actual === "object", `${where} is an object`).toBe(true);
    const obj = actual as Record<string, unknown>;
    expect(Object.keys(obj).sort(), `${where} keys`).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expectClose(obj[k], v, `${where}.${k}`);
  } else {
    expect(actual, where).toBe(expected);
  }
}

/** Steps through the phases, recording the state every `every` steps and at the end (as the generator does). */
function drivePhases(start: VehicleState, phases: Phase[], every: number, next: (s: VehicleState, input: DriveInput, count: number) => VehicleState) {
  const total = phases.reduce((n, p) => n + p.steps, 0);
  let s = start;
  let count = 0;
  const states: VehicleState[] = [];
  for (const phase of phases) {
    for (let i = 0; i < phase.steps; i++) {
      s = next(s, phase.input, count);
      count++;
      if (count % every === 0 || count === total) states.push(s);
    }
  }
  return states;
}

describe("sim golden (Python simulator <-> game)", () => {
  it("is about the same world as golden_world.json", () => {
    expect({
      worldId: world.worldId,
      version: world.version,
      roads: world.roads.length,
      buildings: world.buildings.length,
      parked: world.parked.length,
      actors: world.actors.length,
    }).toEqual(golden.world);
  });

  describe("vehicle dynamics", () => {
    const v = golden.vehicle;

    it("has the same parameters and time step", () => {
      expectClose({ ...DEFAULT_PARAMS }, v.params, "params");
      expect(v.dt).toBe(1 / 60);
    });

    it("drives the scripted input sequences to the same states", () => {
      for (const script of v.scripts) {
        const states = drivePhases(script.start, script.phases, script.recordEvery, (s, input) => step(s, input, v.dt));
        expectClose(states, script.states, script.name);
      }
    });

    it("computes the same steering limit, pedal acceleration, angles and single steps", () => {
      for (const c of v.maxSteerAngle) expectClose(maxSteerAngle(c.speed), c.value, `maxSteerAngle(${c.speed})`);
      for (const c of v.driveAccel) expectClose(driveAccel(c.speed, c.input), c.value, `driveAccel(${c.speed}, ${JSON.stringify(c.input)})`);
      for (const c of v.normaliseAngle) expectClose(normaliseAngle(c.angle), c.value, `normaliseAngle(${c.angle})`);
      for (const c of v.step) expectClose(step(c.state, c.input, c.dt), c.next, `step(${JSON.stringify(c)})`);
    });
  });

  describe("collisions", () => {
    const cw = collisionWorld(world);

    it("finds the same building, parked car, edge or nothing at each position", () => {
      for (const c of golden.collisions.collides) expectClose(collides(c.state, cw), c.expected, c.label);
    });

    it("finds the same moving actors", () => {
      for (const group of golden.collisions.actorCollision) {
        const poses = actorPoses(world, group.t);
        for (const c of group.cases) expectClose(actorCollision(c.state, poses), c.expected, `t=${group.t} ${c.label}`);
      }
    });

    it("stops the car at the same obstacles on the same steps", () => {
      for (const d of golden.collisions.stepWithCollisions) {
        const events: [number, number, string, string][] = [];
        const states = drivePhases(d.start, d.phases, d.recordEvery, (s, input, count) => {
          const actors = d.startTimeS === null ? [] : actorPoses(world, d.startTimeS + count * golden.vehicle.dt);
          const r = stepWithCollisions(s, input, golden.vehicle.dt, cw, DEFAULT_PARAMS, actors);
          if (r.collision !== null) {
            const last = events[events.length - 1];
            if (last !== undefined && last[1] === count && last[2] === r.collision.kind && last[3] === r.collision.id) last[1] = count + 1;
            else events.push([count + 1, count + 1, r.collision.kind, r.collision.id]);
          }
          return r.state;
        });
        expect(events, d.label).toEqual(d.events);
        expectClose(states, d.states, d.label);
      }
    });
  });

  describe("routing", () => {
    const r = golden.routing;
    const graph = buildRoadGraph(world);

    it("builds the same road graphs and shortest paths (one-way streets too)", () => {
      const oneWay = clone(WorldSchema, world);
      for (const road of oneWay.roads) Object.assign(road, r.oneWay[road.id] ?? {});
      const worlds: Record<string, World> = { default: world, oneWay, oneWayIgnored: oneWay };
      for (const [name, expected] of Object.entries(r.graphs)) {
        const g = buildRoadGraph(worlds[name]!, { respectOneWay: expected.respectOneWay });
        if (expected.edges !== undefined) {
          expect([...g.nodes.keys()], name).toEqual(expected.nodeOrder);
          expectClose(Object.fromEntries(g.nodes), expected.nodes, `${name}.nodes`);
          expectClose(Object.fromEntries(g.edges), expected.edges, `${name}.edges`);
        } else {
          expect([...g.edges.values()].reduce((n, e) => n + e.length, 0), name).toBe(expected.edgeCount);
        }
        for (const p of expected.paths) expectClose(shortestPath(g, p.from, p.to), p.path, `${name} ${p.from} -> ${p.to}`);
      }
    });

    it("classifies the same turns", () => {
      for (const t of r.turns) {
        const angle = turnAngle(t.a, t.b, t.c);
        expectClose(angle, t.angle, `turnAngle(${JSON.stringify(t)})`);
        expect(classifyTurn(angle)).toBe(t.option);
        expect(classifyTurn(angle, 20)).toBe(t.option20);
      }
    });

    const routes = r.makeRoute.map((m) => makeRoute(graph, m.nodes, m.start ?? undefined, m.turnThresholdDeg));

    it("makes and extends the same routes", () => {
      r.makeRoute.forEach((m, i) => expectClose(routes[i], m.route, `makeRoute #${i}`));
      for (const e of r.extendRoute) expectClose(extendRoute(graph, routes[e.route]!, e.more), e.extended, `extendRoute #${e.route} + ${e.more.join(",")}`);
    });

    it("gives the same navigation along and off the routes", () => {
      for (const group of r.navigate) {
        for (const s of group.samples) {
          const nav = navigate(routes[group.route]!, s.pos, s.hint, group.options);
          expectClose(nav, s.nav, `navigate route #${group.route} at ${JSON.stringify(s.pos)} hint ${s.hint}`);
          expectClose(targetPoint(routes[group.route]!, nav), s.target, `targetPoint route #${group.route} at ${JSON.stringify(s.pos)} hint ${s.hint}`);
        }
      }
    });

    it("locates the same roads and nearest intersections", () => {
      for (const c of r.locateOnRoad) expectClose(locateOnRoad(world, c.pos, c.heading), c.location, `locateOnRoad(${JSON.stringify(c.pos)}, ${c.heading})`);
      for (const c of r.nearestNode) expect(nearestNode(graph, c.pos), JSON.stringify(c.pos)).toBe(c.node);
    });

    it("draws the same random numbers", () => {
      for (const c of r.mulberry32) {
        const rng = mulberry32(c.seed);
        expect(c.values.map(() => rng()), `seed ${c.seed}`).toEqual(c.values);
      }
      for (const c of r.roadOptionName) expect(roadOptionName(c.option)).toBe(c.name);
    });

    it("plans, extends and re-plans the same random routes", () => {
      const planner = new RoutePlanner(world, r.planner.options);
      let last = planner.route;
      r.planner.steps.forEach((s, k) => {
        const nav = planner.update(s.pos, s.heading);
        expectClose(nav, s.nav, `planner step ${k}`);
        const route = planner.route!;
        expect(route.lengthM, `planner step ${k} route length`).toBeCloseTo(s.routeLengthM, DIGITS);
        expect(route !== last ? route.nodeIds : undefined, `planner step ${k} route`).toEqual(s.routeNodeIds);
        last = route;
      });
    });
  });
});
