import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  CloseStreamResponseSchema,
  OpenStreamResponseSchema,
  TransformFrameResponseSchema,
} from "../gen/scalediffusion/v1/diffusion_pb";
import { DiffusionLink, diffusionNotice, type DiffusedFrame, type DiffusionClientLike } from "./diffusion";

const tick = () => new Promise((r) => setTimeout(r, 0));

function client(opts: { openError?: ConnectError; frameError?: ConnectError; latency?: () => void } = {}) {
  const calls: string[] = [];
  const c: DiffusionClientLike = {
    async openStream() {
      calls.push("open");
      if (opts.openError) throw opts.openError;
      return create(OpenStreamResponseSchema, { streamId: "st1" });
    },
    async transformFrame(req) {
      calls.push(`frame ${req.frame!.seq}`);
      opts.latency?.();
      if (opts.frameError) throw opts.frameError;
      return create(TransformFrameResponseSchema, {
        frame: { streamId: "st1", seq: req.frame!.seq, clientTMs: req.frame!.clientTMs, image: new Uint8Array([9, 9]), contentType: "image/jpeg" },
      });
    },
    async closeStream() {
      calls.push("close");
      return create(CloseStreamResponseSchema, {});
    },
  };
  return { c, calls };
}

describe("DiffusionLink", () => {
  it("falls back to the raw render with a one-line notice on UNIMPLEMENTED", async () => {
    const { c, calls } = client({ openError: new ConnectError("not yet", Code.Unimplemented) });
    let captures = 0;
    const link = new DiffusionLink({ client: c, now: () => 0, capture: async () => (captures++, { image: new Uint8Array(1), contentType: "image/jpeg" }) });
    await link.setEnabled(true);
    const s = link.snapshot();
    expect(s.status).toBe("unavailable");
    expect(link.active).toBe(false);
    expect(s.notice).toMatch(/not available.*UNIMPLEMENTED.*raw render.*Recording continues/);
    expect(s.notice!.includes("\n")).toBe(false);
    link.pump();
    await tick();
    expect(captures).toBe(0);
    expect(calls).toEqual(["open"]);
  });

  it("sends one frame at a time and measures each round trip", async () => {
    let t = 1000;
    const { c, calls } = client({ latency: () => (t += 40) });
    const frames: DiffusedFrame[] = [];
    const link = new DiffusionLink({
      client: c,
      now: () => t,
      capture: async () => ({ image: new Uint8Array([1, 2, 3]), contentType: "image/jpeg" }),
      onFrame: (f) => frames.push(f),
      maxInFlight: 1,
    });
    await link.setEnabled(true);
    expect(link.snapshot().status).toBe("on");
    link.pump();
    link.pump(); // ignored: one in flight
    await tick();
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ seq: 1, capturedTMs: 1000, receivedTMs: 1040, rttMs: 40, contentType: "image/jpeg" });
    link.pump();
    await tick();
    expect(frames.map((f) => f.seq)).toEqual([1, 2]);
    expect(link.snapshot()).toMatchObject({ framesSent: 2, framesReceived: 2, lastRttMs: 40 });
    await link.setEnabled(false);
    expect(calls).toEqual(["open", "frame 1", "frame 2", "close"]);
    expect(link.active).toBe(false);
  });

  it("pipelines frames and never delivers an older frame after a newer one", async () => {
    const resolvers: (() => void)[] = [];
    let t = 0;
    const c: DiffusionClientLike = {
      openStream: async () => create(OpenStreamResponseSchema, { streamId: "s" }),
      closeStream: async () => create(CloseStreamResponseSchema, {}),
      transformFrame: (req) =>
        new Promise((resolve) => {
          resolvers.push(() =>
            resolve(create(TransformFrameResponseSchema, { frame: { ...req.frame!, image: new Uint8Array([1]), contentType: "image/jpeg" } })),
          );
        }),
    };
    const seqs: number[] = [];
    const link = new DiffusionLink({ client: c, now: () => t++, capture: async () => ({ image: new Uint8Array(1), contentType: "image/jpeg" }), onFrame: (f) => seqs.push(f.seq) });
    await link.setEnabled(true);
    link.pump();
    await tick();
    link.pump();
    await tick();
    link.pump(); // a third is not sent while two are in flight
    await tick();
    expect(resolvers).toHaveLength(2);
    resolvers[1]!(); // frame 2 first
    await tick();
    resolvers[0]!(); // then the older frame 1: dropped
    await tick();
    expect(seqs).toEqual([2]);
    expect(link.snapshot().framesDropped).toBe(1);
  });

  it("captures at the size the server offered and paces frames to the rate each reply advises", async () => {
    let t = 0;
    let advise = 4;
    const sizes: string[] = [];
    const c: DiffusionClientLike = {
      openStream: async (req) => {
        expect(req.config).toMatchObject({ width: 512, height: 288 }); // asks for the most it would show
        return create(OpenStreamResponseSchema, { streamId: "s", config: { width: 240, height: 128 }, frameRate: 5, latencyTargetMs: 1500 });
      },
      closeStream: async () => create(CloseStreamResponseSchema, {}),
      transformFrame: async (req) =>
        create(TransformFrameResponseSchema, { frame: { ...req.frame!, image: new Uint8Array([1]), contentType: "image/jpeg" }, frameRate: advise }),
    };
    const link = new DiffusionLink({
      client: c,
      now: () => t,
      capture: async (w, h) => (sizes.push(`${w}x${h}`), { image: new Uint8Array(1), contentType: "image/jpeg" }),
      config: { width: 512, height: 288 },
    });
    await link.setEnabled(true);
    expect(link.snapshot()).toMatchObject({ width: 240, height: 128, advisedFps: 5 });
    const sentBy = async (untilMs: number) => {
      for (; t <= untilMs; t += 10) {
        link.pump();
        await tick();
      }
      return link.snapshot().framesSent;
    };
    expect(await sentBy(990)).toBe(4); // 4 fps advised by the first reply (5 fps at open): 0, 250, 500, 750 ms
    advise = 1; // the server got busier
    expect(await sentBy(3990)).toBe(7); // then 1 fps: 1000, 2000, 3000 ms
    expect(link.snapshot().advisedFps).toBe(1);
    expect(new Set(sizes)).toEqual(new Set(["240x128"]));
  });

  it("captures the next frames at the size a reply renegotiates", async () => {
    let size = { width: 240, height: 128 };
    const sizes: string[] = [];
    const c: DiffusionClientLike = {
      openStream: async () => create(OpenStreamResponseSchema, { streamId: "s", config: { width: 240, height: 128 }, frameRate: 0, latencyTargetMs: 1500 }),
      closeStream: async () => create(CloseStreamResponseSchema, {}),
      transformFrame: async (req) =>
        create(TransformFrameResponseSchema, { frame: { ...req.frame!, image: new Uint8Array([1]), contentType: "image/jpeg" }, ...size }),
    };
    const link = new DiffusionLink({
      client: c,
      now: () => 0,
      capture: async (w, h) => (sizes.push(`${w}x${h}`), { image: new Uint8Array(1), contentType: "image/jpeg" }),
    });
    await link.setEnabled(true);
    link.pump();
    await tick();
    size = { width: 176, height: 96 }; // the server measured a busier machine
    link.pump();
    await tick();
    link.pump();
    await tick();
    expect(sizes).toEqual(["240x128", "240x128", "176x96"]);
    expect(link.snapshot()).toMatchObject({ width: 176, height: 96, resized: 1 });
    size = { width: 0, height: 0 }; // an older server says nothing: the size stays
    link.pump();
    await tick();
    link.pump();
    await tick();
    expect(link.snapshot()).toMatchObject({ width: 176, height: 96, resized: 1 });
  });

  it("shows what a pipelined replica finished, ordered and timed by the frame each reply names", async () => {
    // A stream-batch replica (k = 2) answers frame n with frame n - 1, and the first while its pipeline fills.
    const sent: { seq: bigint; clientTMs: number }[] = [];
    let t = 100;
    const c: DiffusionClientLike = {
      openStream: async () => create(OpenStreamResponseSchema, { streamId: "s", config: { width: 64, height: 64 } }),
      closeStream: async () => create(CloseStreamResponseSchema, {}),
      transformFrame: async (req) => {
        sent.push({ seq: req.frame!.seq!, clientTMs: req.frame!.clientTMs! });
        if (sent.length === 1) return create(TransformFrameResponseSchema, { frame: { streamId: "s", seq: req.frame!.seq }, dropped: true, droppedReason: "filling" });
        const done = sent[sent.length - 2]!;
        return create(TransformFrameResponseSchema, { frame: { streamId: "s", seq: done.seq, clientTMs: done.clientTMs, image: new Uint8Array([1]), contentType: "image/jpeg" } });
      },
    };
    const shown: { seq: number; capturedTMs: number }[] = [];
    const link = new DiffusionLink({
      client: c,
      now: () => t,
      capture: async () => ({ image: new Uint8Array(1), contentType: "image/jpeg", renderTMs: t }),
      onFrame: (f) => shown.push({ seq: f.seq, capturedTMs: f.capturedTMs }),
      maxInFlight: 1,
    });
    await link.setEnabled(true);
    for (let i = 0; i < 4; i++, t += 100) {
      link.pump();
      await tick();
    }
    expect(shown).toEqual([
      { seq: 1, capturedTMs: 100 },
      { seq: 2, capturedTMs: 200 },
      { seq: 3, capturedTMs: 300 },
    ]);
    expect(link.snapshot()).toMatchObject({ framesReceived: 3, framesDropped: 1 });
  });

  it("stops on UNAVAILABLE mid-stream", async () => {
    const { c } = client({ frameError: new ConnectError("gone", Code.Unavailable) });
    const link = new DiffusionLink({ client: c, now: () => 0, capture: async () => ({ image: new Uint8Array(1), contentType: "image/jpeg" }) });
    await link.setEnabled(true);
    link.pump();
    await tick();
    expect(link.snapshot().status).toBe("unavailable");
    expect(link.snapshot().notice).toMatch(/Cannot reach the diffusion service/);
  });

  it("words other failures too", () => {
    expect(diffusionNotice(new ConnectError("slow", Code.DeadlineExceeded))).toMatch(/DEADLINE_EXCEEDED: slow/);
    expect(diffusionNotice(new Error("boom"))).toMatch(/boom/);
  });
});
