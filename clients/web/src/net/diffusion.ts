// Per-frame diffusion over gRPC-Web: OpenStream once, then one unary TransformFrame per frame (a low-resolution JPEG
// of the render), at most two in flight, measuring the round trip of each. The server answers OpenStream with the
// size and frame rate it can sustain for this stream now (never more than asked): frames are captured at that size
// and paced to that rate, which every reply updates (it falls under load before the server has to drop frames); a
// reply may also carry a new size, renegotiated from the cost the server measures now. When the service cannot do it
// (UNIMPLEMENTED, UNAVAILABLE) the game shows the raw render, keeps recording, and says so in one line.

import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  CloseStreamRequestSchema,
  CloseStreamResponse,
  OpenStreamRequestSchema,
  OpenStreamResponse,
  StreamConfigSchema,
  TransformFrameRequestSchema,
  TransformFrameResponse,
} from "../gen/scalediffusion/v1/diffusion_pb";

export type DiffusionStatus = "off" | "connecting" | "on" | "unavailable" | "error";

export interface DiffusionSnapshot {
  status: DiffusionStatus;
  enabled: boolean;
  notice: string | null;
  streamId: string | null;
  lastRttMs: number | null;
  framesSent: number;
  framesReceived: number;
  framesDropped: number;
  /** The size frames are captured at: what the server offered. */
  width: number;
  height: number;
  /** The rate the server advises for this stream now (0: not measured yet, frames go as fast as they return). */
  advisedFps: number;
  /** Times the server renegotiated the stream's size. */
  resized: number;
}

export interface DiffusionClientLike {
  openStream(req: MessageInitShape<typeof OpenStreamRequestSchema>, opts?: { timeoutMs?: number }): Promise<OpenStreamResponse>;
  transformFrame(req: MessageInitShape<typeof TransformFrameRequestSchema>, opts?: { timeoutMs?: number }): Promise<TransformFrameResponse>;
  closeStream(req: MessageInitShape<typeof CloseStreamRequestSchema>, opts?: { timeoutMs?: number }): Promise<CloseStreamResponse>;
}

export interface DiffusedFrame {
  image: Uint8Array;
  contentType: string;
  seq: number;
  /** Session-clock time the source frame was captured. */
  capturedTMs: number;
  /** Session-clock time the result arrived. */
  receivedTMs: number;
  rttMs: number;
}

export interface DiffusionOptions {
  client: DiffusionClientLike;
  /** Session clock, ms. */
  now: () => number;
  /** JPEG (or PNG) bytes of the current render at width x height (the stream's size); null to skip this frame. */
  /** The current render at that size; renderTMs (session clock) is the game state it shows, default: now. */
  capture: (width: number, height: number) => Promise<{ image: Uint8Array; contentType: string; renderTMs?: number } | null>;
  onFrame?: (frame: DiffusedFrame) => void;
  onChange?: (snapshot: DiffusionSnapshot) => void;
  config?: MessageInitShape<typeof StreamConfigSchema>;
  timeoutMs?: number;
  /** Consecutive frame failures (other than "unavailable") before giving up with an error notice. */
  maxFailures?: number;
  /** Frames in flight at once (pipelining hides part of the round trip). Default 2. */
  maxInFlight?: number;
}

// Steps and strength are left to the server, which applies its model's own defaults (and says so in OpenStream's reply).
export const DEFAULT_STREAM_CONFIG = Object.freeze({ style: "photoreal-day", width: 512, height: 288 });

const UNAVAILABLE_CODES = new Set([Code.Unimplemented, Code.Unavailable]);

/** One-line notice for a diffusion failure. */
export function diffusionNotice(err: unknown): string {
  if (err instanceof ConnectError) {
    const code = Code[err.code] ?? String(err.code);
    const name = code.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
    if (err.code === Code.Unimplemented) {
      return `Diffusion is not available on this server yet (${name}); showing the raw render. Recording continues.`;
    }
    if (err.code === Code.Unavailable) {
      return `Cannot reach the diffusion service (${name}: ${err.rawMessage}); showing the raw render. Recording continues.`;
    }
    return `Diffusion failed (${name}: ${err.rawMessage}); showing the raw render. Recording continues.`;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return `Diffusion failed (${msg}); showing the raw render. Recording continues.`;
}

export class DiffusionLink {
  private status: DiffusionStatus = "off";
  private enabled = false;
  private notice: string | null = null;
  private streamId: string | null = null;
  private inFlight = 0;
  private seq = 0;
  private lastDelivered = 0;
  private failures = 0;
  private lastRttMs: number | null = null;
  private sent = 0;
  private received = 0;
  private dropped = 0;
  private opening: Promise<void> | null = null;
  private width: number;
  private height: number;
  private advisedFps = 0;
  private latencyTargetMs = 0;
  private lastSentMs = -Infinity;
  private resized = 0;

  constructor(private readonly opts: DiffusionOptions) {
    this.width = opts.config?.width ?? DEFAULT_STREAM_CONFIG.width;
    this.height = opts.config?.height ?? DEFAULT_STREAM_CONFIG.height;
  }

  snapshot(): DiffusionSnapshot {
    return {
      status: this.status,
      enabled: this.enabled,
      notice: this.notice,
      streamId: this.streamId,
      lastRttMs: this.lastRttMs,
      framesSent: this.sent,
      framesReceived: this.received,
      framesDropped: this.dropped,
      width: this.width,
      height: this.height,
      advisedFps: this.advisedFps,
      resized: this.resized,
    };
  }

  /** True while diffused frames should be shown instead of the raw render. */
  get active(): boolean {
    return this.enabled && this.status === "on";
  }

  private changed(): void {
    this.opts.onChange?.(this.snapshot());
  }

  private fail(err: unknown): void {
    this.status = err instanceof ConnectError && UNAVAILABLE_CODES.has(err.code) ? "unavailable" : "error";
    this.notice = diffusionNotice(err);
    this.streamId = null;
    this.changed();
  }

  /** Turns diffusion on (opening a stream) or off (closing it). */
  async setEnabled(on: boolean): Promise<void> {
    this.enabled = on;
    if (!on) {
      const id = this.streamId;
      this.streamId = null;
      this.status = "off";
      this.notice = null;
      this.changed();
      if (id !== null) await this.opts.client.closeStream({ streamId: id }, { timeoutMs: this.opts.timeoutMs ?? 2000 }).catch(() => undefined);
      return;
    }
    await this.open();
  }

  private open(): Promise<void> {
    if (this.opening !== null) return this.opening;
    this.status = "connecting";
    this.notice = null;
    this.failures = 0;
    this.changed();
    this.opening = (async () => {
      try {
        const res = await this.opts.client.openStream(
          { config: { ...DEFAULT_STREAM_CONFIG, ...this.opts.config } },
          { timeoutMs: this.opts.timeoutMs ?? 3000 },
        );
        if (!this.enabled) {
          await this.opts.client.closeStream({ streamId: res.streamId }).catch(() => undefined);
          return;
        }
        this.streamId = res.streamId;
        if (res.config !== undefined && res.config.width > 0 && res.config.height > 0) {
          this.width = res.config.width;
          this.height = res.config.height;
        }
        this.advisedFps = res.frameRate;
        this.latencyTargetMs = res.latencyTargetMs;
        this.status = "on";
        this.changed();
      } catch (err) {
        this.fail(err);
      } finally {
        this.opening = null;
      }
    })();
    return this.opening;
  }

  /** Called every rendered frame: sends the current render when diffusion is on, fewer than maxInFlight frames
   * are in flight and the server's advised rate allows another. */
  /** Whether pump() would capture and send a frame now. */
  captureDue(): boolean {
    if (!this.active || this.inFlight >= (this.opts.maxInFlight ?? 2) || this.streamId === null) return false;
    return !(this.advisedFps > 0 && this.opts.now() - this.lastSentMs < 1000 / this.advisedFps);
  }

  pump(): void {
    const streamId = this.streamId;
    if (streamId === null || !this.captureDue()) return;
    this.lastSentMs = this.opts.now();
    this.inFlight++;
    void this.sendOne(streamId).finally(() => {
      this.inFlight--;
    });
  }

  private async sendOne(streamId: string): Promise<void> {
    const captured = await this.opts.capture(this.width, this.height).catch(() => null);
    if (captured === null) return;
    const seq = ++this.seq;
    // Stamped with the state the picture shows, so the round trip includes the capture's own encoding time.
    const capturedTMs = captured.renderTMs ?? this.opts.now();
    this.sent++;
    try {
      const res = await this.opts.client.transformFrame(
        { frame: { streamId, seq: BigInt(seq), clientTMs: capturedTMs, image: captured.image, contentType: captured.contentType } },
        // A frame may take the server's whole latency target, plus the codecs and the network.
        { timeoutMs: this.opts.timeoutMs ?? Math.max(2000, this.latencyTargetMs + 1500) },
      );
      this.failures = 0;
      if (streamId !== this.streamId) return; // toggled off meanwhile
      if (res.frameRate > 0) this.advisedFps = res.frameRate;
      // The server renegotiates the stream's size as it measures its cost (smaller on a busy machine): the next
      // frames are captured at it.
      if (res.width > 0 && res.height > 0 && (res.width !== this.width || res.height !== this.height)) {
        this.width = res.width;
        this.height = res.height;
        this.resized++;
        this.changed();
      }
      const frame = res.frame;
      // The reply names the frame its image is of: this one, or an earlier one when the replica runs the pipelined
      // stream batch (each call returns the frame that finished on it). Order and round trips go by that frame.
      const shownSeq = frame !== undefined && frame.seq > 0n ? Number(frame.seq) : seq;
      if (res.dropped || frame === undefined || frame.image.length === 0 || shownSeq <= this.lastDelivered) {
        // Skipped by the server (or its pipeline is filling), or overtaken by a newer frame: never show frames out
        // of order, never one twice.
        this.dropped++;
        return;
      }
      this.lastDelivered = shownSeq;
      const receivedTMs = this.opts.now();
      const sentAt = frame.clientTMs > 0 ? frame.clientTMs : capturedTMs;
      const rttMs = Math.max(0, receivedTMs - sentAt);
      this.lastRttMs = rttMs;
      this.received++;
      this.opts.onFrame?.({ image: frame.image, contentType: frame.contentType || "image/jpeg", seq: shownSeq, capturedTMs: sentAt, receivedTMs, rttMs });
    } catch (err) {
      if (streamId !== this.streamId) return;
      if (err instanceof ConnectError && UNAVAILABLE_CODES.has(err.code)) {
        this.fail(err);
        return;
      }
      if (err instanceof ConnectError && err.code === Code.NotFound) {
        // The server dropped an idle stream: open a new one.
        this.streamId = null;
        void this.open();
        return;
      }
      this.failures++;
      if (this.failures >= (this.opts.maxFailures ?? 3)) this.fail(err);
    }
  }

  /** Closes the stream (end of session). */
  async close(): Promise<void> {
    const wasEnabled = this.enabled;
    await this.setEnabled(false);
    this.enabled = wasEnabled;
  }
}
