// Kinematic bicycle model of the player's car and its collisions with the city. Pure and deterministic: the same
// inputs and time steps give the same states on every machine.

import { ActorKind, type World } from "../gen/scalediffusion/v1/world_pb";
import type { ActorPose } from "../world/actors";
import { normaliseRing, type Vec2 } from "../world/worldGeometry";

export interface VehicleState {
  /** Centre of the car, metres (x east, y north). */
  x: number;
  y: number;
  /** Heading, radians counter-clockwise from +x, in (-pi, pi]. */
  theta: number;
  /** Signed forward speed, m/s (negative when reversing). */
  speed: number;
}

export interface DriveInput {
  /** [-1, 1], positive = steer right (clockwise; CARLA's convention). */
  steer: number;
  /** [0, 1] */
  throttle: number;
  /** [0, 1] */
  brake: number;
  /** Reverse gear engaged: throttle drives backwards. Without it the car never rolls below 0 m/s. */
  reverse?: boolean;
}

export interface VehicleParams {
  wheelbaseM: number;
  lengthM: number;
  widthM: number;
  /** Largest road-wheel angle at walking pace, radians. */
  maxSteerRad: number;
  /** Steering is limited so that v^2 tan(delta) / L never exceeds this lateral acceleration (m/s^2). */
  maxLateralAccel: number;
  /** Largest throttle acceleration at low speed (m/s^2). */
  maxAccel: number;
  /** Power per unit mass (W/kg = m^2/s^3): above maxAccel = power / v, acceleration falls off. */
  powerPerMass: number;
  /** Deceleration at full brake (m/s^2). */
  maxBrake: number;
  /** Rolling resistance (m/s^2) and aerodynamic drag coefficient (1/m): a = rolling + aero * v^2. */
  rolling: number;
  aero: number;
  maxSpeed: number;
  maxReverseSpeed: number;
  reverseAccel: number;
}

export const DEFAULT_PARAMS: Readonly<VehicleParams> = Object.freeze({
  wheelbaseM: 2.7,
  lengthM: 4.6,
  widthM: 1.9,
  maxSteerRad: (35 * Math.PI) / 180,
  maxLateralAccel: 7,
  maxAccel: 3.5,
  powerPerMass: 60,
  maxBrake: 8,
  rolling: 0.15,
  aero: 0.0012,
  maxSpeed: 40,
  maxReverseSpeed: 5,
  reverseAccel: 2,
});

const clamp = (v: number, lo: number, hi: number) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : 0);

export function normaliseAngle(a: number): number {
  let r = a % (2 * Math.PI);
  if (r <= -Math.PI) r += 2 * Math.PI;
  if (r > Math.PI) r -= 2 * Math.PI;
  return r;
}

/** The largest road-wheel angle at a speed: full lock when slow, shrinking so lateral acceleration stays bounded. */
export function maxSteerAngle(speed: number, p: VehicleParams = DEFAULT_PARAMS): number {
  const v2 = speed * speed;
  if (v2 < 1e-9) return p.maxSteerRad;
  return Math.min(p.maxSteerRad, Math.atan((p.maxLateralAccel * p.wheelbaseM) / v2));
}

/** Longitudinal acceleration from the pedals alone (before resistances), m/s^2. */
export function driveAccel(speed: number, input: DriveInput, p: VehicleParams = DEFAULT_PARAMS): number {
  const throttle = clamp(input.throttle, 0, 1);
  if (input.reverse) return -throttle * p.reverseAccel;
  return throttle * Math.min(p.maxAccel, p.powerPerMass / Math.max(Math.abs(speed), 1));
}

/**
 * One fixed time step. Longitudinal: pedal acceleration, then brake + rolling + aerodynamic resistance pulling the
 * speed towards zero (never through it). Lateral: kinematic bicycle about the centre of mass (half-way along the
 * wheelbase) with the speed-dependent steering limit. Positive steer turns clockwise (theta decreases).
 */
export function step(state: VehicleState, input: DriveInput, dt: number, p: VehicleParams = DEFAULT_PARAMS): VehicleState {
  if (!(dt > 0)) return { ...state };
  const v0 = state.speed;
  let v = v0 + driveAccel(v0, input, p) * dt;
  const resist = (clamp(input.brake, 0, 1) * p.maxBrake + p.rolling + p.aero * v * v) * dt;
  v = Math.abs(v) <= resist ? 0 : v - Math.sign(v) * resist;
  // No rolling backwards without reverse gear, and no creeping forward in reverse; a change of direction always
  // passes through a step at exactly 0.
  if (!input.reverse && v < 0 && v0 >= 0) v = 0;
  if (input.reverse && v > 0 && v0 <= 0) v = 0;
  if (v0 !== 0 && v !== 0 && Math.sign(v) !== Math.sign(v0)) v = 0;
  v = clamp(v, -p.maxReverseSpeed, p.maxSpeed);

  const delta = -clamp(input.steer, -1, 1) * maxSteerAngle(v0, p);
  const beta = Math.atan(0.5 * Math.tan(delta));
  const vAvg = (v0 + v) / 2;
  const thetaRate = (vAvg / p.wheelbaseM) * Math.cos(beta) * Math.tan(delta);
  const thetaMid = state.theta + (thetaRate * dt) / 2;
  return {
    x: state.x + vAvg * Math.cos(thetaMid + beta) * dt,
    y: state.y + vAvg * Math.sin(thetaMid + beta) * dt,
    theta: normaliseAngle(state.theta + thetaRate * dt),
    speed: v,
  };
}

// ---- collisions ----------------------------------------------------------------------------------------------

export interface Aabb {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

interface BuildingObstacle {
  kind: "building";
  id: string;
  ring: Vec2[];
  box: Aabb;
}

interface ParkedObstacle {
  kind: "parked";
  id: string;
  corners: Vec2[];
  box: Aabb;
}

type Obstacle = BuildingObstacle | ParkedObstacle;

export interface Collision {
  kind: "building" | "parked" | "bounds" | "actor";
  id: string;
}

/** A World's obstacles bucketed in a uniform grid so each query looks at a handful. */
export interface CollisionWorld {
  readonly cell: number;
  readonly buckets: ReadonlyMap<string, readonly Obstacle[]>;
  readonly bounds: Aabb | null;
}

function boxOf(points: readonly Vec2[]): Aabb {
  const box = { minX: Infinity, minY: Infinity, maxX: -Infinity, maxY: -Infinity };
  for (const q of points) {
    box.minX = Math.min(box.minX, q.x);
    box.minY = Math.min(box.minY, q.y);
    box.maxX = Math.max(box.maxX, q.x);
    box.maxY = Math.max(box.maxY, q.y);
  }
  return box;
}

/** Corners of an oriented box (counter-clockwise): centre, heading, length along the heading, width across. */
export function orientedBox(cx: number, cy: number, heading: number, length: number, width: number): Vec2[] {
  const c = Math.cos(heading);
  const s = Math.sin(heading);
  const hl = length / 2;
  const hw = width / 2;
  return [
    { x: cx + c * hl + s * hw, y: cy + s * hl - c * hw },
    { x: cx + c * hl - s * hw, y: cy + s * hl + c * hw },
    { x: cx - c * hl - s * hw, y: cy - s * hl + c * hw },
    { x: cx - c * hl + s * hw, y: cy - s * hl - c * hw },
  ];
}

export function carCorners(state: VehicleState, p: VehicleParams = DEFAULT_PARAMS): Vec2[] {
  return orientedBox(state.x, state.y, state.theta, p.lengthM, p.widthM);
}

/** Ray-casting point-in-polygon (boundary points may go either way). */
export function pointInPolygon(pt: Vec2, poly: readonly Vec2[]): boolean {
  let inside = false;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
    const a = poly[i]!;
    const b = poly[j]!;
    if (a.y > pt.y !== b.y > pt.y && pt.x < ((b.x - a.x) * (pt.y - a.y)) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

/** Separating-axis test for two convex polygons. */
export function convexOverlap(a: readonly Vec2[], b: readonly Vec2[]): boolean {
  for (const poly of [a, b]) {
    for (let i = 0; i < poly.length; i++) {
      const p = poly[i]!;
      const q = poly[(i + 1) % poly.length]!;
      const ax = -(q.y - p.y);
      const ay = q.x - p.x;
      let minA = Infinity;
      let maxA = -Infinity;
      for (const v of a) {
        const d = v.x * ax + v.y * ay;
        minA = Math.min(minA, d);
        maxA = Math.max(maxA, d);
      }
      let minB = Infinity;
      let maxB = -Infinity;
      for (const v of b) {
        const d = v.x * ax + v.y * ay;
        minB = Math.min(minB, d);
        maxB = Math.max(maxB, d);
      }
      if (maxA < minB || maxB < minA) return false;
    }
  }
  return true;
}

const cache = new WeakMap<World, CollisionWorld>();

export function collisionWorld(world: World, cell = 32): CollisionWorld {
  const hit = cache.get(world);
  if (hit !== undefined && hit.cell === cell) return hit;
  const buckets = new Map<string, Obstacle[]>();
  const add = (o: Obstacle) => {
    for (let gx = Math.floor(o.box.minX / cell); gx <= Math.floor(o.box.maxX / cell); gx++) {
      for (let gy = Math.floor(o.box.minY / cell); gy <= Math.floor(o.box.maxY / cell); gy++) {
        const k = `${gx},${gy}`;
        const list = buckets.get(k) ?? [];
        list.push(o);
        buckets.set(k, list);
      }
    }
  };
  for (const b of world.buildings) {
    const ring = normaliseRing(b.footprint);
    if (ring.length >= 3) add({ kind: "building", id: b.id, ring, box: boxOf(ring) });
  }
  world.parked.forEach((v, i) => {
    const corners = orientedBox(v.position?.x ?? 0, v.position?.y ?? 0, v.heading, v.lengthM || 4.6, v.widthM || 1.9);
    add({ kind: "parked", id: `parked-${i}`, corners, box: boxOf(corners) });
  });
  const min = world.min;
  const max = world.max;
  const bounds =
    min !== undefined && max !== undefined && max.x > min.x && max.y > min.y ? { minX: min.x, minY: min.y, maxX: max.x, maxY: max.y } : null;
  const out: CollisionWorld = { cell, buckets, bounds };
  cache.set(world, out);
  return out;
}

function isCollisionWorld(w: World | CollisionWorld): w is CollisionWorld {
  return (w as CollisionWorld).buckets instanceof Map;
}

/**
 * What the car at `state` overlaps: a building footprint (a car corner inside it, or a footprint corner inside the
 * car), a parked car (oriented boxes overlap), or the edge of the world. Null when clear.
 */
export function collides(state: VehicleState, world: World | CollisionWorld, p: VehicleParams = DEFAULT_PARAMS): Collision | null {
  const cw = isCollisionWorld(world) ? world : collisionWorld(world);
  const car = carCorners(state, p);
  const box = boxOf(car);
  if (cw.bounds !== null && (box.minX < cw.bounds.minX || box.minY < cw.bounds.minY || box.maxX > cw.bounds.maxX || box.maxY > cw.bounds.maxY)) {
    return { kind: "bounds", id: "world" };
  }
  const seen = new Set<Obstacle>();
  for (let gx = Math.floor(box.minX / cw.cell); gx <= Math.floor(box.maxX / cw.cell); gx++) {
    for (let gy = Math.floor(box.minY / cw.cell); gy <= Math.floor(box.maxY / cw.cell); gy++) {
      for (const o of cw.buckets.get(`${gx},${gy}`) ?? []) {
        if (seen.has(o)) continue;
        seen.add(o);
        if (o.box.maxX < box.minX || o.box.minX > box.maxX || o.box.maxY < box.minY || o.box.minY > box.maxY) continue;
        if (o.kind === "parked") {
          if (convexOverlap(car, o.corners)) return { kind: "parked", id: o.id };
        } else if (car.some((c) => pointInPolygon(c, o.ring)) || o.ring.some((c) => pointInPolygon(c, car))) {
          return { kind: "building", id: o.id };
        }
      }
    }
  }
  return null;
}

/** Whether a circle overlaps a convex polygon (counter-clockwise): centre inside, or closer than r to an edge. */
export function circleOverlapsConvex(cx: number, cy: number, r: number, poly: readonly Vec2[]): boolean {
  if (pointInPolygon({ x: cx, y: cy }, poly)) return true;
  const r2 = r * r;
  for (let i = 0; i < poly.length; i++) {
    const a = poly[i]!;
    const b = poly[(i + 1) % poly.length]!;
    const ex = b.x - a.x;
    const ey = b.y - a.y;
    const len2 = ex * ex + ey * ey;
    const f = len2 > 0 ? Math.min(1, Math.max(0, ((cx - a.x) * ex + (cy - a.y) * ey) / len2)) : 0;
    const dx = a.x + ex * f - cx;
    const dy = a.y + ey * f - cy;
    if (dx * dx + dy * dy <= r2) return true;
  }
  return false;
}

/**
 * The first moving actor the car at `state` overlaps: an NPC vehicle (oriented boxes overlap) or a pedestrian (a
 * circle of diameter width_m against the car's box). Null when clear.
 */
export function actorCollision(state: VehicleState, actors: readonly ActorPose[], p: VehicleParams = DEFAULT_PARAMS): Collision | null {
  if (actors.length === 0) return null;
  const car = carCorners(state, p);
  const reach = Math.hypot(p.lengthM, p.widthM) / 2;
  for (const a of actors) {
    const far = reach + Math.hypot(a.lengthM, a.widthM) / 2;
    if (Math.abs(a.x - state.x) > far || Math.abs(a.y - state.y) > far) continue;
    if (a.kind === ActorKind.PEDESTRIAN) {
      if (circleOverlapsConvex(a.x, a.y, a.widthM / 2, car)) return { kind: "actor", id: a.id };
    } else if (convexOverlap(car, orientedBox(a.x, a.y, a.heading, a.lengthM, a.widthM))) {
      return { kind: "actor", id: a.id };
    }
  }
  return null;
}

export interface StepResult {
  state: VehicleState;
  collision: Collision | null;
}

/**
 * step() with collisions: a step that would end overlapping an obstacle is undone (the car stays where it was, i.e.
 * is pushed back out of the obstacle) and stops dead. A car that already overlaps something (spawned inside, or
 * run into by a moving actor) may move freely so it can get out. `actors` are the moving actors' poses at this step's
 * time (actorPoses), treated like parked cars (vehicles) or round obstacles (pedestrians).
 */
export function stepWithCollisions(
  state: VehicleState,
  input: DriveInput,
  dt: number,
  world: World | CollisionWorld,
  p: VehicleParams = DEFAULT_PARAMS,
  actors: readonly ActorPose[] = [],
): StepResult {
  const next = step(state, input, dt, p);
  const hitAt = (s: VehicleState) => collides(s, world, p) ?? actorCollision(s, actors, p);
  const hit = hitAt(next);
  if (hit === null) return { state: next, collision: null };
  if (hitAt(state) !== null) return { state: next, collision: hit };
  return { state: { ...state, speed: 0 }, collision: hit };
}
