// The rendering-geometry golden test: tools/gen_render_golden.py writes fixtures/geometry_golden.json from the Python
// ports (scalediffusion/sim/geometry.py of this file's worldGeometry.ts, scalediffusion/sim/camera.py of
// ../sim/camera.ts) for the default world (golden_world.json), a hand-made edge-case world and direct helper calls.
// The game's functions must give the same, so the Python renderer draws the streets the game draws.
import { existsSync, readFileSync } from "node:fs";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WorldSchema, type World } from "../gen/scalediffusion/v1/world_pb";
import { cameraPose, lerpAngle, type CameraMode } from "../sim/camera";
import type { VehicleState } from "../sim/vehicle";
import {
  addBox,
  addFlatQuads,
  addUprightPolygon,
  buildingMesh,
  buildingPrisms,
  controlPoles,
  signalHeads,
  emptyMesh,
  hashString,
  intersectionBoxes,
  intersectionsById,
  laneMarkings,
  lightColor,
  normaliseRing,
  roadAxis,
  roadFrame,
  roadsById,
  roadSurfaces,
  sidewalkTrim,
  signedArea,
  squareQuad,
  triangulate,
  type LightAxis,
  type MeshData,
  type Quad,
} from "./worldGeometry";

const WORLD = new URL("./fixtures/golden_world.json", import.meta.url);
const GOLDEN = new URL("./fixtures/geometry_golden.json", import.meta.url);
const present = existsSync(WORLD) && existsSync(GOLDEN);

/** Equal up to float rounding (relative 1e-9): the ports do the same operations, but Math.sin & co may differ in the
 * last bit from the C library's. Strings, booleans, nulls, key sets and lengths must match exactly. */
function expectClose(got: unknown, want: unknown, path = "$"): void {
  if (typeof want === "number") {
    expect(typeof got, path).toBe("number");
    const g = got as number;
    expect(Math.abs(g - want) <= 1e-9 * Math.max(1, Math.abs(g), Math.abs(want)), `${path}: ${g} != ${want}`).toBe(true);
  } else if (Array.isArray(want)) {
    expect(Array.isArray(got), path).toBe(true);
    expect((got as unknown[]).length, `${path}.length`).toBe(want.length);
    want.forEach((w, i) => expectClose((got as unknown[])[i], w, `${path}[${i}]`));
  } else if (want !== null && typeof want === "object") {
    expect(got !== null && typeof got === "object", path).toBe(true);
    const g = got as Record<string, unknown>;
    expect(Object.keys(g).sort(), `${path} keys`).toEqual(Object.keys(want).sort());
    for (const [k, w] of Object.entries(want)) expectClose(g[k], w, `${path}.${k}`);
  } else {
    expect(got, path).toEqual(want);
  }
}

const sum = (values: readonly number[]): number => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

const vec = (p: [number, number]) => ({ x: p[0], y: p[1] });

function meshSummary(m: MeshData, stride: number, want: { samples: { index: number }[] }) {
  expect(want.samples[1]?.index ?? stride, "sample stride").toBe(stride);
  const at = (a: number[], k: number, n: number) => a.slice(k * n, k * n + n);
  const samples = [];
  for (let k = 0; k < m.positions.length / 3; k += stride) {
    samples.push({ index: k, position: at(m.positions, k, 3), normal: at(m.normals, k, 3), uv: at(m.uvs, k, 2), color: at(m.colors, k, 3) });
  }
  return {
    vertexCount: m.positions.length / 3,
    indexCount: m.indices.length,
    sums: { positions: sum(m.positions), normals: sum(m.normals), uvs: sum(m.uvs), colors: sum(m.colors), indices: sum(m.indices) },
    samples,
    firstIndices: m.indices.slice(0, 60),
    lastIndices: m.indices.slice(-60),
  };
}

/** What tools/gen_render_golden.py's world_outputs computes, with the game's functions. */
function worldOutputs(world: World, want: Record<string, unknown>) {
  const roads = roadsById(world);
  const inters = intersectionsById(world);
  const prisms = buildingPrisms(world);
  return {
    roadSurfaces: roadSurfaces(world),
    sidewalkTrims: Object.fromEntries(
      world.roads.map((r) => [r.id, [sidewalkTrim(r, inters.get(r.fromIntersection), roads), sidewalkTrim(r, inters.get(r.toIntersection), roads)]]),
    ),
    roadFrames: Object.fromEntries(world.roads.map((r) => [r.id, roadFrame(r)])),
    roadAxes: Object.fromEntries(world.roads.map((r) => [r.id, roadAxis(r)])),
    intersectionBoxes: intersectionBoxes(world),
    buildingPrisms: prisms,
    buildingMesh: meshSummary(buildingMesh(prisms), 97, want.buildingMesh as { samples: { index: number }[] }),
    buildingMeshFirst: buildingMesh(prisms.slice(0, 3), 5, 3),
    controlPoles: controlPoles(world),
    signalHeads: signalHeads(world),
    laneMarkings: laneMarkings(world),
    laneMarkingsShortDashes: laneMarkings(world, 1, 2).length,
  };
}

interface Golden {
  gridWorldId: string;
  gridVersion: number;
  edgeWorld: JsonValue;
  grid: Record<string, unknown>;
  edge: Record<string, unknown>;
  helpers: Record<string, unknown>;
  lightColor: { worlds: { lightCycleS: number; lightYellowS: number }[]; times: number[]; cases: [number, number, LightAxis, string[]][] };
  cameraPose: { state: VehicleState; mode: CameraMode; fovDeg: number; yaw: number | null; pose: unknown }[];
  lerpAngle: [number, number, number, number][];
}

describe.skipIf(!present)(
  present
    ? "rendering geometry golden (Python <-> game)"
    : "rendering geometry golden: SKIPPED, src/world/fixtures/geometry_golden.json or golden_world.json is absent (tools/gen_render_golden.py writes it)",
  () => {
    const golden = () => JSON.parse(readFileSync(GOLDEN, "utf8")) as Golden;
    const gridWorld = () => fromJson(WorldSchema, JSON.parse(readFileSync(WORLD, "utf8")) as JsonValue);

    it("the default world's geometry equals the Python port's", () => {
      const g = golden();
      const world = gridWorld();
      expect(world.worldId).toBe(g.gridWorldId);
      expect(world.version).toBe(g.gridVersion);
      const got = worldOutputs(world, g.grid);
      for (const key of Object.keys(g.grid)) expectClose((got as Record<string, unknown>)[key], g.grid[key], `grid.${key}`);
      expect(Object.keys(got).sort()).toEqual(Object.keys(g.grid).sort());
    });

    it("the edge-case world's geometry equals the Python port's", () => {
      const g = golden();
      const world = fromJson(WorldSchema, g.edgeWorld);
      const got = worldOutputs(world, g.edge);
      for (const key of Object.keys(g.edge)) expectClose((got as Record<string, unknown>)[key], g.edge[key], `edge.${key}`);
    });

    it("the pure helpers and mesh builders equal the Python port's", () => {
      const h = golden().helpers as {
        hashString: [string, number][];
        signedArea: Record<string, number>;
        triangulate: Record<string, number[]>;
        normaliseRing: Record<string, unknown>;
        squareQuad: unknown;
        mesh: unknown;
      };
      for (const [s, want] of h.hashString) expect(hashString(s), JSON.stringify(s)).toBe(want);
      const polygons: Record<string, [number, number][]> = {
        square: [[0, 0], [1, 0], [1, 1], [0, 1]],
        "cw-square": [[0, 0], [0, 1], [1, 1], [1, 0]],
        "l-shape": [[0, 0], [3, 0], [3, 1], [1, 1], [1, 3], [0, 3]],
        comb: [[0, 0], [5, 0], [5, 3], [4, 3], [4, 1], [3, 1], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]],
        collinear: [[0, 0], [1, 0], [2, 0], [2, 2], [0, 2]],
        flat: [[0, 0], [1, 1], [2, 2]],
        "bow-tie": [[0, 0], [2, 2], [2, 0], [0, 2]],
        two: [[0, 0], [1, 0]],
      };
      expect(Object.keys(polygons).sort()).toEqual(Object.keys(h.triangulate).sort());
      for (const [k, poly] of Object.entries(polygons)) {
        expectClose(signedArea(poly.map(vec)), h.signedArea[k], `signedArea.${k}`);
        expect(triangulate(poly.map(vec)), `triangulate.${k}`).toEqual(h.triangulate[k]);
      }
      const rings: Record<string, [number, number][]> = {
        "closed-cw": [[0, 0], [0, 2], [2, 2], [2, 0], [0, 0]],
        duplicates: [[0, 0], [0, 0], [3, 0], [3, 0.0000000005], [3, 3], [0, 3], [0, 1e-10]],
        single: [[4, 4]],
        empty: [],
      };
      for (const [k, ring] of Object.entries(rings)) expectClose(normaliseRing(ring.map(vec)), h.normaliseRing[k], `normaliseRing.${k}`);
      expectClose(squareQuad({ x: 12.5, y: -7 }, 6.25), h.squareQuad, "squareQuad");
      const mesh = emptyMesh();
      const q: Quad = [{ x: 0, y: 0 }, { x: 4, y: 0 }, { x: 4, y: 2 }, { x: 0, y: 1 }];
      addFlatQuads(mesh, [squareQuad({ x: 3, y: -2 }, 1.5), q], 0.12, 0xa9a8a2, 4);
      addBox(mesh, { x: 10, y: 20, z: 1.25 }, { x: 0.08, y: 0.08, z: 2.5 }, 0, 0x2e3235);
      addBox(mesh, { x: -3.5, y: 7.25, z: 4.5 }, { x: 0.3, y: 0.4, z: 1.1 }, 2.35, 0x1d1f21);
      addUprightPolygon(mesh, { x: 1.06, y: 2, z: 2.45 }, 0.4, 8, -1.2, 0xc4161c);
      addUprightPolygon(mesh, { x: 0, y: 0, z: 1 }, 1.0, 3, Math.PI, 0xffffff);
      addFlatQuads(mesh, [], 0, 0x123456);
      expectClose(mesh, h.mesh, "mesh");
    });

    it("traffic lights change colour at the same times as the Python port's", () => {
      const { worlds, times, cases } = golden().lightColor;
      for (const [k, offset, axis, colours] of cases) {
        expect(times.map((t) => lightColor(worlds[k]!, offset, axis, t)), `world ${k} offset ${offset} ${axis}`).toEqual(colours);
      }
    });

    it("camera poses and angle smoothing equal the Python port's", () => {
      const g = golden();
      for (const c of g.cameraPose) {
        const pose = c.yaw === null ? cameraPose(c.state, c.mode, c.fovDeg) : cameraPose(c.state, c.mode, c.fovDeg, c.yaw);
        expectClose(pose, c.pose, `cameraPose(${JSON.stringify(c.state)}, ${c.mode}, ${c.fovDeg}, ${c.yaw})`);
      }
      for (const [a, b, t, want] of g.lerpAngle) expectClose(lerpAngle(a, b, t), want, `lerpAngle(${a}, ${b}, ${t})`);
    });
  },
);
