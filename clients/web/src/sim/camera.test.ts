import { describe, expect, it } from "vitest";
import { cameraPose, lerpAngle } from "./camera";

describe("cameraPose", () => {
  it("chases from behind and above, looking down slightly", () => {
    const p = cameraPose({ x: 10, y: 0, theta: 0, speed: 0 }, "chase", 60);
    expect(p.x).toBeCloseTo(2.5);
    expect(p.y).toBeCloseTo(0);
    expect(p.z).toBe(3);
    expect(p.pitch).toBeLessThan(0);
    expect(p.fovDeg).toBe(60);
  });

  it("sits in the driver's seat in dash mode facing the heading", () => {
    const p = cameraPose({ x: 0, y: 0, theta: Math.PI / 2, speed: 0 }, "dash", 70);
    expect(p.x).toBeCloseTo(0);
    expect(p.y).toBeCloseTo(0.2);
    expect(p.yaw).toBeCloseTo(Math.PI / 2);
    expect(p.target.y).toBeGreaterThan(p.y);
  });

  it("lerps angles the short way round", () => {
    expect(lerpAngle(3, -3, 0.5)).toBeCloseTo(3 + (2 * Math.PI - 6) / 2);
    expect(lerpAngle(0, 1, 2)).toBe(1);
  });
});
