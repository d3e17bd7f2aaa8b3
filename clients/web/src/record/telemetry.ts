// Collects one session's telemetry (ticks at the sim rate, RTT samples, recorder start/stop) and encodes it as the
// Telemetry message uploaded beside video.webm. Pure: the caller supplies every time on the session clock
// (performance.now() - sessionStart, in ms).

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import { FrameSource, TelemetrySchema, type Telemetry } from "../gen/scalediffusion/v1/telemetry_pb";

export const SCHEMA_VERSION = 1;

export interface TickInput {
  tMs: number;
  controls: { steer: number; throttle: number; brake: number; handBrake?: boolean; reverse?: boolean };
  vehicle: { x: number; y: number; theta: number; speed: number };
  camera: { x: number; y: number; z: number; yaw: number; pitch: number; roll: number; fovDeg: number };
  command: RoadOption;
  paused?: boolean;
  reset?: boolean;
  /** The car hit something on this tick and was stopped where it was. */
  collision?: boolean;
  /** The route's target point (city frame, routing.targetPoint); absent without a route. */
  targetPoint?: { x: number; y: number } | null;
}

export interface TelemetryMeta {
  videoWidth: number;
  videoHeight: number;
  videoFps: number;
  worldId: string;
  clientInfo?: string;
  /** The world clock (lights, actor timetables) at tMs = 0, when they run on the drive clock; omitted otherwise. */
  worldClockOffsetMs?: number;
  /** The fixed rate the vehicle model is stepped at (one step per tick). */
  physicsHz?: number;
}

const clamp = (v: number, lo: number, hi: number) => (Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : 0);
const finite = (v: number) => (Number.isFinite(v) ? v : 0);

/** Stored tick: plain numbers, turned into messages only when building (cheap at 60 Hz). */
interface Tick {
  tMs: number;
  steer: number;
  throttle: number;
  brake: number;
  handBrake: boolean;
  reverse: boolean;
  x: number;
  y: number;
  theta: number;
  speed: number;
  cam: TickInput["camera"];
  command: RoadOption;
  paused: boolean;
  reset: boolean;
  collision: boolean;
  target: { x: number; y: number } | null;
}

export class TelemetryRecorder {
  private ticks: Tick[] = [];
  private rtt: { tMs: number; rttMs: number }[] = [];
  private frames: { shownTMs: number; renderTMs: number; source: "raw" | "repainted" }[] = [];
  private startMs = 0;
  private stopMs = 0;

  constructor(private readonly meta: TelemetryMeta) {}

  get tickCount(): number {
    return this.ticks.length;
  }

  get firstTickMs(): number | null {
    return this.ticks.length === 0 ? null : this.ticks[0]!.tMs;
  }

  get lastTickMs(): number | null {
    return this.ticks.length === 0 ? null : this.ticks[this.ticks.length - 1]!.tMs;
  }

  /**
   * Adds one tick. Times must increase strictly (the ingest service rejects anything else); a tick at or before the
   * previous one is dropped and false returned. Controls are clamped to their ranges, non-finite numbers zeroed.
   */
  addTick(t: TickInput): boolean {
    const last = this.lastTickMs;
    if (!Number.isFinite(t.tMs) || t.tMs < 0 || (last !== null && t.tMs <= last)) return false;
    const fov = clamp(t.camera.fovDeg, 0, 179);
    this.ticks.push({
      tMs: t.tMs,
      steer: clamp(t.controls.steer, -1, 1),
      throttle: clamp(t.controls.throttle, 0, 1),
      brake: clamp(t.controls.brake, 0, 1),
      handBrake: t.controls.handBrake ?? false,
      reverse: t.controls.reverse ?? false,
      x: finite(t.vehicle.x),
      y: finite(t.vehicle.y),
      theta: finite(t.vehicle.theta),
      speed: finite(t.vehicle.speed),
      cam: {
        x: finite(t.camera.x),
        y: finite(t.camera.y),
        z: finite(t.camera.z),
        yaw: finite(t.camera.yaw),
        pitch: finite(t.camera.pitch),
        roll: finite(t.camera.roll),
        fovDeg: fov,
      },
      command: t.command === RoadOption.UNSPECIFIED ? RoadOption.LANEFOLLOW : t.command,
      paused: t.paused ?? false,
      reset: t.reset ?? false,
      collision: t.collision ?? false,
      target: t.targetPoint && Number.isFinite(t.targetPoint.x) && Number.isFinite(t.targetPoint.y)
        ? { x: t.targetPoint.x, y: t.targetPoint.y } : null,
    });
    return true;
  }

  /** One diffusion round trip: the frame shown at tMs was rendered rttMs earlier. Kept in time order. */
  addRtt(tMs: number, rttMs: number): boolean {
    if (!Number.isFinite(tMs) || !Number.isFinite(rttMs) || rttMs < 0 || tMs < 0) return false;
    const last = this.rtt[this.rtt.length - 1];
    if (last !== undefined && tMs < last.tMs) return false;
    this.rtt.push({ tMs, rttMs });
    return true;
  }

  /** Forgets ticks and RTT samples before tMs (e.g. a long warm-up before the recorder started), except the last
   * tick at or before tMs: a picture of the state at tMs must still have a tick on each side to be aligned to (a
   * repainted first frame from just before the first kept tick was skipped, and a video whose first frame is not at
   * time 0 was rejected whole by the processor). */
  dropBefore(tMs: number): void {
    let from = tMs;
    for (const t of this.ticks) if (t.tMs <= tMs) from = t.tMs;
    this.ticks = this.ticks.filter((t) => t.tMs >= from);
    this.rtt = this.rtt.filter((r) => r.tMs >= tMs);
  }

  get rttCount(): number {
    return this.rtt.length;
  }

  markRecordingStart(tMs: number): void {
    this.startMs = Math.max(0, tMs);
  }

  /** The video's frame records (WebCodecs recordings), in the video's order. */
  setFrames(frames: readonly { shownTMs: number; renderTMs: number; source: "raw" | "repainted" }[]): void {
    this.frames = frames.map((f) => ({ ...f }));
  }

  markRecordingStop(tMs: number): void {
    this.stopMs = Math.max(this.startMs, tMs);
  }

  build(sessionId = ""): Telemetry {
    return create(TelemetrySchema, {
      schemaVersion: SCHEMA_VERSION,
      sessionId,
      videoWidth: this.meta.videoWidth,
      videoHeight: this.meta.videoHeight,
      videoFps: this.meta.videoFps,
      worldId: this.meta.worldId,
      clientInfo: this.meta.clientInfo ?? "",
      recordingStartTMs: this.startMs,
      recordingStopTMs: this.stopMs,
      worldClockOffsetMs: this.meta.worldClockOffsetMs,
      physicsHz: this.meta.physicsHz ?? 0,
      ticks: this.ticks.map((t) => ({
        tMs: t.tMs,
        controls: { steer: t.steer, throttle: t.throttle, brake: t.brake, handBrake: t.handBrake, reverse: t.reverse },
        vehicle: { x: t.x, y: t.y, theta: t.theta, speed: t.speed },
        camera: { position: { x: t.cam.x, y: t.cam.y, z: t.cam.z }, yaw: t.cam.yaw, pitch: t.cam.pitch, roll: t.cam.roll, fovDeg: t.cam.fovDeg },
        command: t.command,
        paused: t.paused,
        reset: t.reset,
        collision: t.collision,
        ...(t.target ? { targetPoint: { x: t.target.x, y: t.target.y } } : {}),
      })),
      rttSamples: this.rtt.map((s) => ({ tMs: s.tMs, rttMs: s.rttMs })),
      frames: this.frames.map((f) => ({
        shownTMs: f.shownTMs,
        renderTMs: f.renderTMs,
        source: f.source === "repainted" ? FrameSource.REPAINTED : FrameSource.RAW,
      })),
    });
  }

  encode(sessionId = ""): Uint8Array {
    return toBinary(TelemetrySchema, this.build(sessionId));
  }
}

/** Re-encodes telemetry bytes with the session id the ingest service assigned (deterministic: same in, same out). */
export function withSessionId(telemetry: Uint8Array, sessionId: string): Uint8Array {
  const msg = fromBinary(TelemetrySchema, telemetry);
  if (msg.sessionId === sessionId) return telemetry;
  msg.sessionId = sessionId;
  return toBinary(TelemetrySchema, msg);
}

/** Basic checks mirroring the ingest service's (services/ingest/checks.py) so problems show before uploading. */
export function checkTelemetry(t: Telemetry): string[] {
  const problems: string[] = [];
  if (t.schemaVersion !== SCHEMA_VERSION) problems.push(`schema_version ${t.schemaVersion}`);
  if (t.ticks.length < 2) problems.push(`only ${t.ticks.length} ticks`);
  let prev = -Infinity;
  for (const [i, tick] of t.ticks.entries()) {
    if (!(tick.tMs > prev)) {
      problems.push(`tick ${i} time ${tick.tMs} is not after ${prev}`);
      break;
    }
    prev = tick.tMs;
  }
  let shown = -Infinity;
  const firstTick = t.ticks[0]?.tMs ?? 0;
  for (const [i, f] of t.frames.entries()) {
    if (!(f.shownTMs > shown) || !(f.renderTMs >= firstTick) || !(f.renderTMs <= f.shownTMs)) {
      problems.push(`frame record ${i} (shown ${f.shownTMs}, render ${f.renderTMs}) is out of order or outside the ticks`);
      break;
    }
    shown = f.shownTMs;
  }
  if (t.ticks.length >= 2) {
    const span = (t.ticks[t.ticks.length - 1]!.tMs - t.ticks[0]!.tMs) / 1000;
    if (span < 1) problems.push(`telemetry spans ${span.toFixed(2)} s; sessions must last at least 1 s`);
  }
  return problems;
}
