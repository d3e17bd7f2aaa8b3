import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WorldSchema } from "../gen/scalediffusion/v1/world_pb";
import { collides } from "../sim/vehicle";
import { grid3x3 } from "./fixtures/grid3x3";
import { spawnState } from "./spawn";

describe("spawnState", () => {
  it("uses the world's spawn points, clear of obstacles", () => {
    const w = grid3x3();
    for (let k = 0; k < w.spawnPoints.length; k++) {
      const s = spawnState(w, k);
      expect(s.speed).toBe(0);
      expect(collides(s, w)).toBeNull();
    }
    expect(spawnState(w, 4)).toEqual(spawnState(w, 1));
  });

  it("falls back to the right-hand lane of a road", () => {
    const w = create(WorldSchema, { roads: [{ id: "r", start: { x: 0, y: 0 }, end: { x: 0, y: 100 }, widthM: 12 }] });
    const s = spawnState(w);
    expect(s.theta).toBeCloseTo(Math.PI / 2);
    expect(s.x).toBeCloseTo(3); // east of a northbound centreline
    expect(s.y).toBeCloseTo(25);
  });
});
