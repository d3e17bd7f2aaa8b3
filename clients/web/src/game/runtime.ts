// The running game in the browser: render loop, fixed-step physics, input, navigation, telemetry, video recording and
// diffusion. DOM and Three.js live here; every rule it applies comes from the pure modules (sim/, world/, record/).
//
// What the player sees is a 2D "display" canvas at the recording size: each frame the Three.js render is copied onto
// it, and when diffusion is on the latest diffused frame is drawn over it. The display canvas is what MediaRecorder
// records, so the video shows what the player saw.

import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import type { World } from "../gen/scalediffusion/v1/world_pb";
import { displaySize, type GameConfig } from "../config";
import { DiffusionLink, type DiffusionClientLike, type DiffusionSnapshot } from "../net/diffusion";
import { canRecordFrames, FrameRecorder, type VideoRecorder } from "../record/frames";
import { drawStamp } from "./stamp";
import { CanvasRecorder } from "../record/recorder";
import { checkTelemetry, TelemetryRecorder } from "../record/telemetry";
import { WorldRenderer } from "../render/scene";
import { cameraPose, lerpAngle, type CameraMode } from "../sim/camera";
import { controlsFrom, GAME_KEYS, mergeControls, NEUTRAL, padControls, toggleReverse, type Controls } from "../sim/input";
import { collisionWorld, stepWithCollisions, type CollisionWorld, type VehicleState } from "../sim/vehicle";
import { actorPoses } from "../world/actors";
import { RoutePlanner, targetPoint, type Nav } from "../world/routing";
import { spawnState } from "../world/spawn";

export type RuntimePhase = "idle" | "starting" | "driving" | "finished";

export interface HudState {
  phase: RuntimePhase;
  speedKmh: number;
  timeLeftS: number;
  elapsedS: number;
  command: RoadOption;
  nextTurn: { command: RoadOption; distanceM: number } | null;
  distanceToNextM: number | null;
  /** The next intersection on the route, where the command applies. */
  nextIntersection: { id: string; x: number; y: number } | null;
  /** The car now (city frame, metres, radians CCW from +x, m/s). */
  vehicle: VehicleState;
  diffusion: DiffusionSnapshot;
  /** Whether the picture on screen now is a repainted one, and how many repainted frames reached the screen per
   * second over the last REPAINT_WINDOW_MS (what the player actually sees, not what the stream promises). */
  showingRepainted: boolean;
  repaintedFps: number;
  /** Repainted frames that reached the screen during this drive (its average rate = this / elapsedS). */
  repaintedShown: number;
  /** performance.now() when the latest repainted frame was drawn (null: none yet). */
  lastRepaintAtMs: number | null;
  renders: { full: number; stream: number };
  recording: boolean;
  paused: boolean;
  reverse: boolean;
  cameraMode: CameraMode;
  collisions: number;
  /** True for a moment after a collision. */
  crashed: boolean;
  ticks: number;
  videoBytes: number;
  /** How the drive is recorded: frame by frame (WebCodecs) or MediaRecorder; null before the recording starts. */
  recorder: "webcodecs" | "mediarecorder" | null;
  /** Frame-by-frame recording: frames in the video so far and pictures skipped (too soon, or encoder behind). */
  framesRecorded: number;
  framesSkipped: number;
  renderFps: number;
}

export interface RuntimeOptions {
  world: World;
  config: GameConfig;
  /** Null: diffusion is never tried. */
  diffusion: DiffusionClientLike | null;
  clientInfo?: string;
  /** Called about 10 times a second with what the HUD shows. */
  onHud?: (hud: HudState) => void;
  /** Called once when the session timer runs out. */
  onTimeUp?: () => void;
}

export interface SessionRecording {
  video: Blob;
  telemetry: Uint8Array;
  worldId: string;
  durationS: number;
  ticks: number;
  /** Why the ingest service would refuse this recording (empty = fine). */
  problems: string[];
}

/** A diffused frame older than this is stale: the display falls back to the raw render. */
const STALE_DIFFUSION_MS = 1000;

/** The window over which the HUD counts repainted frames shown per second. */
const REPAINT_WINDOW_MS = 2000;

/** Ticks kept from before the recording started. */
const PREROLL_KEEP_MS = 1000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface DiffusedImage {
  image: CanvasImageSource & { close?: () => void };
  at: number;
  /** Session-clock time of the game state the service repainted. */
  renderTMs: number;
}

export class GameRuntime {
  readonly display: HTMLCanvasElement;
  private readonly ctx: CanvasRenderingContext2D;
  private readonly renderer: WorldRenderer;
  private readonly collisions: CollisionWorld;
  private readonly planner: RoutePlanner;
  private readonly diffusion: DiffusionLink | null;
  private readonly captureCanvas: HTMLCanvasElement;
  /** This frame's render at the diffusion stream's size, when that is all that was rendered. */
  private captured: ImageData | null = null;
  private phase: RuntimePhase = "idle";
  private state: VehicleState;
  private controls: Controls = { ...NEUTRAL };
  private keys = new Set<string>();
  private nav: Nav | null = null;
  private cameraMode: CameraMode = "chase";
  private camYaw: number;
  private paused = false;
  private resetPending = false;
  /** The car hit something since the last telemetry tick (recorded on the next one). */
  private collisionPending = false;
  private collisionCount = 0;
  private inCollision = false;
  private lastCrashAt = -Infinity;
  /** World time (seconds since the drive started) of the last physics tick: where the moving actors are. */
  private driveTimeS = 0;
  private telemetry: TelemetryRecorder | null = null;
  private recorder: VideoRecorder | null = null;
  /** The same recorder when it records frame by frame (WebCodecs): every picture shown is offered to it. */
  private frameRecorder: FrameRecorder | null = null;
  private t0 = 0;
  private acc = 0;
  private lastFrame = 0;
  private raf = 0;
  private timeUpFired = false;
  private diffused: DiffusedImage | null = null;
  /** performance.now() of each repainted frame put on screen within the last REPAINT_WINDOW_MS. */
  private repaintTimes: number[] = [];
  private repaintedShown = 0;
  private lastRepaintAtMs: number | null = null;
  /** The repainted frame the last onHud call saw: the frame after a new one calls onHud at once (the HUD rides
   * with it, see ui/hudPacing.ts). */
  private hudRepaintAtMs: number | null = null;
  /** Scene renders this drive: at the display's size, and at the diffusion stream's only. */
  private readonly renders = { full: 0, stream: 0 };
  private lastHud = 0;
  private fpsFrames = 0;
  private fpsSince = 0;
  private fps = 0;
  private spawnIndex: number;
  private disposed = false;
  /** Session-clock time (ms) the recorder started; the timer counts from it. */
  private recStartMs = 0;
  /** While the MediaRecorder starts: the session-clock time of the canvas's first paint since start() was called. */
  private firstPaint: { at: number | null } | null = null;
  private readonly watchdog: ReturnType<typeof setInterval>;

  constructor(
    container: HTMLElement,
    private readonly opts: RuntimeOptions,
  ) {
    // With diffusion on the display (= the recording) is at most 640 wide: what is shown is no sharper than that.
    const { width: w, height: h } = displaySize(opts.config, opts.diffusion !== null && opts.config.diffusion);
    const { fovDeg } = opts.config;
    this.display = document.createElement("canvas");
    this.display.width = w;
    this.display.height = h;
    this.display.className = "game-canvas";
    this.display.dataset.testid = "game-canvas";
    // A CPU-backed canvas: the recorder reads every frame back, and on a machine without a GPU the GPU process is
    // busy rasterising WebGL, so frames read through it queued up in the encoder.
    const ctx = this.display.getContext("2d", { alpha: false, willReadFrequently: true });
    if (ctx === null) throw new Error("this browser cannot draw 2D canvases");
    this.ctx = ctx;
    this.renderer = new WorldRenderer(opts.world, { width: w, height: h, fovDeg });
    this.collisions = collisionWorld(opts.world);
    this.planner = new RoutePlanner(opts.world, { seed: Math.floor(Math.random() * 2 ** 31) });
    this.spawnIndex = Math.floor(Math.random() * Math.max(1, opts.world.spawnPoints.length));
    this.state = spawnState(opts.world, this.spawnIndex);
    this.camYaw = this.state.theta;
    this.nav = this.planner.update(this.state, this.state.theta);
    this.captureCanvas = document.createElement("canvas");
    this.diffusion =
      opts.diffusion === null
        ? null
        : new DiffusionLink({
            client: opts.diffusion,
            now: () => performance.now() - this.t0,
            capture: (width, height) => this.captureFrame(width, height),
            onFrame: (f) => this.showDiffused(f.image, f.contentType, f.capturedTMs),
            config: { width: 512, height: Math.max(16, Math.round((512 * h) / w / 8) * 8) },
          });
    container.appendChild(this.display);
    window.addEventListener("keydown", this.onKeyDown);
    window.addEventListener("keyup", this.onKeyUp);
    window.addEventListener("blur", this.onBlur);
    this.lastFrame = performance.now();
    this.fpsSince = this.lastFrame;
    this.raf = requestAnimationFrame(this.frame);
    // The render loop stops in background tabs; the session still ends on time.
    this.watchdog = setInterval(() => this.checkTimeUp(performance.now() - this.t0), 250);
  }

  private checkTimeUp(sessionNow: number): void {
    if (this.phase === "driving" && !this.timeUpFired && sessionNow - this.recStartMs >= this.opts.config.sessionSeconds * 1000) {
      this.timeUpFired = true;
      this.opts.onTimeUp?.();
    }
  }

  // ---- controls ----------------------------------------------------------------------------------------------

  private onKeyDown = (e: KeyboardEvent) => {
    const target = e.target as HTMLElement | null;
    if (target !== null && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    if (GAME_KEYS.has(e.code)) e.preventDefault();
    this.keys.add(e.code);
    if (e.repeat) return;
    switch (e.code) {
      case "KeyC":
        this.toggleCamera();
        break;
      case "KeyF":
        void this.toggleDiffusion();
        break;
      case "KeyP":
      case "Escape":
        this.togglePause();
        break;
      case "KeyR":
        this.controls = toggleReverse(this.controls, this.state.speed);
        break;
      case "Backspace":
        this.respawn();
        break;
    }
  };

  private onKeyUp = (e: KeyboardEvent) => {
    this.keys.delete(e.code);
  };

  private onBlur = () => {
    this.keys.clear();
  };

  toggleCamera(): void {
    this.cameraMode = this.cameraMode === "chase" ? "dash" : "chase";
    this.renderer.setCameraMode(this.cameraMode);
  }

  async toggleDiffusion(): Promise<void> {
    if (this.diffusion === null) return;
    const { enabled, status } = this.diffusion.snapshot();
    // On (or connecting) -> off; off, unavailable or failed -> try again.
    await this.diffusion.setEnabled(!(enabled && (status === "on" || status === "connecting")));
  }

  togglePause(): void {
    if (this.phase === "driving") this.paused = !this.paused;
  }

  /** Back to a spawn point (recorded as a reset tick). */
  respawn(): void {
    this.state = spawnState(this.opts.world, this.spawnIndex);
    this.camYaw = this.state.theta;
    this.controls = { ...NEUTRAL };
    this.planner.plan(this.state, this.state.theta);
    this.resetPending = true;
  }

  // ---- session -----------------------------------------------------------------------------------------------

  /**
   * Starts a session: physics and telemetry ticks start at once ("starting"); when diffusion is on, the stream is
   * opened and the first diffused frame awaited (a few seconds at most) so the recording starts with what the player
   * sees and the ticks reach back at least one round trip before the first frame; then the recorder starts and the
   * timer runs ("driving").
   */
  async begin(): Promise<void> {
    if (this.phase !== "idle") return;
    const { config, world } = this.opts;
    this.state = spawnState(world, this.spawnIndex);
    this.camYaw = this.state.theta;
    this.controls = { ...NEUTRAL };
    this.planner.plan(this.state, this.state.theta);
    this.telemetry = new TelemetryRecorder({
      videoWidth: this.display.width,
      videoHeight: this.display.height,
      videoFps: config.recordFps,
      worldId: world.worldId,
      clientInfo: this.opts.clientInfo,
      worldClockOffsetMs: 0, // lights and actors run on the drive clock (draw()), so the processor can replay them
      physicsHz: config.simHz, // advance(): one fixed step per tick
    });
    this.t0 = performance.now();
    this.driveTimeS = 0;
    this.acc = 0;
    this.timeUpFired = false;
    this.recStartMs = 0;
    this.phase = "starting";
    this.recordTick(0);
    try {
      if (this.diffusion !== null && config.diffusion) {
        await Promise.race([this.diffusion.setEnabled(true), sleep(3000)]);
        const until = performance.now() + 2000;
        while (this.diffusion.active && this.diffused === null && performance.now() < until) await sleep(50);
      }
      const size = { fps: config.recordFps, width: this.display.width, height: this.display.height };
      const frames = config.recorder === "webcodecs" || (config.recorder === "auto" && (await canRecordFrames(size.width, size.height, size.fps)));
      this.frameRecorder = frames ? new FrameRecorder(this.display, size, {}, this.ctx) : null;
      this.recorder = this.frameRecorder ?? new CanvasRecorder(this.display, size);
      // MediaRecorder's first frame is the canvas's first paint after start(), not the start() call: on a machine
      // drawing 3-4 frames/s that is ~300 ms later, and every frame would get the state one frame too early
      // (measured with the render-time stamps of the browser e2e test).
      this.firstPaint = this.frameRecorder === null ? { at: null } : null;
      const startedAt = await this.recorder.start();
      const paintDeadline = performance.now() + 1000;
      while (this.firstPaint !== null && this.firstPaint.at === null && performance.now() < paintDeadline) await sleep(5);
      const startMs = Math.max(0, this.firstPaint?.at ?? startedAt - this.t0);
      this.firstPaint = null;
      // The picture on screen now is the video's first frame: a repainted one shows a state from before the start.
      const repainted = this.showingDiffusion(performance.now()) ? this.diffused : null;
      // Keep one second of warm-up ticks (enough to cover a round trip before the first frame) or back to that
      // state, no more: the ingest service compares the telemetry's span with the video's duration.
      const keepFrom = Math.min(startMs - PREROLL_KEEP_MS, repainted?.renderTMs ?? Infinity);
      this.telemetry.dropBefore(keepFrom);
      this.telemetry.markRecordingStart(startMs);
      // Ticks must cover every video frame: one at the recording start (unless a tick already is there).
      this.recordTick(Math.max(startMs, (this.telemetry.lastTickMs ?? 0) + 0.001));
      this.recStartMs = startMs;
      this.phase = "driving";
      if (this.frameRecorder !== null) {
        // Video time 0 is the recording start, and its first frame the picture on screen then.
        this.frameRecorder.begin(startMs, this.telemetry.firstTickMs ?? keepFrom);
        this.frameRecorder.offer(startMs, repainted?.renderTMs ?? this.driveTimeS * 1000, repainted ? "repainted" : "raw");
      }
    } catch (err) {
      this.phase = "idle";
      if (this.diffusion !== null) await this.diffusion.close();
      throw err;
    }
  }

  /** Stops driving and recording; returns the video and encoded telemetry (session id stamped at upload). */
  async finish(): Promise<SessionRecording> {
    if (this.phase !== "driving" || this.recorder === null || this.telemetry === null) {
      throw new Error("no session is being recorded");
    }
    // The last tick is at the moment the recorder is asked to stop, so ticks cover the video's last frame too.
    const stopAt = Math.max(performance.now() - this.t0, (this.telemetry.lastTickMs ?? 0) + 0.001);
    this.recordTick(stopAt);
    this.phase = "finished";
    const video = await this.recorder.stop();
    this.telemetry.markRecordingStop(stopAt);
    if (this.frameRecorder !== null) this.telemetry.setFrames(this.frameRecorder.frames);
    // Frames already captured when stop was asked for may still land in the file: one more tick (the car has not
    // moved since) when the recorder has really stopped keeps them covered.
    const stoppedAt = this.recorder.stoppedTime;
    if (stoppedAt !== null) this.recordTick(Math.max(stoppedAt - this.t0, stopAt + 0.001));
    if (this.diffusion !== null) await this.diffusion.close();
    const built = this.telemetry.build();
    const problems = checkTelemetry(built);
    if (video.size === 0) problems.push("the video recorder produced no video");
    if (this.recorder.error !== null) problems.push(this.recorder.error);
    return {
      video,
      telemetry: this.telemetry.encode(),
      worldId: this.opts.world.worldId,
      durationS: stopAt / 1000,
      ticks: built.ticks.length,
      problems,
    };
  }

  // ---- per frame ---------------------------------------------------------------------------------------------

  private frame = (now: number) => {
    if (this.disposed) return;
    this.raf = requestAnimationFrame(this.frame);
    const dtFrame = Math.min(0.25, Math.max(0, (now - this.lastFrame) / 1000));
    this.lastFrame = now;
    try {
      this.advance(now, dtFrame);
      this.draw(now);
    } catch (err) {
      // Never let one bad frame stop the loop; surface it through the HUD/console.
      console.error("game frame failed", err);
    }
    this.fpsFrames++;
    if (now - this.fpsSince >= 1000) {
      this.fps = (this.fpsFrames * 1000) / (now - this.fpsSince);
      this.fpsFrames = 0;
      this.fpsSince = now;
    }
    if (now - this.lastHud >= 100 || this.lastRepaintAtMs !== this.hudRepaintAtMs) {
      this.lastHud = now;
      this.hudRepaintAtMs = this.lastRepaintAtMs;
      this.opts.onHud?.(this.hud());
    }
  };

  private advance(now: number, dtFrame: number): void {
    if (this.phase !== "driving" && this.phase !== "starting") return;
    const simDt = 1 / this.opts.config.simHz;
    const sessionNow = now - this.t0;
    this.acc += dtFrame;
    while (this.acc >= simDt) {
      this.acc -= simDt;
      this.tick(simDt, sessionNow - this.acc * 1000);
    }
    this.checkTimeUp(sessionNow);
  }

  private readPad() {
    if (typeof navigator === "undefined" || typeof navigator.getGamepads !== "function") return null;
    for (const p of navigator.getGamepads()) if (p !== null && p.connected) return p;
    return null;
  }

  private tick(dt: number, tMs: number): void {
    this.driveTimeS = tMs / 1000;
    const keyboard = controlsFrom(this.keys, this.controls, dt);
    this.controls = mergeControls(keyboard, padControls(this.readPad(), this.controls));
    if (!this.paused) {
      const r = stepWithCollisions(this.state, this.controls, dt, this.collisions, undefined, actorPoses(this.opts.world, tMs / 1000));
      if (r.collision !== null && !this.inCollision) {
        this.collisionCount++;
        this.lastCrashAt = tMs;
        this.collisionPending = true;
      }
      this.inCollision = r.collision !== null;
      this.state = r.state;
    }
    // The chase camera follows the heading with a lag, stepped here on the physics clock rather than per drawn
    // frame: the camera a tick records is then exactly the one its picture is drawn from, whatever the frame rate
    // (the processor re-renders frames from the recorded poses to check the video and to label it).
    this.camYaw = lerpAngle(this.camYaw, this.state.theta, 1 - Math.exp(-dt * 5));
    this.nav = this.planner.update(this.state, this.state.theta);
    this.recordTick(tMs);
  }

  /** One telemetry tick with the current state, controls, camera, command and the route's target point. */
  private recordTick(tMs: number): void {
    const pose = cameraPose(this.state, this.cameraMode, this.opts.config.fovDeg, this.cameraMode === "chase" ? this.camYaw : this.state.theta);
    this.telemetry?.addTick({
      tMs,
      controls: this.controls,
      vehicle: this.state,
      camera: pose,
      command: this.nav?.command ?? RoadOption.LANEFOLLOW,
      targetPoint: this.nav && this.planner.route ? targetPoint(this.planner.route, this.nav) : null,
      paused: this.paused,
      reset: this.resetPending,
      // Every tick in contact, not only the first: the replay check takes what the car touched on trust there
      // (a moving actor), and segments never span one.
      collision: this.collisionPending || this.inCollision,
    });
    this.resetPending = false;
    this.collisionPending = false;
  }

  private draw(now: number): void {
    const pose = cameraPose(this.state, this.cameraMode, this.opts.config.fovDeg, this.cameraMode === "chase" ? this.camYaw : this.state.theta);
    // Actors and traffic lights run on the drive clock (frozen before the start and after the end), the clock the
    // telemetry records: the processor replays the lights from it to label frames (services/processor/lights.py).
    const driving = this.phase === "driving" || this.phase === "starting";
    const driveTimeS = driving ? Math.max(this.driveTimeS, (now - this.t0) / 1000) : this.driveTimeS;
    // While repainted frames are on screen the raw render is needed only for the next capture: skipping the others
    // leaves the processor to the diffusion model, which on a modest machine shares its cores with the browser.
    // Such a render is drawn at the stream's size only (the capture's, offscreen), not the display's.
    const showing = this.showingDiffusion(now);
    this.captured = null;
    if (!showing || (this.diffusion?.captureDue() ?? true)) {
      this.renderer.update(this.state, pose, driveTimeS, actorPoses(this.opts.world, driveTimeS));
      const stream = showing ? this.diffusion?.snapshot() : undefined;
      if (stream === undefined) this.renderer.render();
      else this.captured = this.renderer.renderPixels(stream.width, stream.height);
      if (this.phase === "driving") this.renders[stream === undefined ? "full" : "stream"]++;
    }
    // While fresh diffused frames arrive, the display shows only them (painted as they arrive, so the recording
    // holds each once); otherwise it shows the raw render.
    if (!this.showingDiffusion(now)) {
      this.ctx.drawImage(this.renderer.canvas, 0, 0, this.display.width, this.display.height);
      // The render shows the state of the last physics tick.
      if (this.opts.config.stamp) drawStamp(this.ctx, this.driveTimeS * 1000, this.display.width, this.display.height);
      if (this.firstPaint !== null) this.firstPaint.at ??= now - this.t0;
      if (this.phase === "driving") this.frameRecorder?.offer(now - this.t0, this.driveTimeS * 1000, "raw");
    }
    this.diffusion?.pump();
  }

  private showingDiffusion(now: number): boolean {
    return this.diffused !== null && (this.diffusion?.active ?? false) && now - this.diffused.at < STALE_DIFFUSION_MS;
  }

  private captureFrame(width: number, height: number): Promise<{ image: Uint8Array; contentType: string; renderTMs: number } | null> {
    const c = this.captureCanvas;
    if (c.width !== width || c.height !== height) [c.width, c.height] = [width, height]; // the size the server offered
    const cx = c.getContext("2d", { willReadFrequently: true }); // CPU-backed: pixels go in and JPEG out, no GPU trip
    if (cx === null) return Promise.resolve(null);
    const pixels = this.captured;
    if (pixels !== null && pixels.width === c.width && pixels.height === c.height) cx.putImageData(pixels, 0, 0);
    else cx.drawImage(this.renderer.canvas, 0, 0, c.width, c.height); // synchronously, while the render is fresh
    const renderTMs = this.driveTimeS * 1000; // the state of the last physics tick is what was rendered
    return new Promise((resolve) => {
      c.toBlob(
        (blob) => {
          if (blob === null) return resolve(null);
          blob.arrayBuffer().then(
            (buf) => resolve({ image: new Uint8Array(buf), contentType: "image/jpeg", renderTMs }),
            () => resolve(null),
          );
        },
        "image/jpeg",
        0.7,
      );
    });
  }

  private showDiffused(image: Uint8Array, contentType: string, capturedTMs: number): void {
    createImageBitmap(new Blob([new Uint8Array(image)], { type: contentType })).then(
      (bitmap) => {
        if (this.disposed || !(this.diffusion?.active ?? false)) {
          bitmap.close();
          return;
        }
        const now = performance.now();
        // A repainted frame is <= 512 wide and scaled up to the display: cubic resampling ("high") keeps its edges,
        // which the player sees and the recording keeps (the processor's blur check: Laplacian variance +45-50 % over
        // bilinear for 144x80-208x112 frames scaled to 640x360), for a few ms of CPU.
        this.ctx.imageSmoothingQuality = "high";
        this.ctx.drawImage(bitmap, 0, 0, this.display.width, this.display.height);
        if (this.opts.config.stamp) drawStamp(this.ctx, capturedTMs, this.display.width, this.display.height);
        if (this.firstPaint !== null) this.firstPaint.at ??= now - this.t0;
        this.diffused?.image.close?.();
        this.diffused = { image: bitmap, at: now, renderTMs: capturedTMs };
        this.repaintTimes.push(now);
        this.lastRepaintAtMs = now;
        if (this.phase === "driving") this.repaintedShown++;
        // The frame on screen from now on was rendered at capturedTMs: that is the round trip ALIGN needs.
        const shownMs = now - this.t0;
        if (this.phase === "driving" || this.phase === "starting") this.telemetry?.addRtt(shownMs, Math.max(0, shownMs - capturedTMs));
        if (this.phase === "driving") this.frameRecorder?.offer(shownMs, capturedTMs, "repainted");
      },
      () => undefined,
    );
  }

  private repaintedFps(now: number): number {
    this.repaintTimes = this.repaintTimes.filter((t) => now - t <= REPAINT_WINDOW_MS);
    return (this.repaintTimes.length * 1000) / REPAINT_WINDOW_MS;
  }

  private nextIntersection(): HudState["nextIntersection"] {
    const id = this.nav?.nextIntersectionId ?? null;
    const p = id === null ? undefined : this.planner.graph.nodes.get(id);
    return id === null || p === undefined ? null : { id, x: p.x, y: p.y };
  }

  hud(): HudState {
    const elapsedMs = this.phase === "driving" || this.phase === "finished" ? performance.now() - this.t0 - this.recStartMs : 0;
    const total = this.opts.config.sessionSeconds;
    return {
      phase: this.phase,
      speedKmh: Math.abs(this.state.speed) * 3.6,
      timeLeftS: this.phase === "idle" || this.phase === "starting" ? total : Math.max(0, total - elapsedMs / 1000),
      elapsedS: elapsedMs / 1000,
      command: this.nav?.command ?? RoadOption.LANEFOLLOW,
      nextTurn: this.nav?.nextTurn ? { command: this.nav.nextTurn.command, distanceM: this.nav.nextTurn.distanceM } : null,
      distanceToNextM: this.nav?.distanceToNextM ?? null,
      nextIntersection: this.nextIntersection(),
      vehicle: { ...this.state },
      showingRepainted: this.showingDiffusion(performance.now()),
      repaintedFps: this.repaintedFps(performance.now()),
      repaintedShown: this.repaintedShown,
      lastRepaintAtMs: this.lastRepaintAtMs,
      renders: { ...this.renders },
      diffusion:
        this.diffusion?.snapshot() ??
        { status: "off", enabled: false, notice: null, streamId: null, lastRttMs: null, framesSent: 0, framesReceived: 0, framesDropped: 0, width: 0, height: 0, advisedFps: 0, resized: 0 },
      recording: this.phase === "driving" && (this.recorder?.recording ?? false),
      paused: this.paused,
      reverse: this.controls.reverse,
      cameraMode: this.cameraMode,
      collisions: this.collisionCount,
      crashed: (this.phase === "driving" || this.phase === "starting") && performance.now() - this.t0 - this.lastCrashAt < 800,
      ticks: this.telemetry?.tickCount ?? 0,
      videoBytes: this.recorder?.sizeBytes ?? 0,
      recorder: this.recorder === null ? null : this.frameRecorder !== null ? "webcodecs" : "mediarecorder",
      framesRecorded: this.frameRecorder?.frames.length ?? 0,
      framesSkipped: this.frameRecorder?.skippedFrames ?? 0,
      renderFps: this.fps,
    };
  }

  dispose(): void {
    this.disposed = true;
    cancelAnimationFrame(this.raf);
    clearInterval(this.watchdog);
    window.removeEventListener("keydown", this.onKeyDown);
    window.removeEventListener("keyup", this.onKeyUp);
    window.removeEventListener("blur", this.onBlur);
    if (this.recorder?.recording) void this.recorder.stop();
    if (this.diffusion !== null) void this.diffusion.close();
    this.diffused?.image.close?.();
    this.renderer.dispose();
    this.display.remove();
  }
}
