import { describe, expect, it } from "vitest";
import { controlsFrom, NEUTRAL, padControls, toggleReverse, type Controls } from "./input";

const hold = (keys: string[], seconds: number, from: Controls = NEUTRAL, dt = 1 / 60) => {
  let c = from;
  for (let i = 0; i < Math.round(seconds / dt); i++) c = controlsFrom(new Set(keys), c, dt);
  return c;
};

describe("keyboard controls", () => {
  it("W/Up is throttle, S/Down brake", () => {
    expect(hold(["KeyW"], 1).throttle).toBe(1);
    expect(hold(["ArrowUp"], 1).throttle).toBe(1);
    expect(hold(["KeyS"], 1).brake).toBe(1);
    expect(hold(["ArrowDown"], 1).brake).toBe(1);
    expect(hold([], 1, hold(["KeyW"], 1)).throttle).toBe(0);
  });

  it("A/Left steers left (negative), D/Right right (positive), ramping", () => {
    const a = controlsFrom(new Set(["KeyA"]), NEUTRAL, 0.1);
    expect(a.steer).toBeLessThan(0);
    expect(a.steer).toBeGreaterThan(-1);
    expect(hold(["KeyA"], 1).steer).toBe(-1);
    expect(hold(["ArrowLeft"], 1).steer).toBe(-1);
    expect(hold(["KeyD"], 1).steer).toBe(1);
    expect(hold(["ArrowRight"], 1).steer).toBe(1);
    expect(hold(["KeyA", "KeyD"], 1).steer).toBe(0);
  });

  it("springs back to centre and counter-steers faster", () => {
    const right = hold(["KeyD"], 1);
    const released = controlsFrom(new Set(), right, 0.1);
    expect(released.steer).toBeGreaterThan(0);
    expect(released.steer).toBeLessThan(1);
    expect(hold([], 1, right).steer).toBe(0);
    const counter = controlsFrom(new Set(["KeyA"]), right, 0.1);
    expect(1 - counter.steer).toBeGreaterThan(1 - released.steer);
  });

  it("space is a full hand brake; reverse toggles only when stopped", () => {
    const c = controlsFrom(new Set(["Space"]), NEUTRAL, 1 / 60);
    expect(c.brake).toBe(1);
    expect(c.handBrake).toBe(true);
    expect(toggleReverse(NEUTRAL, 0).reverse).toBe(true);
    expect(toggleReverse(NEUTRAL, 10).reverse).toBe(false);
    expect(controlsFrom(new Set(), { ...NEUTRAL, reverse: true }, 0.1).reverse).toBe(true);
  });
});

describe("gamepad", () => {
  const pad = (x: number, rt: number, lt: number) => ({
    axes: [x, 0, 0, 0],
    buttons: Array.from({ length: 16 }, (_, i) => ({ value: i === 7 ? rt : i === 6 ? lt : 0, pressed: false })),
  });

  it("maps the left stick and triggers with a dead zone", () => {
    expect(padControls(pad(0.05, 0, 0), NEUTRAL)).toBeNull();
    const c = padControls(pad(1, 0.5, 0), NEUTRAL)!;
    expect(c.steer).toBeCloseTo(1);
    expect(c.throttle).toBeGreaterThan(0.4);
    expect(padControls(pad(-1, 0, 1), NEUTRAL)).toMatchObject({ steer: -1, brake: 1 });
    expect(padControls(null, NEUTRAL)).toBeNull();
  });
});
