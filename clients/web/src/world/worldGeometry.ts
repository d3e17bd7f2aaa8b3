// Pure geometry built from a World message: what the renderer draws and what the golden test compares.
// No DOM, no Three.js. Coordinates are the city frame: metres, x east, y north, z up.

import type { Intersection, Road, World } from "../gen/scalediffusion/v1/world_pb";
import { IntersectionControl } from "../gen/scalediffusion/v1/world_pb";

export interface Vec2 {
  x: number;
  y: number;
}

/** A flat quadrilateral, corners counter-clockwise seen from above. */
export type Quad = [Vec2, Vec2, Vec2, Vec2];

export interface RoadQuad {
  roadId: string;
  corners: Quad;
}

export interface SidewalkQuad {
  roadId: string;
  side: "left" | "right";
  corners: Quad;
}

export interface IntersectionBox {
  id: string;
  center: Vec2;
  /** Half the side of the square paved area (the widest connected carriageway / 2). */
  halfSize: number;
  control: IntersectionControl;
}

export interface BuildingPrism {
  id: string;
  /** Counter-clockwise footprint, not closed. */
  footprint: Vec2[];
  heightM: number;
  /** Facade colour as 0xRRGGBB, stable per building id. */
  color: number;
}

/** What worldStats returns; the Python side (scalediffusion/city/stats.py) computes the same dict. */
export interface WorldStats {
  worldId: string;
  version: number;
  roadCount: number;
  roadLengthM: number;
  buildingCount: number;
  intersectionCount: number;
  intersections: { id: string; x: number; y: number }[];
  boundsMin: Vec2;
  boundsMax: Vec2;
}

const ORIGIN: Vec2 = Object.freeze({ x: 0, y: 0 });

export function pt(p: { x: number; y: number } | undefined): Vec2 {
  return p === undefined ? { ...ORIGIN } : { x: p.x, y: p.y };
}

export function roadLength(road: Road): number {
  const a = pt(road.start);
  const b = pt(road.end);
  return Math.hypot(b.x - a.x, b.y - a.y);
}

function byId(a: { id: string }, b: { id: string }): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Summary numbers of a world, equal (within float rounding) to scalediffusion.city.world_stats. */
export function worldStats(world: World): WorldStats {
  let roadLengthM = 0;
  for (const road of world.roads) {
    roadLengthM += roadLength(road);
  }
  return {
    worldId: world.worldId,
    version: world.version,
    roadCount: world.roads.length,
    roadLengthM,
    buildingCount: world.buildings.length,
    intersectionCount: world.intersections.length,
    intersections: [...world.intersections]
      .sort(byId)
      .map((i) => ({ id: i.id, x: i.position?.x ?? 0, y: i.position?.y ?? 0 })),
    boundsMin: pt(world.min),
    boundsMax: pt(world.max),
  };
}

/** Unit direction of a road (start -> end) and its left normal; a zero-length road points east. */
export function roadFrame(road: Road): { u: Vec2; n: Vec2; length: number; start: Vec2; end: Vec2 } {
  const start = pt(road.start);
  const end = pt(road.end);
  const length = Math.hypot(end.x - start.x, end.y - start.y);
  const u = length > 0 ? { x: (end.x - start.x) / length, y: (end.y - start.y) / length } : { x: 1, y: 0 };
  return { u, n: { x: -u.y, y: u.x }, length, start, end };
}

function offset(p: Vec2, u: Vec2, along: number, n: Vec2, across: number): Vec2 {
  return { x: p.x + u.x * along + n.x * across, y: p.y + u.y * along + n.y * across };
}

/** The carriageway of a road: a rectangle around the centerline, width_m wide. */
export function roadQuad(road: Road): RoadQuad {
  const { u, n, length, start } = roadFrame(road);
  const hw = road.widthM / 2;
  return {
    roadId: road.id,
    corners: [
      offset(start, u, 0, n, -hw),
      offset(start, u, length, n, -hw),
      offset(start, u, length, n, hw),
      offset(start, u, 0, n, hw),
    ],
  };
}

/**
 * How far a road's sidewalks stop short of an intersection so that they do not run across the crossing
 * carriageways: the half width of the widest road meeting it at an angle, divided by the sine of that angle
 * (capped, so nearly parallel roads do not push it far away).
 */
export function sidewalkTrim(road: Road, atIntersection: Intersection | undefined, roads: ReadonlyMap<string, Road>): number {
  if (atIntersection === undefined) return 0;
  const { u } = roadFrame(road);
  let trim = 0;
  for (const otherId of atIntersection.roadIds) {
    if (otherId === road.id) continue;
    const other = roads.get(otherId);
    if (other === undefined) continue;
    const v = roadFrame(other).u;
    const sin = Math.abs(u.x * v.y - u.y * v.x);
    if (sin < 0.2) continue; // a continuation of the same street
    trim = Math.max(trim, Math.min(other.widthM / 2 / sin, other.widthM * 2));
  }
  return trim;
}

/** Both sidewalks of a road, trimmed where they meet crossing roads. */
export function sidewalkQuads(road: Road, trimStart = 0, trimEnd = 0): SidewalkQuad[] {
  if (!(road.sidewalkM > 0)) return [];
  const { u, n, length, start } = roadFrame(road);
  const a = Math.min(trimStart, length);
  const b = Math.max(a, length - trimEnd);
  if (b - a <= 1e-9) return [];
  const hw = road.widthM / 2;
  const sw = road.sidewalkM;
  return [
    {
      roadId: road.id,
      side: "right",
      corners: [offset(start, u, a, n, -hw - sw), offset(start, u, b, n, -hw - sw), offset(start, u, b, n, -hw), offset(start, u, a, n, -hw)],
    },
    {
      roadId: road.id,
      side: "left",
      corners: [offset(start, u, a, n, hw), offset(start, u, b, n, hw), offset(start, u, b, n, hw + sw), offset(start, u, a, n, hw + sw)],
    },
  ];
}

export function roadsById(world: World): Map<string, Road> {
  return new Map(world.roads.map((r) => [r.id, r]));
}

export function intersectionsById(world: World): Map<string, Intersection> {
  return new Map(world.intersections.map((i) => [i.id, i]));
}

/** Every road's carriageway and its trimmed sidewalks. */
export function roadSurfaces(world: World): { roads: RoadQuad[]; sidewalks: SidewalkQuad[] } {
  const roads = roadsById(world);
  const inters = intersectionsById(world);
  const out = { roads: [] as RoadQuad[], sidewalks: [] as SidewalkQuad[] };
  for (const road of world.roads) {
    out.roads.push(roadQuad(road));
    const trimStart = sidewalkTrim(road, inters.get(road.fromIntersection), roads);
    const trimEnd = sidewalkTrim(road, inters.get(road.toIntersection), roads);
    out.sidewalks.push(...sidewalkQuads(road, trimStart, trimEnd));
  }
  return out;
}

/** A paved square per intersection, as wide as its widest carriageway. */
export function intersectionBoxes(world: World): IntersectionBox[] {
  const roads = roadsById(world);
  return world.intersections.map((i) => {
    let half = 0;
    for (const id of i.roadIds) {
      const r = roads.get(id);
      if (r !== undefined) half = Math.max(half, r.widthM / 2);
    }
    return { id: i.id, center: pt(i.position), halfSize: half > 0 ? half : 5, control: i.control };
  });
}

const FACADES = [0x9c8f84, 0xb5a999, 0x7f8790, 0xa2735f, 0x8d8d8d, 0xc2b8a3, 0x6f7a86, 0x94705a, 0xaab2b8, 0x857565];

/** FNV-1a of a string: stable colours and variations per id. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Signed area (positive when counter-clockwise). */
export function signedArea(poly: readonly Vec2[]): number {
  let a = 0;
  for (let i = 0; i < poly.length; i++) {
    const p = poly[i]!;
    const q = poly[(i + 1) % poly.length]!;
    a += p.x * q.y - q.x * p.y;
  }
  return a / 2;
}

/** Drops a repeated closing point and duplicate consecutive points; returns a counter-clockwise ring. */
export function normaliseRing(points: readonly { x: number; y: number }[]): Vec2[] {
  const ring: Vec2[] = [];
  for (const p of points) {
    const last = ring[ring.length - 1];
    if (last === undefined || Math.abs(last.x - p.x) > 1e-9 || Math.abs(last.y - p.y) > 1e-9) ring.push({ x: p.x, y: p.y });
  }
  if (ring.length > 1) {
    const first = ring[0]!;
    const last = ring[ring.length - 1]!;
    if (Math.abs(last.x - first.x) <= 1e-9 && Math.abs(last.y - first.y) <= 1e-9) ring.pop();
  }
  if (signedArea(ring) < 0) ring.reverse();
  return ring;
}

export function buildingPrisms(world: World): BuildingPrism[] {
  const out: BuildingPrism[] = [];
  for (const b of world.buildings) {
    const footprint = normaliseRing(b.footprint);
    if (footprint.length < 3 || !(b.heightM > 0)) continue;
    out.push({ id: b.id, footprint, heightM: b.heightM, color: FACADES[hashString(b.id) % FACADES.length]! });
  }
  return out;
}

function pointInTriangle(p: Vec2, a: Vec2, b: Vec2, c: Vec2): boolean {
  const d1 = (p.x - b.x) * (a.y - b.y) - (a.x - b.x) * (p.y - b.y);
  const d2 = (p.x - c.x) * (b.y - c.y) - (b.x - c.x) * (p.y - c.y);
  const d3 = (p.x - a.x) * (c.y - a.y) - (c.x - a.x) * (p.y - a.y);
  const neg = d1 < 0 || d2 < 0 || d3 < 0;
  const pos = d1 > 0 || d2 > 0 || d3 > 0;
  return !(neg && pos);
}

/**
 * Ear-clipping triangulation of a simple counter-clockwise polygon. Returns index triples into `poly`.
 * Falls back to a fan when the polygon is degenerate (self-intersecting input still gives triangles).
 */
export function triangulate(poly: readonly Vec2[]): number[] {
  const n = poly.length;
  if (n < 3) return [];
  const idx = Array.from({ length: n }, (_, i) => i);
  if (signedArea(poly) < 0) idx.reverse();
  const out: number[] = [];
  let guard = 0;
  while (idx.length > 3 && guard < n * n) {
    guard++;
    let clipped = false;
    for (let i = 0; i < idx.length; i++) {
      const ia = idx[(i + idx.length - 1) % idx.length]!;
      const ib = idx[i]!;
      const ic = idx[(i + 1) % idx.length]!;
      const a = poly[ia]!;
      const b = poly[ib]!;
      const c = poly[ic]!;
      const cross = (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x);
      if (cross <= 1e-12) continue; // reflex or flat
      let inside = false;
      for (const j of idx) {
        if (j === ia || j === ib || j === ic) continue;
        if (pointInTriangle(poly[j]!, a, b, c)) {
          inside = true;
          break;
        }
      }
      if (inside) continue;
      out.push(ia, ib, ic);
      idx.splice(i, 1);
      clipped = true;
      break;
    }
    if (!clipped) break;
  }
  if (idx.length === 3) {
    out.push(idx[0]!, idx[1]!, idx[2]!);
  } else if (idx.length > 3) {
    for (let i = 1; i + 1 < idx.length; i++) out.push(idx[0]!, idx[i]!, idx[i + 1]!);
  }
  return out;
}

/** Indexed triangle mesh in the city frame (z up): positions/normals xyz, uvs, colours rgb 0..1. */
export interface MeshData {
  positions: number[];
  normals: number[];
  uvs: number[];
  colors: number[];
  indices: number[];
}

export function emptyMesh(): MeshData {
  return { positions: [], normals: [], uvs: [], colors: [], indices: [] };
}

function rgb(color: number): [number, number, number] {
  return [((color >> 16) & 0xff) / 255, ((color >> 8) & 0xff) / 255, (color & 0xff) / 255];
}

/** Appends flat horizontal quads at height z (upward normals; uv in metres / uvScale). */
export function addFlatQuads(mesh: MeshData, quads: readonly Quad[], z: number, color = 0xffffff, uvScale = 1): MeshData {
  const [r, g, b] = rgb(color);
  for (const q of quads) {
    const base = mesh.positions.length / 3;
    for (const p of q) {
      mesh.positions.push(p.x, p.y, z);
      mesh.normals.push(0, 0, 1);
      mesh.uvs.push(p.x / uvScale, p.y / uvScale);
      mesh.colors.push(r, g, b);
    }
    mesh.indices.push(base, base + 1, base + 2, base, base + 2, base + 3);
  }
  return mesh;
}

/** Square quad of half size h around c. */
export function squareQuad(c: Vec2, h: number): Quad {
  return [
    { x: c.x - h, y: c.y - h },
    { x: c.x + h, y: c.y - h },
    { x: c.x + h, y: c.y + h },
    { x: c.x - h, y: c.y + h },
  ];
}

/**
 * Walls and roofs of every building. Wall uvs: u = metres along the facade / floorWidth, v = metres up /
 * floorHeight, so a repeating window texture lines up with floors. Roofs get uv (0,0).
 */
export function buildingMesh(prisms: readonly BuildingPrism[], floorWidth = 4, floorHeight = 3.5): MeshData {
  const mesh = emptyMesh();
  for (const prism of prisms) {
    const [r, g, b] = rgb(prism.color);
    const fp = prism.footprint;
    const h = prism.heightM;
    let along = 0;
    for (let i = 0; i < fp.length; i++) {
      const p = fp[i]!;
      const q = fp[(i + 1) % fp.length]!;
      const len = Math.hypot(q.x - p.x, q.y - p.y);
      if (len < 1e-9) continue;
      // Outward normal of a CCW ring edge is the right-hand normal of its direction.
      const nx = (q.y - p.y) / len;
      const ny = -(q.x - p.x) / len;
      const base = mesh.positions.length / 3;
      mesh.positions.push(p.x, p.y, 0, q.x, q.y, 0, q.x, q.y, h, p.x, p.y, h);
      for (let k = 0; k < 4; k++) {
        mesh.normals.push(nx, ny, 0);
        mesh.colors.push(r, g, b);
      }
      const u0 = along / floorWidth;
      const u1 = (along + len) / floorWidth;
      mesh.uvs.push(u0, 0, u1, 0, u1, h / floorHeight, u0, h / floorHeight);
      mesh.indices.push(base, base + 1, base + 2, base, base + 2, base + 3);
      along += len;
    }
    const roofBase = mesh.positions.length / 3;
    for (const p of fp) {
      mesh.positions.push(p.x, p.y, h);
      mesh.normals.push(0, 0, 1);
      mesh.uvs.push(0, 0);
      mesh.colors.push(r * 0.7, g * 0.7, b * 0.7);
    }
    for (const i of triangulate(fp)) mesh.indices.push(roofBase + i);
  }
  return mesh;
}

/** Where each approach's traffic light or stop sign pole stands: on the kerb to the right of the approach. */
export interface ControlPole {
  intersectionId: string;
  roadId: string;
  control: IntersectionControl;
  position: Vec2;
  /** Direction the sign/light faces (towards approaching traffic), radians CCW from +x. */
  facing: number;
  /** Which light phase governs this approach. */
  axis: LightAxis;
}

export type LightAxis = "ns" | "ew";

/** A road counts as north-south when it runs more along y than along x. */
export function roadAxis(road: Road): LightAxis {
  const { u } = roadFrame(road);
  return Math.abs(u.y) >= Math.abs(u.x) ? "ns" : "ew";
}

export function controlPoles(world: World): ControlPole[] {
  const roads = roadsById(world);
  const boxes = new Map(intersectionBoxes(world).map((b) => [b.id, b]));
  const out: ControlPole[] = [];
  for (const i of world.intersections) {
    if (i.control !== IntersectionControl.TRAFFIC_LIGHT && i.control !== IntersectionControl.STOP_SIGN) continue;
    const c = pt(i.position);
    const half = boxes.get(i.id)?.halfSize ?? 5;
    for (const id of i.roadIds) {
      const road = roads.get(id);
      if (road === undefined) continue;
      const f = roadFrame(road);
      // Direction from the intersection out along the road (the approach comes in against it).
      const out_ = road.fromIntersection === i.id ? f.u : { x: -f.u.x, y: -f.u.y };
      // Arriving traffic drives along d = -out_; the pole stands on its right-hand kerb, right = (d.y, -d.x).
      const d = { x: -out_.x, y: -out_.y };
      const right = { x: d.y, y: -d.x };
      const along = Math.max(half, 0) + 1.5;
      const across = road.widthM / 2 + Math.min(road.sidewalkM, 3) * 0.5;
      out.push({
        intersectionId: i.id,
        roadId: id,
        control: i.control,
        position: { x: c.x + out_.x * along + right.x * across, y: c.y + out_.y * along + right.y * across },
        facing: Math.atan2(out_.y, out_.x),
        axis: roadAxis(road),
      });
    }
  }
  return out;
}

/**
 * One traffic-light head of an approach and what holds it up (scalediffusion/sim/geometry.py SignalHead, golden-tested).
 * Every traffic-light approach has two: the near head on its kerb pole, and a larger far-side head hung from a mast arm
 * over the approach's lanes beyond the junction, where a driver (and a camera low in the car) looks while approaching.
 * Boxes are [centre, size, yaw] as addBox takes them; lamps top to bottom are red, amber, green.
 */
export interface SignalHead {
  intersectionId: string;
  roadId: string;
  axis: LightAxis;
  facing: number;
  far: boolean;
  center: [number, number, number];
  size: [number, number, number];
  lampRadius: number;
  lamps: [number, number, number][];
  mounts: [[number, number, number], [number, number, number], number][];
  /** Two plates along the head's sides reaching past the lamps: a lamp is seen from in front of its head only. */
  visors: [[number, number, number], [number, number, number], number][];
}

const NEAR_HEAD = { z: 4.5, size: [0.3, 0.4, 1.1] as [number, number, number], lampRadius: 0.13, lampStep: 0.35, lampForward: 0.17 };
const FAR_HEAD = { z: 5.6, size: [0.4, 0.6, 1.6] as [number, number, number], lampRadius: 0.21, lampStep: 0.5, lampForward: 0.22 };
const MAST_TOP_M = 6.6;
const VISOR_REACH = 2.5; // lamp radii forward of the head's face
const VISOR_THICKNESS_M = 0.03;

function signalHead(pole: ControlPole, far: boolean, x: number, y: number, mounts: SignalHead["mounts"]): SignalHead {
  const spec = far ? FAR_HEAD : NEAR_HEAD;
  const fx = Math.cos(pole.facing);
  const fy = Math.sin(pole.facing);
  const lamps = [1, 0, -1].map((k) => [x + fx * spec.lampForward, y + fy * spec.lampForward, spec.z + k * spec.lampStep] as [number, number, number]);
  const [depth, across, height] = spec.size;
  const reach = VISOR_REACH * spec.lampRadius;
  const along = depth / 2 + reach / 2;
  const side = across / 2 - VISOR_THICKNESS_M / 2;
  const visors = [1, -1].map(
    (k) =>
      [[x + fx * along - fy * side * k, y + fy * along + fx * side * k, spec.z], [reach, VISOR_THICKNESS_M, height], pole.facing] as [
        [number, number, number],
        [number, number, number],
        number,
      ],
  );
  return {
    intersectionId: pole.intersectionId,
    roadId: pole.roadId,
    axis: pole.axis,
    facing: pole.facing,
    far,
    center: [x, y, spec.z],
    size: spec.size,
    lampRadius: spec.lampRadius,
    lamps,
    mounts,
    visors,
  };
}

/** The traffic-light heads of every approach: the near head on the kerb pole, the far head on a mast arm from a pole
 * at the far right-hand corner, centred over the approach's lanes (a quarter of the road's width right of its centre). */
export function signalHeads(world: World): SignalHead[] {
  const roads = roadsById(world);
  const boxes = new Map(intersectionBoxes(world).map((b) => [b.id, b]));
  const centres = new Map(world.intersections.map((i) => [i.id, pt(i.position)]));
  const out: SignalHead[] = [];
  for (const pole of controlPoles(world)) {
    if (pole.control !== IntersectionControl.TRAFFIC_LIGHT) continue;
    const p = pole.position;
    out.push(signalHead(pole, false, p.x, p.y, [[[p.x, p.y, 2.2], [0.16, 0.16, 4.4], 0]]));
    const road = roads.get(pole.roadId)!;
    const c = centres.get(pole.intersectionId)!;
    const d = { x: -Math.cos(pole.facing), y: -Math.sin(pole.facing) };
    const right = { x: d.y, y: -d.x };
    const beyond = (boxes.get(pole.intersectionId)?.halfSize ?? 5) + 1.5;
    const lane = road.widthM / 4;
    const kerb = road.widthM / 2 + Math.min(road.sidewalkM, 3) * 0.5;
    const hx = c.x + d.x * beyond + right.x * lane;
    const hy = c.y + d.y * beyond + right.y * lane;
    const bx = c.x + d.x * beyond + right.x * kerb;
    const by = c.y + d.y * beyond + right.y * kerb;
    const arm = kerb - lane + 0.3;
    const armYaw = Math.atan2(-right.y, -right.x);
    const hanger = MAST_TOP_M - FAR_HEAD.z - FAR_HEAD.size[2] / 2;
    out.push(
      signalHead(pole, true, hx, hy, [
        [[bx, by, MAST_TOP_M / 2], [0.22, 0.22, MAST_TOP_M], 0],
        [[bx - (right.x * arm) / 2, by - (right.y * arm) / 2, MAST_TOP_M - 0.1], [arm, 0.14, 0.14], armYaw],
        [[hx, hy, (MAST_TOP_M + FAR_HEAD.z + FAR_HEAD.size[2] / 2) / 2], [0.06, 0.06, hanger], 0],
      ]),
    );
  }
  return out;
}

export type LightColor = "green" | "yellow" | "red";

/**
 * Traffic-light colour for one axis at time tS (seconds on any shared clock). The cycle: north-south turns green at
 * light_offset_s into the cycle, stays green for cycle/2 - yellow, yellow for yellow, then red for cycle/2 while
 * east-west runs the same pattern shifted by half a cycle.
 */
export function lightColor(world: Pick<World, "lightCycleS" | "lightYellowS">, offsetS: number, axis: LightAxis, tS: number): LightColor {
  const cycle = world.lightCycleS > 0 ? world.lightCycleS : 60;
  const yellow = Math.min(Math.max(world.lightYellowS, 0), cycle / 2);
  const shift = axis === "ns" ? offsetS : offsetS + cycle / 2;
  const phase = (((tS - shift) % cycle) + cycle) % cycle;
  if (phase < cycle / 2 - yellow) return "green";
  if (phase < cycle / 2) return "yellow";
  return "red";
}

export interface Marking {
  color: "yellow" | "white";
  corners: Quad;
}

/**
 * Painted lines: a double yellow line between the two directions of two-way roads and dashed white lines between
 * lanes of one direction (right-hand traffic: start->end lanes on the right of the centerline). Lines stop at the
 * intersection boxes.
 */
export function laneMarkings(world: World, dash = 3, gap = 6): Marking[] {
  const boxes = new Map(intersectionBoxes(world).map((b) => [b.id, b.halfSize]));
  const out: Marking[] = [];
  const strip = (road: Road, a: number, b: number, across: number, width: number, color: Marking["color"]) => {
    const { u, n, start } = roadFrame(road);
    out.push({
      color,
      corners: [
        offset(start, u, a, n, across - width / 2),
        offset(start, u, b, n, across - width / 2),
        offset(start, u, b, n, across + width / 2),
        offset(start, u, a, n, across + width / 2),
      ],
    });
  };
  for (const road of world.roads) {
    const { length } = roadFrame(road);
    const a = boxes.get(road.fromIntersection) ?? 0;
    const b = length - (boxes.get(road.toIntersection) ?? 0);
    if (b - a < 1) continue;
    const f = road.lanesForward;
    const back = road.lanesBackward;
    const lanes = f + back;
    if (lanes === 0 || !(road.widthM > 0)) continue;
    const lw = road.widthM / lanes;
    const edge = -road.widthM / 2;
    if (f > 0 && back > 0) {
      const c = edge + f * lw;
      strip(road, a, b, c - 0.15, 0.12, "yellow");
      strip(road, a, b, c + 0.15, 0.12, "yellow");
    }
    for (let k = 1; k < lanes; k++) {
      if (k === f && back > 0) continue; // the yellow centre line
      const across = edge + k * lw;
      for (let s = a + gap / 2; s + dash <= b; s += dash + gap) strip(road, s, s + dash, across, 0.12, "white");
    }
  }
  return out;
}

/**
 * Appends an oriented box: centre (city frame), size along its own x (heading direction), y and z, rotated by yaw
 * about z. Used for poles, signal heads and other street furniture merged into one mesh.
 */
export function addBox(
  mesh: MeshData,
  c: { x: number; y: number; z: number },
  size: { x: number; y: number; z: number },
  yaw: number,
  color: number,
): MeshData {
  const [r, g, b] = rgb(color);
  const cs = Math.cos(yaw);
  const sn = Math.sin(yaw);
  const hx = size.x / 2;
  const hy = size.y / 2;
  const hz = size.z / 2;
  const world = (lx: number, ly: number, lz: number): [number, number, number] => [c.x + cs * lx - sn * ly, c.y + sn * lx + cs * ly, c.z + lz];
  const faces: { n: [number, number, number]; v: [number, number, number][] }[] = [
    { n: [1, 0, 0], v: [[hx, -hy, -hz], [hx, hy, -hz], [hx, hy, hz], [hx, -hy, hz]] },
    { n: [-1, 0, 0], v: [[-hx, hy, -hz], [-hx, -hy, -hz], [-hx, -hy, hz], [-hx, hy, hz]] },
    { n: [0, 1, 0], v: [[hx, hy, -hz], [-hx, hy, -hz], [-hx, hy, hz], [hx, hy, hz]] },
    { n: [0, -1, 0], v: [[-hx, -hy, -hz], [hx, -hy, -hz], [hx, -hy, hz], [-hx, -hy, hz]] },
    { n: [0, 0, 1], v: [[-hx, -hy, hz], [hx, -hy, hz], [hx, hy, hz], [-hx, hy, hz]] },
    { n: [0, 0, -1], v: [[-hx, hy, -hz], [hx, hy, -hz], [hx, -hy, -hz], [-hx, -hy, -hz]] },
  ];
  for (const f of faces) {
    const base = mesh.positions.length / 3;
    const nx = cs * f.n[0] - sn * f.n[1];
    const ny = sn * f.n[0] + cs * f.n[1];
    for (const v of f.v) {
      mesh.positions.push(...world(v[0], v[1], v[2]));
      mesh.normals.push(nx, ny, f.n[2]);
      mesh.uvs.push(0, 0);
      mesh.colors.push(r, g, b);
    }
    mesh.indices.push(base, base + 1, base + 2, base, base + 2, base + 3);
  }
  return mesh;
}

/** A flat regular polygon standing upright (a sign plate), facing direction `facing`. */
export function addUprightPolygon(mesh: MeshData, c: { x: number; y: number; z: number }, radius: number, sides: number, facing: number, color: number): MeshData {
  const [r, g, b] = rgb(color);
  const fx = Math.cos(facing);
  const fy = Math.sin(facing);
  // In-plane horizontal axis (to the left of the facing direction) and vertical axis.
  const lx = -fy;
  const ly = fx;
  const base = mesh.positions.length / 3;
  mesh.positions.push(c.x, c.y, c.z);
  mesh.normals.push(fx, fy, 0);
  mesh.uvs.push(0, 0);
  mesh.colors.push(r, g, b);
  for (let i = 0; i < sides; i++) {
    const a = (Math.PI / sides) * (2 * i + 1);
    mesh.positions.push(c.x + lx * Math.cos(a) * radius, c.y + ly * Math.cos(a) * radius, c.z + Math.sin(a) * radius);
    mesh.normals.push(fx, fy, 0);
    mesh.uvs.push(0, 0);
    mesh.colors.push(r, g, b);
  }
  for (let i = 0; i < sides; i++) mesh.indices.push(base, base + 1 + i, base + 1 + ((i + 1) % sides));
  return mesh;
}

/** The side of the square tiles the city's static meshes are cut into (m). One mesh per tile lets the renderer skip
 * every tile outside the camera's view (Three.js culls by bounding sphere): one merged city made every frame sent for
 * repainting transform the whole city's vertices, ~40 ms on a software rasteriser even at 176x96. */
export const TILE_M = 120;

/** Groups items by the square tile (side `tileM`) their anchor point falls in; tiles in a stable order. */
export function groupByTile<T>(items: readonly T[], anchor: (item: T) => Vec2, tileM = TILE_M): T[][] {
  const tiles = new Map<string, T[]>();
  for (const item of items) {
    const p = anchor(item);
    const key = `${Math.floor(p.x / tileM)},${Math.floor(p.y / tileM)}`;
    let tile = tiles.get(key);
    if (tile === undefined) tiles.set(key, (tile = []));
    tile.push(item);
  }
  return [...tiles.keys()].sort().map((k) => tiles.get(k)!);
}

/** The mean of a polygon's corners: a tile anchor. */
export function centroid(points: readonly Vec2[]): Vec2 {
  let x = 0;
  let y = 0;
  for (const p of points) {
    x += p.x;
    y += p.y;
  }
  return { x: x / Math.max(1, points.length), y: y / Math.max(1, points.length) };
}
