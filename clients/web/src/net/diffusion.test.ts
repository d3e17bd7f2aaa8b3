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
