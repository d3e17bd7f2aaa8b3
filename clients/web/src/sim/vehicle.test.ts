import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActorKind, WorldSchema } from "../gen/scalediffusion/v1/world_pb";
import { actorPoses, type ActorPose } from "../world/actors";
import { grid3x3 } from "../world/fixtures/grid3x3";
import {
  actorCollision,
  circleOverlapsConvex,
  collides,
  convexOverlap,
  DEFAULT_PARAMS,
  maxSteerAngle,
  orientedBox,
  pointInPolygon,
  step,
  stepWithCollisions,
  type DriveInput,
  type VehicleState,
} from "./vehicle";

const DT = 1 / 60;
const run = (s: VehicleState, input: DriveInput, seconds: number) => {
  let state = s;
  for (let i = 0; i < Math.round(seconds / DT); i++) state = step(state, input, DT);
  return state;
};
const at = (x: number, y: number, theta = 0, speed = 0): VehicleState => ({ x, y, theta, speed });
const full: DriveInput = { steer: 0, throttle: 1, brake: 0 };

describe("longitudinal dynamics", () => {
  it("accelerates in a straight line within the acceleration limit", () => {
    let s = at(0, 0);
    let prev = s.speed;
    for (let i = 0; i < 60 * 5; i++) {
      s = step(s, full, DT);
      const a = (s.speed - prev) / DT;
      expect(a).toBeLessThanOrEqual(DEFAULT_PARAMS.maxAccel + 1e-9);
      expect(a).toBeGreaterThan(0);
      prev = s.speed;
    }
    expect(s.y).toBe(0);
    expect(s.theta).toBe(0);
    // ~3.3 m/s^2 net at first: after 5 s somewhere between 12 and 17.5 m/s.
    expect(s.speed).toBeGreaterThan(12);
    expect(s.speed).toBeLessThan(17.5);
    expect(s.x).toBeGreaterThan(25);
  });

  it("tops out below the speed limit and falls off with power at speed", () => {
    const s = run(at(0, 0), full, 120);
    expect(s.speed).toBeLessThanOrEqual(DEFAULT_PARAMS.maxSpeed);
    expect(s.speed).toBeGreaterThan(25);
    const slow = step(at(0, 0, 0, 5), full, DT).speed - 5;
    const fast = step(at(0, 0, 0, 30), full, DT).speed - 30;
    expect(fast).toBeLessThan(slow);
  });

  it("brakes to a stop and never rolls backwards without reverse", () => {
    let s = at(0, 0, 0, 20);
    let t = 0;
    while (s.speed > 0 && t < 10) {
      s = step(s, { steer: 0, throttle: 0, brake: 1 }, DT);
      t += DT;
    }
    expect(s.speed).toBe(0);
    // 20 m/s at ~8 m/s^2 (+ drag): about 2.5 s, about 25 m.
    expect(t).toBeGreaterThan(2);
    expect(t).toBeLessThan(2.7);
    expect(s.x).toBeGreaterThan(20);
    expect(s.x).toBeLessThan(27);
    s = run(s, { steer: 0, throttle: 0, brake: 1 }, 2);
    expect(s.speed).toBe(0);
    // Coasting also stops at zero rather than going negative.
    expect(run(at(0, 0, 0, 1), { steer: 0, throttle: 0, brake: 0 }, 20).speed).toBe(0);
  });

  it("reverses only with reverse gear, up to the reverse limit", () => {
    const back = run(at(0, 0), { steer: 0, throttle: 1, brake: 0, reverse: true }, 10);
    expect(back.speed).toBeLessThan(0);
    expect(back.speed).toBeGreaterThanOrEqual(-DEFAULT_PARAMS.maxReverseSpeed);
    expect(back.x).toBeLessThan(0);
    // Throttle in reverse gear while rolling forward slows the car, stops it for a step, then backs up.
    let s = at(0, 0, 0, 3);
    const speeds: number[] = [];
    for (let i = 0; i < 300; i++) {
      s = step(s, { steer: 0, throttle: 1, brake: 0, reverse: true }, DT);
      speeds.push(s.speed);
    }
    expect(speeds).toContain(0);
    expect(s.speed).toBeLessThan(0);
    const firstZero = speeds.indexOf(0);
    expect(speeds.slice(0, firstZero).every((v) => v > 0)).toBe(true);
  });
});

describe("steering", () => {
  it("right steer (positive) turns clockwise, left counter-clockwise", () => {
    const right = run(at(0, 0, 0, 5), { steer: 1, throttle: 0.3, brake: 0 }, 1);
    expect(right.theta).toBeLessThan(0);
    expect(right.y).toBeLessThan(0);
    const left = run(at(0, 0, 0, 5), { steer: -1, throttle: 0.3, brake: 0 }, 1);
    expect(left.theta).toBeGreaterThan(0);
    expect(left.y).toBeGreaterThan(0);
    expect(left.theta).toBeCloseTo(-right.theta, 9);
  });

  it("limits the steering angle more at speed", () => {
    expect(maxSteerAngle(0)).toBeCloseTo(DEFAULT_PARAMS.maxSteerRad);
    expect(maxSteerAngle(3)).toBeCloseTo(DEFAULT_PARAMS.maxSteerRad);
    expect(maxSteerAngle(10)).toBeLessThan(maxSteerAngle(5));
    expect(maxSteerAngle(30)).toBeLessThan(maxSteerAngle(10));
    // Lateral acceleration at full lock stays bounded by the limit at any speed above the full-lock speed.
    for (const v of [8, 15, 25, 35]) {
      const lat = (v * v * Math.tan(maxSteerAngle(v))) / DEFAULT_PARAMS.wheelbaseM;
      expect(lat).toBeCloseTo(DEFAULT_PARAMS.maxLateralAccel, 6);
    }
    // Yaw rate at full lock: higher at 8 m/s than at 30 m/s.
    const yaw = (v: number) => Math.abs(step(at(0, 0, 0, v), { steer: 1, throttle: 0, brake: 0 }, DT).theta) / DT;
    expect(yaw(30)).toBeLessThan(yaw(8));
  });

  it("does not turn when standing still", () => {
    expect(step(at(1, 2, 0.5), { steer: 1, throttle: 0, brake: 0 }, DT)).toEqual(at(1, 2, 0.5));
  });

  it("is deterministic", () => {
    const input = { steer: 0.37, throttle: 0.8, brake: 0 };
    expect(run(at(0, 0), input, 3)).toEqual(run(at(0, 0), input, 3));
  });
});

describe("collisions", () => {
  const world = grid3x3();

  it("geometry helpers", () => {
    const square = orientedBox(0, 0, 0, 2, 2);
    expect(pointInPolygon({ x: 0.5, y: 0.5 }, square)).toBe(true);
    expect(pointInPolygon({ x: 1.5, y: 0 }, square)).toBe(false);
    expect(convexOverlap(square, orientedBox(1.9, 0, Math.PI / 4, 2, 2))).toBe(true);
    expect(convexOverlap(square, orientedBox(3, 0, 0, 2, 2))).toBe(false);
  });

  it("is clear on the road, hits buildings, parked cars and the world edge", () => {
    expect(collides(at(2.5, 25, Math.PI / 2), world)).toBeNull();
    // Building b0_0 spans x,y in [9, 91]; the car's nose pokes into it.
    expect(collides(at(10.5, 50, 0), world)).toEqual({ kind: "building", id: "b0_0" });
    // A parked car sits at (50, -3.8) heading east.
    expect(collides(at(52, -3, 0), world)).toMatchObject({ kind: "parked" });
    expect(collides(at(52, 3, 0), world)).toBeNull();
    expect(collides(at(-49.5, 0, 0), world)).toEqual({ kind: "bounds", id: "world" });
  });

  it("catches a building corner inside the car even when no car corner is inside", () => {
    const w = create(WorldSchema, {
      buildings: [{ id: "spike", heightM: 10, footprint: [{ x: 0, y: 0 }, { x: 10, y: -0.2 }, { x: 10, y: 0.2 }] }],
    });
    expect(collides(at(-1, 0, 0), w)).toEqual({ kind: "building", id: "spike" });
  });

  it("stops the car and keeps it out of the obstacle", () => {
    let s = at(2.5, 40, 0, 0);
    let hits = 0;
    for (let i = 0; i < 60 * 6; i++) {
      const r = stepWithCollisions(s, full, DT, world);
      if (r.collision) hits++;
      s = r.state;
      expect(collides(s, world)).toBeNull();
    }
    expect(hits).toBeGreaterThan(0);
    expect(s.speed).toBe(0);
    // It drove east until its nose reached the building line at x = 9.
    expect(s.x + DEFAULT_PARAMS.lengthM / 2).toBeGreaterThan(8.5);
    expect(s.x + DEFAULT_PARAMS.lengthM / 2).toBeLessThanOrEqual(9);
  });
});

describe("collisions with moving actors", () => {
  const pose = (over: Partial<ActorPose>): ActorPose => ({ id: "a", kind: ActorKind.VEHICLE, x: 0, y: 0, heading: 0, lengthM: 4.5, widthM: 1.9, ...over });
  const car: VehicleState = { x: 0, y: 0, theta: 0, speed: 10 };

  it("circleOverlapsConvex: inside, touching an edge, clear", () => {
    const box = orientedBox(0, 0, 0, 4, 2);
    expect(circleOverlapsConvex(0, 0, 0.1, box)).toBe(true);
    expect(circleOverlapsConvex(2.2, 0, 0.25, box)).toBe(true);
    expect(circleOverlapsConvex(2.3, 1.3, 0.25, box)).toBe(false); // near the corner, but beyond it diagonally
    expect(circleOverlapsConvex(0, 1.4, 0.25, box)).toBe(false);
  });

  it("detects an NPC vehicle by oriented-box overlap, including rotated ones", () => {
    expect(actorCollision(car, [pose({ x: 4.4 })])).toEqual({ kind: "actor", id: "a" });
    expect(actorCollision(car, [pose({ x: 4.7 })])).toBeNull();
    // Crossing at right angles just ahead of the bumper: the NPC's half width (0.95) reaches back to x = 2.25.
    expect(actorCollision(car, [pose({ x: 3.1, heading: Math.PI / 2 })])).not.toBeNull();
    expect(actorCollision(car, [pose({ x: 3.3, heading: Math.PI / 2 })])).toBeNull();
    expect(actorCollision(car, [pose({ x: 0, y: 2.0 })])).toBeNull(); // alongside in the next lane
  });

  it("detects a pedestrian as a circle of its width against the car", () => {
    const ped = (x: number, y: number) => pose({ id: "p", kind: ActorKind.PEDESTRIAN, x, y, lengthM: 0.5, widthM: 0.5 });
    expect(actorCollision(car, [ped(2.4, 0)])).toEqual({ kind: "actor", id: "p" });
    expect(actorCollision(car, [ped(2.6, 0)])).toBeNull();
    expect(actorCollision(car, [ped(0, 1.1)])).not.toBeNull();
    expect(actorCollision(car, [ped(0, 1.3)])).toBeNull();
  });

  it("stops the car like a building does, and lets a car already hit drive out", () => {
    const w = create(WorldSchema, {});
    const npc = [pose({ x: 4.6 + 0.05 })];
    const r = stepWithCollisions(car, { steer: 0, throttle: 1, brake: 0 }, 1 / 60, w, DEFAULT_PARAMS, npc);
    expect(r.collision).toEqual({ kind: "actor", id: "a" });
    expect(r.state).toEqual({ ...car, speed: 0 });
    const clear = stepWithCollisions(car, { steer: 0, throttle: 1, brake: 0 }, 1 / 60, w, DEFAULT_PARAMS, [pose({ x: 20 })]);
    expect(clear.collision).toBeNull();
    expect(clear.state.x).toBeGreaterThan(0);
    // Run into by an NPC (already overlapping): free to move away.
    const stuck = stepWithCollisions(car, { steer: 0, throttle: 0, brake: 0, reverse: true }, 1 / 60, w, DEFAULT_PARAMS, [pose({ x: 4 })]);
    expect(stuck.state).not.toEqual({ ...car, speed: 0 });
  });

  it("uses actorPoses at a drive time", () => {
    const world = create(WorldSchema, {
      actors: [
        {
          id: "npc",
          kind: ActorKind.VEHICLE,
          periodS: 20,
          lengthM: 4.5,
          widthM: 1.9,
          keyframes: [
            { tS: 0, position: { x: 50, y: 0 }, heading: Math.PI },
            { tS: 10, position: { x: -50, y: 0 }, heading: Math.PI },
          ],
        },
      ],
    });
    const still: VehicleState = { x: 0, y: 0, theta: 0, speed: 0 };
    expect(actorCollision(still, actorPoses(world, 0))).toBeNull();
    expect(actorCollision(still, actorPoses(world, 5))).toEqual({ kind: "actor", id: "npc" });
  });
});
