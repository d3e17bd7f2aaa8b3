import { existsSync, readFileSync } from "node:fs";
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActorKind, ActorTrackSchema, WorldSchema, type ActorTrack } from "../gen/scalediffusion/v1/world_pb";
import { actorPose, actorPoses } from "./actors";

// A 10 m square driven counter-clockwise in 40 s: a corner every 10 s, heading along each side.
const square = (): ActorTrack =>
  create(ActorTrackSchema, {
    id: "sq",
    kind: ActorKind.VEHICLE,
    periodS: 40,
    lengthM: 4,
    widthM: 2,
    keyframes: [
      { tS: 0, position: { x: 0, y: 0 }, heading: 0 },
      { tS: 10, position: { x: 10, y: 0 }, heading: Math.PI / 2 },
      { tS: 20, position: { x: 10, y: 10 }, heading: Math.PI },
      { tS: 30, position: { x: 0, y: 10 }, heading: -Math.PI / 2 },
    ],
  });

const TWO_PI = 2 * Math.PI;
/** Difference of two angles folded into [-pi, pi]. */
const angleDiff = (a: number, b: number) => Math.atan2(Math.sin(a - b), Math.cos(a - b));

const expectPose = (got: { x: number; y: number; heading: number }, x: number, y: number, heading: number) => {
  expect(got.x).toBeCloseTo(x, 9);
  expect(got.y).toBeCloseTo(y, 9);
  expect(Math.abs(angleDiff(got.heading, heading))).toBeLessThan(1e-9);
};

describe("actorPose", () => {
  it("is at the keyframes at their times", () => {
    const tr = square();
    for (const k of tr.keyframes) expectPose(actorPose(tr, k.tS), k.position!.x, k.position!.y, k.heading);
  });

  it("interpolates position linearly and heading between keyframes", () => {
    const tr = square();
    expectPose(actorPose(tr, 5), 5, 0, Math.PI / 4);
    expectPose(actorPose(tr, 12.5), 10, 2.5, Math.PI / 2 + Math.PI / 8);
    // pi -> -pi/2 is a quarter turn left (through -pi), so half-way is 5pi/4 = -3pi/4.
    expectPose(actorPose(tr, 25), 5, 10, (-3 * Math.PI) / 4);
  });

  it("wraps from the last keyframe back to the first at period_s", () => {
    const tr = square();
    // From (0, 10) heading -pi/2 towards (0, 0) heading 0 over 30..40 s.
    expectPose(actorPose(tr, 35), 0, 5, -Math.PI / 4);
    expectPose(actorPose(tr, 39.9), 0, 0.1, -Math.PI / 2 * 0.01);
    expectPose(actorPose(tr, 40), 0, 0, 0);
  });

  it("takes t modulo the period for large and negative times", () => {
    const tr = square();
    expectPose(actorPose(tr, 40 * 1000 + 5), 5, 0, Math.PI / 4);
    expectPose(actorPose(tr, -5), 0, 5, -Math.PI / 4); // -5 mod 40 = 35
    expectPose(actorPose(tr, -40), 0, 0, 0);
    expectPose(actorPose(tr, -1e-20), 0, 0, 0); // Python: -1e-20 % 40 == 40.0, i.e. back at keyframes[0]
  });

  it("turns the short way round across +-pi", () => {
    const tr = create(ActorTrackSchema, {
      id: "w",
      kind: ActorKind.PEDESTRIAN,
      periodS: 20,
      keyframes: [
        { tS: 0, position: { x: 0, y: 0 }, heading: Math.PI - 0.1 },
        { tS: 10, position: { x: 0, y: 0 }, heading: -Math.PI + 0.1 },
      ],
    });
    const mid = actorPose(tr, 5);
    expect(Math.abs(angleDiff(mid.heading, Math.PI))).toBeLessThan(1e-9); // through pi, not through 0
    const q = actorPose(tr, 2.5);
    expect(Math.abs(angleDiff(q.heading, Math.PI - 0.05))).toBeLessThan(1e-9);
    // And back the short way too (10..20 s, towards keyframes[0]).
    expect(Math.abs(angleDiff(actorPose(tr, 15).heading, Math.PI))).toBeLessThan(1e-9);
  });

  it("keeps a single-keyframe track (or one without a period) still", () => {
    const one = create(ActorTrackSchema, { id: "s", periodS: 30, keyframes: [{ tS: 0, position: { x: 3, y: 4 }, heading: 1 }] });
    for (const t of [0, 7.5, 30, -12, 1e6]) expectPose(actorPose(one, t), 3, 4, 1);
    const noPeriod = square();
    noPeriod.periodS = 0;
    expectPose(actorPose(noPeriod, 12), 0, 0, 0);
  });

  it("actorPoses lists every actor with keyframes, sizes defaulted", () => {
    const world = create(WorldSchema, {
      actors: [
        square(),
        { id: "ped", kind: ActorKind.PEDESTRIAN, periodS: 5, keyframes: [{ tS: 0, position: { x: 1, y: 2 } }] },
        { id: "empty", kind: ActorKind.VEHICLE, periodS: 5 },
      ],
    });
    const poses = actorPoses(world, 5);
    expect(poses.map((p) => p.id)).toEqual(["sq", "ped"]);
    expect(poses[0]).toMatchObject({ kind: ActorKind.VEHICLE, lengthM: 4, widthM: 2, x: 5, y: 0 });
    expect(poses[1]).toMatchObject({ kind: ActorKind.PEDESTRIAN, lengthM: 0.5, widthM: 0.5, x: 1, y: 2 });
  });
});

// The shared golden: the Python side writes golden_actor_poses.json for the default World in golden_world.json.
const WORLD = new URL("./fixtures/golden_world.json", import.meta.url);
const POSES = new URL("./fixtures/golden_actor_poses.json", import.meta.url);
const present = existsSync(WORLD) && existsSync(POSES);

describe.skipIf(!present)(
  present
    ? "golden actor poses (Python <-> game)"
    : "golden actor poses: SKIPPED, src/world/fixtures/golden_actor_poses.json or golden_world.json is absent (the Python side writes them)",
  () => {
    it("actorPoses equals golden_actor_poses.json within 1e-6 at every time", () => {
      const world = fromJson(WorldSchema, JSON.parse(readFileSync(WORLD, "utf8")) as JsonValue);
      const golden = JSON.parse(readFileSync(POSES, "utf8")) as { times: number[]; poses: Record<string, [number, number, number][]> };
      expect(golden.times.length).toBeGreaterThan(0);
      expect(Object.keys(golden.poses).sort()).toEqual(world.actors.map((a) => a.id).sort());
      golden.times.forEach((t, k) => {
        const got = new Map(actorPoses(world, t).map((p) => [p.id, p]));
        for (const [id, series] of Object.entries(golden.poses)) {
          const [x, y, heading] = series[k]!;
          const p = got.get(id);
          expect(p, `${id} at t=${t}`).toBeDefined();
          expect(Math.abs(p!.x - x), `${id} x at t=${t}`).toBeLessThanOrEqual(1e-6);
          expect(Math.abs(p!.y - y), `${id} y at t=${t}`).toBeLessThanOrEqual(1e-6);
          const dh = (((p!.heading - heading) % TWO_PI) + TWO_PI + Math.PI) % TWO_PI - Math.PI;
          expect(Math.abs(dh), `${id} heading at t=${t}`).toBeLessThanOrEqual(1e-6);
        }
      });
    });
  },
);
