// Records what the player sees: MediaRecorder over the display canvas's captureStream(fps), VP8 in WebM.
// The MediaRecorder constructor and the clock are injectable so the chunk handling is unit-tested without a browser.

export const PREFERRED_MIME_TYPES = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"] as const;

/** The first supported type, VP8 first (what the processor expects); "" lets the browser choose. */
export function pickMimeType(isTypeSupported: (type: string) => boolean): string {
  for (const t of PREFERRED_MIME_TYPES) {
    try {
      if (isTypeSupported(t)) return t;
    } catch {
      // Some browsers throw on unknown types.
    }
  }
  return "";
}

/** Bits per second for a size and frame rate (about 0.1 bit per pixel per frame, within 0.5-8 Mbit/s). */
export function defaultBitrate(width: number, height: number, fps: number): number {
  return Math.round(Math.min(8_000_000, Math.max(500_000, width * height * fps * 0.1)));
}

export interface CapturableCanvas {
  captureStream(frameRate?: number): MediaStream;
}

type RecorderCtor = {
  new (stream: MediaStream, options?: MediaRecorderOptions): MediaRecorder;
  isTypeSupported(type: string): boolean;
};

export interface CanvasRecorderOptions {
  fps: number;
  width: number;
  height: number;
  mimeType?: string;
  videoBitsPerSecond?: number;
  /** How often MediaRecorder hands over a chunk (ms); chunks keep memory use even. */
  timesliceMs?: number;
}

export interface RecorderDeps {
  MediaRecorder?: RecorderCtor;
  now?: () => number;
}

export class RecorderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RecorderError";
  }
}

export class CanvasRecorder {
  readonly mimeType: string;
  private readonly recorder: MediaRecorder;
  private readonly stream: MediaStream;
  private readonly chunks: Blob[] = [];
  private bytes = 0;
  private startedAt: number | null = null;
  private stoppedAt: number | null = null;
  private stoppedEventAt: number | null = null;
  private failure: string | null = null;
  private readonly now: () => number;

  constructor(canvas: CapturableCanvas, readonly options: CanvasRecorderOptions, deps: RecorderDeps = {}) {
    const Ctor = deps.MediaRecorder ?? (typeof MediaRecorder === "undefined" ? undefined : MediaRecorder);
    if (Ctor === undefined) throw new RecorderError("This browser cannot record video (no MediaRecorder); try a recent Chrome, Edge or Firefox.");
    if (typeof canvas.captureStream !== "function") throw new RecorderError("This browser cannot capture the game canvas (no captureStream).");
    this.now = deps.now ?? (() => performance.now());
    this.mimeType = options.mimeType ?? pickMimeType((t) => Ctor.isTypeSupported(t));
    this.stream = canvas.captureStream(options.fps);
    const recorderOptions: MediaRecorderOptions = {
      videoBitsPerSecond: options.videoBitsPerSecond ?? defaultBitrate(options.width, options.height, options.fps),
    };
    if (this.mimeType !== "") recorderOptions.mimeType = this.mimeType;
    this.recorder = new Ctor(this.stream, recorderOptions);
    this.recorder.ondataavailable = (e: BlobEvent) => {
      if (e.data && e.data.size > 0) {
        this.chunks.push(e.data);
        this.bytes += e.data.size;
      }
    };
    this.recorder.onerror = (e: Event) => {
      const err = (e as Event & { error?: { message?: string } }).error;
      this.failure = `the video recorder failed: ${err?.message ?? "unknown error"}`;
    };
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  get error(): string | null {
    return this.failure;
  }

  /** performance.now() when recording actually started (the recorder's start event), or null. */
  get startTime(): number | null {
    return this.startedAt;
  }

  get stopTime(): number | null {
    return this.stoppedAt;
  }

  get recording(): boolean {
    return this.recorder.state === "recording";
  }

  /**
   * Starts recording. The start time is taken when start() is called: the video's first frame is the next paint
   * after it, while the recorder's start event can come much later on a busy page. Resolves with that time once the
   * recorder reports it started (or after timeoutMs).
   */
  start(timeoutMs = 2000): Promise<number> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const done = () => {
        if (settled) return;
        settled = true;
        resolve(this.startedAt!);
      };
      this.recorder.onstart = done;
      try {
        this.startedAt = this.now();
        this.recorder.start(this.options.timesliceMs ?? 1000);
      } catch (err) {
        this.startedAt = null;
        settled = true;
        reject(new RecorderError(`could not start the video recorder: ${err instanceof Error ? err.message : String(err)}`));
        return;
      }
      setTimeout(done, timeoutMs);
    });
  }

  /** performance.now() when the recorder reported it had stopped (after the last frame), or null. */
  get stoppedTime(): number | null {
    return this.stoppedEventAt;
  }

  /** Stops recording and resolves with the whole video. */
  stop(): Promise<Blob> {
    return new Promise((resolve) => {
      const finish = () => {
        this.stoppedAt ??= this.now();
        this.stoppedEventAt = this.now();
        for (const track of this.stream.getTracks()) track.stop();
        resolve(new Blob(this.chunks, { type: this.mimeType.split(";")[0] || "video/webm" }));
      };
      if (this.recorder.state === "inactive") {
        finish();
        return;
      }
      this.stoppedAt = this.now();
      this.recorder.onstop = finish;
      this.recorder.stop();
    });
  }
}
