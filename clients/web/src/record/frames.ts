// Records what the player sees frame by frame: every picture the game puts on the display canvas is offered here,
// encoded with WebCodecs (VP8) and muxed to WebM (mediabunny), and described by a frame record — when it went on
// screen, which game state it shows, raw render or repainted. The processor then aligns by these records instead
// of guessing from timestamps and RTT samples (zero alignment error by construction). Browsers without WebCodecs use
// CanvasRecorder (MediaRecorder) instead; both have the same surface (VideoRecorder).
//
// The encoder, the frame constructor, the muxer and the clock are injectable so the bookkeeping is unit-tested
// without a browser.

import { BufferTarget, EncodedPacket, EncodedVideoPacketSource, Output, WebMOutputFormat } from "mediabunny";
import { defaultBitrate, RecorderError } from "./recorder";

export type FrameSourceKind = "raw" | "repainted";

/** One frame of the video, in decode order; times on the session (telemetry) clock, ms. */
export interface FrameRecord {
  shownTMs: number;
  renderTMs: number;
  source: FrameSourceKind;
}

/** What the game needs from a recorder, whichever kind. */
export interface VideoRecorder {
  readonly mimeType: string;
  readonly sizeBytes: number;
  readonly error: string | null;
  readonly recording: boolean;
  readonly stoppedTime: number | null;
  start(): Promise<number>;
  stop(): Promise<Blob>;
}

export interface FrameRecorderOptions {
  /** Most frames per second encoded: a picture shown sooner after the previous encoded one is skipped. */
  fps: number;
  width: number;
  height: number;
  videoBitsPerSecond?: number;
  /** A key frame at least this often (ms). */
  keyFrameEveryMs?: number;
  /** Frames waiting in the encoder beyond which new pictures are skipped (a slow machine keeps its frame rate). */
  maxQueue?: number;
}

/** Where encoded chunks go, in decode order; finish() resolves with the file. */
export interface ChunkSink {
  add(data: Uint8Array, timestampUs: number, durationUs: number, key: boolean, meta?: EncodedVideoChunkMetadata): Promise<void>;
  finish(): Promise<Uint8Array<ArrayBuffer>>;
}

type EncoderCtor = {
  new (init: VideoEncoderInit): VideoEncoder;
  isConfigSupported?(config: VideoEncoderConfig): Promise<VideoEncoderSupport>;
};
type FrameCtor = {
  new (image: CanvasImageSource, init: VideoFrameInit): VideoFrame;
  new (data: AllowSharedBufferSource, init: VideoFrameBufferInit): VideoFrame;
};

export interface FrameRecorderDeps {
  VideoEncoder?: EncoderCtor;
  VideoFrame?: FrameCtor;
  sink?: () => ChunkSink;
  now?: () => number;
}

export const VP8_CONFIG = "vp8";

/** A WebM file of VP8 chunks, muxed by mediabunny into memory. */
export function webmSink(width: number, height: number): ChunkSink {
  const target = new BufferTarget();
  const output = new Output({ format: new WebMOutputFormat(), target });
  const source = new EncodedVideoPacketSource("vp8");
  output.addVideoTrack(source);
  const started = output.start();
  return {
    async add(data, timestampUs, durationUs, key, meta) {
      await started;
      const packet = new EncodedPacket(data, key ? "key" : "delta", timestampUs / 1e6, durationUs / 1e6);
      // The first chunk must carry a decoder config; VP8 needs none beyond the codec and the size.
      await source.add(packet, meta?.decoderConfig ? meta : { decoderConfig: { codec: VP8_CONFIG, codedWidth: width, codedHeight: height } });
    },
    async finish() {
      await started;
      await output.finalize();
      if (target.buffer === null) throw new RecorderError("the WebM muxer produced no file");
      return new Uint8Array(target.buffer);
    },
  };
}

/** Whether this browser can record frame by frame (WebCodecs with a VP8 encoder at this size). */
export async function canRecordFrames(width: number, height: number, fps: number): Promise<boolean> {
  if (typeof VideoEncoder === "undefined" || typeof VideoFrame === "undefined") return false;
  try {
    const support = await VideoEncoder.isConfigSupported({ codec: VP8_CONFIG, width, height, framerate: fps, bitrate: defaultBitrate(width, height, fps) });
    return support.supported === true;
  } catch {
    return false;
  }
}

export class FrameRecorder implements VideoRecorder {
  readonly mimeType = "video/webm;codecs=vp8";
  /** One record per encoded frame, in the video's order. */
  readonly frames: FrameRecord[] = [];
  private readonly encoder: VideoEncoder;
  private readonly VideoFrameCtor: FrameCtor;
  private readonly sink: ChunkSink;
  private readonly now: () => number;
  private readonly pending = new Map<number, FrameRecord>(); // by video timestamp (µs), until its chunk is out
  private writes: Promise<void> = Promise.resolve();
  private bytes = 0;
  private startTMs: number | null = null; // session clock: video time 0
  private oldestRenderTMs = -Infinity;
  private startedAt: number | null = null;
  private stoppedEventAt: number | null = null;
  private lastShownTMs = -Infinity;
  private lastKeyTMs = -Infinity;
  private lastTimestampUs = -1;
  private skipped = 0;
  private failure: string | null = null;
  private state: "idle" | "recording" | "stopped" = "idle";
  private stopping: Promise<Blob> | null = null;

  constructor(
    private readonly canvas: CanvasImageSource,
    readonly options: FrameRecorderOptions,
    deps: FrameRecorderDeps = {},
    /** The canvas's 2D context, when it has one (read with getImageData). */
    private readonly pixels: Pick<CanvasRenderingContext2D, "getImageData"> | null = null,
  ) {
    const Encoder = deps.VideoEncoder ?? (typeof VideoEncoder === "undefined" ? undefined : VideoEncoder);
    const Frame = deps.VideoFrame ?? (typeof VideoFrame === "undefined" ? undefined : VideoFrame);
    if (Encoder === undefined || Frame === undefined) throw new RecorderError("This browser has no WebCodecs video encoder.");
    this.VideoFrameCtor = Frame as FrameCtor;
    this.now = deps.now ?? (() => performance.now());
    this.sink = (deps.sink ?? (() => webmSink(options.width, options.height)))();
    this.encoder = new Encoder({
      output: (chunk, meta) => this.onChunk(chunk, meta),
      error: (e) => {
        this.failure = `the video encoder failed: ${e.message}`;
      },
    });
    this.encoder.configure({
      codec: VP8_CONFIG,
      width: options.width,
      height: options.height,
      framerate: options.fps,
      bitrate: options.videoBitsPerSecond ?? defaultBitrate(options.width, options.height, options.fps),
      // Realtime keeps up on a slow machine (software VP8 on 2 busy cores: "quality" fell behind at 640x360@20 and
      // most pictures were skipped). If the encoder drops a frame, no chunk comes out and no record is written:
      // the video and its records always agree.
      latencyMode: "realtime",
    });
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get error(): string | null {
    return this.failure;
  }

  get recording(): boolean {
    return this.state === "recording";
  }

  get stoppedTime(): number | null {
    return this.stoppedEventAt;
  }

  /** Pictures not encoded because they came too soon after the previous one or the encoder was behind. */
  get skippedFrames(): number {
    return this.skipped;
  }

  /** Starts recording; resolves with performance.now() (video time 0 is the session-clock time given to begin()). */
  async start(): Promise<number> {
    this.startedAt = this.now();
    this.state = "recording";
    return this.startedAt;
  }

  /**
   * Sets the session-clock time of video time 0 (the telemetry's recording_start_t_ms) and the oldest game state a
   * recorded picture may show (the first tick the telemetry keeps): a repaint of anything older (a slow round trip
   * at the start) has no state to be aligned to and is skipped.
   */
  begin(startTMs: number, oldestRenderTMs = -Infinity): void {
    this.startTMs = startTMs;
    this.oldestRenderTMs = oldestRenderTMs;
  }

  /**
   * Offers the picture now on the canvas: shown at shownTMs, showing the game state at renderTMs (session clock).
   * Returns whether it was encoded (too soon after the previous frame, or the encoder behind: skipped).
   */
  offer(shownTMs: number, renderTMs: number, source: FrameSourceKind): boolean {
    if (this.state !== "recording" || this.startTMs === null || this.failure !== null) return false;
    const minGapMs = (1000 / this.options.fps) * 0.9; // rAF jitter must not halve the rate
    if (shownTMs < this.startTMs || renderTMs < this.oldestRenderTMs || shownTMs - this.lastShownTMs < minGapMs || this.encoder.encodeQueueSize > (this.options.maxQueue ?? 4)) {
      this.skipped++;
      return false;
    }
    const timestampUs = Math.round((shownTMs - this.startTMs) * 1000);
    if (timestampUs <= this.lastTimestampUs) {
      this.skipped++;
      return false;
    }
    const key = shownTMs - this.lastKeyTMs >= (this.options.keyFrameEveryMs ?? 2000);
    let frame: VideoFrame;
    try {
      frame = this.grab(timestampUs);
    } catch (err) {
      this.failure = `could not read the game canvas for recording: ${err instanceof Error ? err.message : String(err)}`;
      return false;
    }
    this.pending.set(timestampUs, { shownTMs, renderTMs: Math.min(renderTMs, shownTMs), source });
    try {
      this.encoder.encode(frame, { keyFrame: key });
    } catch (err) {
      this.pending.delete(timestampUs);
      this.failure = `the video encoder refused a frame: ${err instanceof Error ? err.message : String(err)}`;
      return false;
    } finally {
      frame.close();
    }
    if (key) this.lastKeyTMs = shownTMs;
    this.lastShownTMs = shownTMs;
    this.lastTimestampUs = timestampUs;
    return true;
  }

  /** The picture now on the canvas as a VideoFrame. From the 2D context's pixels when there is one: a frame made
   * from the canvas itself is read back through the GPU process, which on a machine without a GPU is busy
   * rasterising WebGL (measured in headless Chromium on 2 cores: 1-4 s per frame, most pictures skipped). */
  private grab(timestampUs: number): VideoFrame {
    const ctx = this.pixels;
    if (ctx !== null) {
      const { width, height } = this.options;
      const image = ctx.getImageData(0, 0, width, height);
      return new this.VideoFrameCtor(image.data, { format: "RGBX", codedWidth: width, codedHeight: height, timestamp: timestampUs });
    }
    return new this.VideoFrameCtor(this.canvas, { timestamp: timestampUs });
  }

  private onChunk(chunk: EncodedVideoChunk, meta?: EncodedVideoChunkMetadata): void {
    const record = this.pending.get(chunk.timestamp);
    this.pending.delete(chunk.timestamp);
    if (record === undefined) {
      this.failure = `the video encoder returned a frame that was never offered (timestamp ${chunk.timestamp} µs)`;
      return;
    }
    const data = new Uint8Array(chunk.byteLength);
    chunk.copyTo(data);
    this.bytes += data.byteLength;
    this.frames.push(record);
    const durationUs = chunk.duration ?? Math.round(1e6 / this.options.fps);
    this.writes = this.writes.then(() => this.sink.add(data, chunk.timestamp, durationUs, chunk.type === "key", meta)).catch((err) => {
      this.failure = `the WebM muxer failed: ${err instanceof Error ? err.message : String(err)}`;
    });
  }

  /** Stops recording: flushes the encoder and resolves with the whole video (the same video on every call). */
  stop(): Promise<Blob> {
    // No picture is offered after this moment, so this is when the video ends, however long the encoder and the
    // muxer then take to finish it.
    this.stoppedEventAt ??= this.now();
    this.stopping ??= this.finishVideo();
    return this.stopping;
  }

  private async finishVideo(): Promise<Blob> {
    this.state = "stopped";
    try {
      await this.encoder.flush();
    } catch (err) {
      this.failure ??= `the video encoder failed at the end: ${err instanceof Error ? err.message : String(err)}`;
    }
    this.encoder.close();
    await this.writes;
    let bytes: Uint8Array<ArrayBuffer> = new Uint8Array(0);
    if (this.frames.length > 0) {
      try {
        bytes = await this.sink.finish();
      } catch (err) {
        this.failure ??= `the WebM muxer failed at the end: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    return new Blob([bytes], { type: "video/webm" });
  }
}
