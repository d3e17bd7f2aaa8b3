import { fromBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import { TelemetrySchema } from "../gen/scalediffusion/v1/telemetry_pb";
import { step, type VehicleState } from "../sim/vehicle";
import { checkTelemetry, TelemetryRecorder, withSessionId, type TickInput } from "./telemetry";
import { FrameSource } from "../gen/scalediffusion/v1/telemetry_pb";

const meta = { videoWidth: 640, videoHeight: 360, videoFps: 30, worldId: "grid-3x3", clientInfo: "vitest" };
const cam = { x: 0, y: 0, z: 1.4, yaw: 0, pitch: -0.05, roll: 0, fovDeg: 60 };

function drive(rec: TelemetryRecorder, seconds: number, steer: number) {
  let s: VehicleState = { x: 0, y: 0, theta: 0, speed: 5 };
  const dt = 1 / 60;
  for (let i = 0; i < seconds * 60; i++) {
    const controls = { steer, throttle: 0.5, brake: 0 };
    s = step(s, controls, dt);
    rec.addTick({ tMs: 50 + i * (1000 / 60), controls, vehicle: s, camera: { ...cam, x: s.x, y: s.y, yaw: s.theta }, command: RoadOption.LANEFOLLOW });
  }
  return s;
}

describe("TelemetryRecorder", () => {
  it("records the world clock only when the client says where it stood (0 is a clock, not a missing one)", () => {
    const withClock = new TelemetryRecorder({ ...meta, worldClockOffsetMs: 0 });
    drive(withClock, 0.5, 0);
    const back = fromBinary(TelemetrySchema, withClock.encode());
    expect(back.worldClockOffsetMs).toBe(0);
    const without = new TelemetryRecorder(meta);
    drive(without, 0.5, 0);
    expect(fromBinary(TelemetrySchema, without.encode()).worldClockOffsetMs).toBeUndefined();
  });

  it("round-trips through toBinary/fromBinary with the generated schema", () => {
    const rec = new TelemetryRecorder(meta);
    drive(rec, 2, 0.5);
    rec.addRtt(100, 42.5);
    rec.addRtt(200, 40);
    rec.markRecordingStart(48);
    rec.markRecordingStop(2100);
    const bytes = rec.encode("sess-1");
    const back = fromBinary(TelemetrySchema, bytes);
    expect(back.schemaVersion).toBe(1);
    expect(back.sessionId).toBe("sess-1");
    expect([back.videoWidth, back.videoHeight, back.videoFps]).toEqual([640, 360, 30]);
    expect(back.worldId).toBe("grid-3x3");
    expect(back.clientInfo).toBe("vitest");
    expect(back.recordingStartTMs).toBe(48);
    expect(back.recordingStopTMs).toBe(2100);
    expect(back.ticks).toHaveLength(120);
    expect(back.rttSamples.map((r) => [r.tMs, r.rttMs])).toEqual([
      [100, 42.5],
      [200, 40],
    ]);
    const t0 = back.ticks[0]!;
    expect(t0.controls!.steer).toBeCloseTo(0.5, 6); // float32 on the wire
    expect(t0.camera!.fovDeg).toBe(60);
    expect(t0.camera!.position!.z).toBeCloseTo(1.4);
    expect(t0.command).toBe(RoadOption.LANEFOLLOW);
    expect(checkTelemetry(back)).toEqual([]);
  });

  it("keeps t_ms strictly increasing (drops out-of-order ticks)", () => {
    const rec = new TelemetryRecorder(meta);
    const tick = (tMs: number): TickInput => ({ tMs, controls: { steer: 0, throttle: 0, brake: 0 }, vehicle: { x: 0, y: 0, theta: 0, speed: 0 }, camera: cam, command: RoadOption.LANEFOLLOW });
    expect(rec.addTick(tick(10))).toBe(true);
    expect(rec.addTick(tick(10))).toBe(false);
    expect(rec.addTick(tick(5))).toBe(false);
    expect(rec.addTick(tick(NaN))).toBe(false);
    expect(rec.addTick(tick(26.7))).toBe(true);
    const ticks = rec.build().ticks;
    expect(ticks.map((t) => t.tMs)).toEqual([10, 26.7]);
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.tMs).toBeGreaterThan(ticks[i - 1]!.tMs);
  });

  it("records the route's target point where the game has one, and leaves it unset otherwise", () => {
    const rec = new TelemetryRecorder(meta);
    const tick = (tMs: number, targetPoint?: { x: number; y: number } | null): TickInput => ({ tMs, controls: { steer: 0, throttle: 0, brake: 0 }, vehicle: { x: 0, y: 0, theta: 0, speed: 0 }, camera: cam, command: RoadOption.LANEFOLLOW, targetPoint });
    rec.addTick(tick(10, { x: 100, y: -2.5 }));
    rec.addTick(tick(20, null));
    rec.addTick(tick(30));
    rec.addTick(tick(40, { x: NaN, y: 1 }));
    const back = fromBinary(TelemetrySchema, rec.encode());
    expect(back.ticks[0]!.targetPoint).toMatchObject({ x: 100, y: -2.5 });
    expect(back.ticks.slice(1).map((t) => t.targetPoint)).toEqual([undefined, undefined, undefined]);
  });

  it("drops a warm-up before a given time", () => {
    const rec = new TelemetryRecorder(meta);
    drive(rec, 1, 0);
    rec.addRtt(100, 10);
    rec.addRtt(900, 10);
    rec.dropBefore(500);
    const t = rec.build();
    // The last tick at or before 500 ms stays, so a picture of the state at 500 ms can still be aligned.
    expect(t.ticks[0]!.tMs).toBeLessThanOrEqual(500);
    expect(t.ticks[1]!.tMs).toBeGreaterThan(500);
    expect(t.ticks[0]!.tMs).toBeGreaterThan(500 - 1000 / 60);
    expect(t.rttSamples.map((r) => r.tMs)).toEqual([900]);
  });

  it("records right steer as positive with the heading turning clockwise", () => {
    const rec = new TelemetryRecorder(meta);
    drive(rec, 1, 1);
    const ticks = fromBinary(TelemetrySchema, rec.encode()).ticks;
    expect(ticks.every((t) => t.controls!.steer === 1)).toBe(true);
    expect(ticks[ticks.length - 1]!.vehicle!.theta).toBeLessThan(0);
  });

  it("clamps controls and fills an unspecified command with LANEFOLLOW", () => {
    const rec = new TelemetryRecorder(meta);
    rec.addTick({ tMs: 1, controls: { steer: 3, throttle: -1, brake: 2 }, vehicle: { x: NaN, y: 1, theta: 0, speed: 0 }, camera: { ...cam, fovDeg: 400 }, command: RoadOption.UNSPECIFIED });
    const t = rec.build().ticks[0]!;
    expect([t.controls!.steer, t.controls!.throttle, t.controls!.brake]).toEqual([1, 0, 1]);
    expect(t.vehicle!.x).toBe(0);
    expect(t.camera!.fovDeg).toBe(179);
    expect(t.command).toBe(RoadOption.LANEFOLLOW);
  });

  it("stamps the session id deterministically", () => {
    const rec = new TelemetryRecorder(meta);
    drive(rec, 1, 0);
    const a = withSessionId(rec.encode(), "abc");
    const b = withSessionId(rec.encode(), "abc");
    expect(a).toEqual(b);
    expect(a).toEqual(rec.encode("abc"));
    expect(fromBinary(TelemetrySchema, a).sessionId).toBe("abc");
  });

  it("flags telemetry the ingest service would refuse", () => {
    const rec = new TelemetryRecorder(meta);
    drive(rec, 0.5, 0);
    expect(checkTelemetry(rec.build()).join()).toMatch(/at least 1 s/);
  });

  it("records the tick the car hit something", () => {
    const rec = new TelemetryRecorder(meta);
    const base = { controls: { steer: 0, throttle: 1, brake: 0 }, vehicle: { x: 0, y: 0, theta: 0, speed: 0 }, camera: cam, command: RoadOption.LANEFOLLOW };
    rec.addTick({ ...base, tMs: 0 });
    rec.addTick({ ...base, tMs: 16, collision: true });
    expect(rec.build().ticks.map((t) => t.collision)).toEqual([false, true]);
  });

  it("carries the frame records and flags ones the ingest service would refuse", () => {
    const rec = new TelemetryRecorder(meta);
    drive(rec, 2, 0);
    rec.setFrames([
      { shownTMs: 100, renderTMs: 100, source: "raw" },
      { shownTMs: 200, renderTMs: 60, source: "repainted" },
    ]);
    const back = fromBinary(TelemetrySchema, rec.encode());
    expect(back.frames.map((f) => [f.shownTMs, f.renderTMs, f.source])).toEqual([
      [100, 100, FrameSource.RAW],
      [200, 60, FrameSource.REPAINTED],
    ]);
    expect(checkTelemetry(back)).toEqual([]);
    rec.setFrames([{ shownTMs: 100, renderTMs: -50, source: "repainted" }]);
    expect(checkTelemetry(rec.build()).join()).toMatch(/frame record 0/);
  });
});
