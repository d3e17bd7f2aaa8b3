import { describe, expect, it } from "vitest";
import { CanvasRecorder, defaultBitrate, pickMimeType, RecorderError } from "./recorder";

class FakeRecorder {
  static supported = new Set(["video/webm;codecs=vp8", "video/webm"]);
  static last: FakeRecorder | null = null;
  static isTypeSupported(t: string) {
    return FakeRecorder.supported.has(t);
  }
  state: "inactive" | "recording" = "inactive";
  ondataavailable: ((e: { data: Blob }) => void) | null = null;
  onstart: (() => void) | null = null;
  onstop: (() => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;
  timeslice = 0;
  constructor(
    readonly stream: unknown,
    readonly options: MediaRecorderOptions,
  ) {
    FakeRecorder.last = this;
  }
  start(timeslice: number) {
    this.timeslice = timeslice;
    this.state = "recording";
    queueMicrotask(() => this.onstart?.());
  }
  emit(bytes: number) {
    this.ondataavailable?.({ data: new Blob([new Uint8Array(bytes)]) });
  }
  stop() {
    this.emit(5);
    this.state = "inactive";
    queueMicrotask(() => this.onstop?.());
  }
}

const canvas = () => {
  let fps = 0;
  const stopped: string[] = [];
  return {
    fps: () => fps,
    stopped,
    captureStream(f?: number) {
      fps = f ?? 0;
      return { getTracks: () => [{ stop: () => stopped.push("track") }] } as unknown as MediaStream;
    },
  };
};

describe("CanvasRecorder", () => {
  it("prefers VP8 webm and sizes the bitrate", () => {
    expect(pickMimeType((t) => t === "video/webm")).toBe("video/webm");
    expect(pickMimeType(() => true)).toBe("video/webm;codecs=vp8");
    expect(pickMimeType(() => false)).toBe("");
    expect(defaultBitrate(1280, 720, 30)).toBe(2_764_800);
    expect(defaultBitrate(64, 36, 10)).toBe(500_000);
  });

  it("captures at the configured fps, collects chunks and returns one webm blob", async () => {
    const c = canvas();
    let t = 100;
    const rec = new CanvasRecorder(c, { fps: 30, width: 640, height: 360 }, { MediaRecorder: FakeRecorder as never, now: () => t });
    expect(c.fps()).toBe(30);
    expect(rec.mimeType).toBe("video/webm;codecs=vp8");
    expect(FakeRecorder.last!.options.mimeType).toBe("video/webm;codecs=vp8");
    const started = rec.start();
    t = 350; // the start event comes late: the start time is still when start() was called
    expect(await started).toBe(100);
    expect(rec.recording).toBe(true);
    expect(FakeRecorder.last!.timeslice).toBe(1000);
    FakeRecorder.last!.emit(10);
    FakeRecorder.last!.emit(0); // empty chunks are ignored
    FakeRecorder.last!.emit(7);
    t = 2100;
    const blob = await rec.stop();
    expect(blob.size).toBe(22);
    expect(blob.type).toBe("video/webm");
    expect(rec.chunkCount).toBe(3);
    expect(rec.startTime).toBe(100);
    expect(rec.stopTime).toBe(2100);
    expect(rec.stoppedTime).toBe(2100);
    expect(c.stopped).toEqual(["track"]);
  });

  it("says in words when the browser cannot record", () => {
    expect(() => new CanvasRecorder(canvas(), { fps: 30, width: 1, height: 1 }, { MediaRecorder: undefined })).toThrow(
      typeof MediaRecorder === "undefined" ? RecorderError : Error,
    );
  });
});
