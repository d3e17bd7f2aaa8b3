import { describe, expect, it } from "vitest";
import { type ChunkSink, FrameRecorder, webmSink } from "./frames";

/** A VideoEncoder stand-in: holds frames until deliver()/flush(), then emits one chunk per frame, in order. */
class FakeEncoder {
  static last: FakeEncoder | null = null;
  queue: { timestamp: number; key: boolean }[] = [];
  configured: VideoEncoderConfig | null = null;
  closed = false;
  constructor(private readonly init: VideoEncoderInit) {
    FakeEncoder.last = this;
  }
  get encodeQueueSize() {
    return this.queue.length;
  }
  configure(c: VideoEncoderConfig) {
    this.configured = c;
  }
  encode(frame: { timestamp: number }, opts?: { keyFrame?: boolean }) {
    this.queue.push({ timestamp: frame.timestamp, key: opts?.keyFrame ?? false });
  }
  deliver() {
    for (const f of this.queue.splice(0)) {
      const data = new Uint8Array([f.key ? 1 : 0, 2, 3]);
      const chunk = {
        timestamp: f.timestamp,
        duration: null,
        type: f.key ? "key" : "delta",
        byteLength: data.byteLength,
        copyTo: (dst: Uint8Array) => dst.set(data),
      };
      this.init.output(chunk as unknown as EncodedVideoChunk, {});
    }
  }
  async flush() {
    this.deliver();
  }
  close() {
    this.closed = true;
  }
}

class FakeFrame {
  readonly timestamp: number;
  closed = false;
  constructor(_image: unknown, init: { timestamp: number }) {
    this.timestamp = init.timestamp;
  }
  close() {
    this.closed = true;
  }
}

function memorySink() {
  const added: { timestampUs: number; key: boolean; bytes: number }[] = [];
  const sink: ChunkSink = {
    async add(data, timestampUs, _d, key) {
      added.push({ timestampUs, key, bytes: data.byteLength });
    },
    async finish() {
      return new Uint8Array([0x1a, 0x45, 0xdf, 0xa3]);
    },
  };
  return { sink, added };
}

const make = (sink: ChunkSink, opts: Partial<{ fps: number; maxQueue: number }> = {}) =>
  new FrameRecorder({} as CanvasImageSource, { fps: opts.fps ?? 10, width: 64, height: 36, maxQueue: opts.maxQueue ?? 100 }, {
    VideoEncoder: FakeEncoder as never,
    VideoFrame: FakeFrame as never,
    sink: () => sink,
    now: () => 0,
  });

describe("FrameRecorder", () => {
  it("records one frame record per encoded frame, at video times counted from the recording start", async () => {
    const { sink, added } = memorySink();
    const rec = make(sink);
    await rec.start();
    expect(rec.offer(900, 900, "raw")).toBe(false); // before begin(): nothing
    rec.begin(1000);
    expect(rec.offer(1000, 1000, "raw")).toBe(true);
    expect(rec.offer(1030, 1030, "raw")).toBe(false); // sooner than 1/fps after the previous frame
    expect(rec.offer(1100, 700, "repainted")).toBe(true);
    expect(rec.offer(1210.5, 1210.5, "raw")).toBe(true);
    FakeEncoder.last!.deliver();
    const video = await rec.stop();
    expect(rec.frames).toEqual([
      { shownTMs: 1000, renderTMs: 1000, source: "raw" },
      { shownTMs: 1100, renderTMs: 700, source: "repainted" },
      { shownTMs: 1210.5, renderTMs: 1210.5, source: "raw" },
    ]);
    expect(added.map((a) => a.timestampUs)).toEqual([0, 100_000, 210_500]);
    expect(added[0]!.key).toBe(true);
    expect(rec.skippedFrames).toBe(1); // the one too soon (before begin() nothing is recorded at all)
    expect(rec.sizeBytes).toBe(9);
    expect(video.size).toBe(4);
    expect(FakeEncoder.last!.configured).toMatchObject({ codec: "vp8", width: 64, height: 36, latencyMode: "realtime" });
    expect(await rec.stop()).toBe(video); // stopping twice returns the same video
    expect(rec.recording).toBe(false);
  });

  it("skips pictures while the encoder is behind instead of slowing the game down", async () => {
    const { sink } = memorySink();
    const rec = make(sink, { maxQueue: 1 });
    await rec.start();
    rec.begin(0);
    expect(rec.offer(0, 0, "raw")).toBe(true);
    expect(rec.offer(200, 200, "raw")).toBe(true);
    expect(rec.offer(400, 400, "raw")).toBe(false); // two frames queued, more than maxQueue
    FakeEncoder.last!.deliver();
    expect(rec.offer(600, 600, "raw")).toBe(true);
    await rec.stop();
    expect(rec.frames.map((f) => f.shownTMs)).toEqual([0, 200, 600]);
  });

  it("reads the pixels of a 2D canvas instead of the canvas itself", async () => {
    const { sink } = memorySink();
    const reads: number[][] = [];
    const made: { init: Record<string, unknown> }[] = [];
    class PixelFrame extends FakeFrame {
      constructor(image: unknown, init: { timestamp: number }) {
        super(image, init);
        made.push({ init: init as unknown as Record<string, unknown> });
      }
    }
    const ctx = {
      getImageData: (x: number, y: number, w: number, h: number) => {
        reads.push([x, y, w, h]);
        return { data: new Uint8ClampedArray(w * h * 4) } as ImageData;
      },
    };
    const rec = new FrameRecorder({} as CanvasImageSource, { fps: 10, width: 64, height: 36 }, { VideoEncoder: FakeEncoder as never, VideoFrame: PixelFrame as never, sink: () => sink }, ctx);
    await rec.start();
    rec.begin(0);
    rec.offer(0, 0, "raw");
    await rec.stop();
    expect(reads).toEqual([[0, 0, 64, 36]]);
    expect(made[0]!.init).toMatchObject({ format: "RGBX", codedWidth: 64, codedHeight: 36, timestamp: 0 });
  });

  it("skips a repaint of a state older than the telemetry keeps", async () => {
    const { sink } = memorySink();
    const rec = make(sink);
    await rec.start();
    rec.begin(1000, 500);
    expect(rec.offer(1000, 400, "repainted")).toBe(false);
    expect(rec.offer(1100, 600, "repainted")).toBe(true);
    await rec.stop();
    expect(rec.frames.map((f) => f.renderTMs)).toEqual([600]);
  });

  it("never claims a render time after the frame was shown", async () => {
    const { sink } = memorySink();
    const rec = make(sink);
    await rec.start();
    rec.begin(0);
    rec.offer(100, 150, "raw");
    await rec.stop();
    expect(rec.frames[0]!.renderTMs).toBe(100);
  });

  it("muxes chunks into a WebM file with mediabunny", async () => {
    const sink = webmSink(64, 36);
    await sink.add(new Uint8Array([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x00, 0x24, 0x00]), 0, 100_000, true);
    await sink.add(new Uint8Array([0x11, 0x02, 0x00]), 100_000, 100_000, false);
    const bytes = await sink.finish();
    expect([...bytes.slice(0, 4)]).toEqual([0x1a, 0x45, 0xdf, 0xa3]); // EBML magic
    expect(new TextDecoder("latin1").decode(bytes)).toContain("V_VP8");
  });
});
