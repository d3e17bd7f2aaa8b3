import { create, fromBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import {
  CompleteSessionResponseSchema,
  SessionSchema,
  SessionState,
  StartSessionResponseSchema,
  UploadKind,
  type CompleteSessionRequest,
  type StartSessionRequest,
} from "../gen/scalediffusion/v1/ingest_pb";
import { TelemetrySchema } from "../gen/scalediffusion/v1/telemetry_pb";
import { TelemetryRecorder } from "./telemetry";
import {
  backoffDelay,
  checkpointUsable,
  DEFAULT_RETRY,
  fetchSender,
  isRetryable,
  parseS3Error,
  sha256Hex,
  UploadError,
  uploadSession,
  type IngestLike,
  type UploadCheckpoint,
  type UploadProgress,
} from "./upload";

const hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

function telemetryBytes(): Uint8Array {
  const rec = new TelemetryRecorder({ videoWidth: 64, videoHeight: 36, videoFps: 30, worldId: "w" });
  for (let i = 0; i < 90; i++) {
    rec.addTick({
      tMs: i * 16.7,
      controls: { steer: 0, throttle: 1, brake: 0 },
      vehicle: { x: i, y: 0, theta: 0, speed: 10 },
      camera: { x: 0, y: 0, z: 1, yaw: 0, pitch: 0, roll: 0, fovDeg: 60 },
      command: RoadOption.LANEFOLLOW,
    });
  }
  return rec.encode();
}

const VIDEO = new Uint8Array(Array.from({ length: 2500 }, (_, i) => i % 251));

type Call = { url: string; method: string; body: unknown };

/** A fake fetch: answers per URL from a script (status codes, or "network" for a thrown TypeError). */
function fakeFetch(script: Record<string, (string | number)[]>, etags: Record<string, string> = {}) {
  const calls: Call[] = [];
  const fn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    calls.push({ url, method: init?.method ?? "GET", body: init?.body });
    const queue = script[url] ?? [204];
    const next = queue.length > 1 ? queue.shift()! : queue[0]!;
    if (next === "network") throw new TypeError("fetch failed");
    const status = next as number;
    const headers = new Headers();
    if (etags[url] !== undefined) headers.set("ETag", etags[url]!);
    const body = status >= 400 ? `<?xml version="1.0"?><Error><Code>${status === 403 ? "AccessDenied" : "SlowDown"}</Code><Message>nope</Message></Error>` : null;
    return new Response(status === 204 ? null : body, { status, headers });
  }) as typeof fetch;
  return { fn, calls };
}

function fakeIngest(opts: { multipart?: { partSize: number; parts: number }; startErrors?: ConnectError[]; completeErrors?: ConnectError[] } = {}) {
  const starts: StartSessionRequest[] = [];
  const completes: CompleteSessionRequest[] = [];
  const startErrors = [...(opts.startErrors ?? [])];
  const completeErrors = [...(opts.completeErrors ?? [])];
  const expiresAt = timestampFromMs(Date.now() + 15 * 60_000);
  const ingest: IngestLike = {
    async startSession(req) {
      starts.push(req as StartSessionRequest);
      const e = startErrors.shift();
      if (e) throw e;
      const video = opts.multipart
        ? {
            kind: UploadKind.VIDEO,
            key: "raw/p/s1/video.webm",
            method: "MULTIPART",
            expiresAt,
            headers: { "Content-Type": "video/webm" },
            multipart: {
              uploadId: "u1",
              partSize: BigInt(opts.multipart.partSize),
              partUrls: Array.from({ length: opts.multipart.parts }, (_, i) => `https://s3.test/part${i + 1}`),
            },
          }
        : {
            kind: UploadKind.VIDEO,
            key: "raw/p/s1/video.webm",
            method: "POST",
            url: "https://s3.test/raw",
            expiresAt,
            formFields: { key: "raw/p/s1/video.webm", policy: "p", "x-amz-signature": "sig" },
            headers: { "Content-Type": "video/webm" },
          };
      return create(StartSessionResponseSchema, {
        sessionId: "s1",
        playerId: "p",
        targets: [
          video,
          {
            kind: UploadKind.TELEMETRY,
            key: "raw/p/s1/telemetry.pb",
            method: "POST",
            url: "https://s3.test/raw",
            expiresAt,
            formFields: { key: "raw/p/s1/telemetry.pb", policy: "p2" },
            headers: { "Content-Type": "application/x-protobuf" },
          },
        ],
      });
    },
    async completeSession(req) {
      completes.push(req as CompleteSessionRequest);
      const e = completeErrors.shift();
      if (e) throw e;
      return create(CompleteSessionResponseSchema, { session: create(SessionSchema, { sessionId: "s1", state: SessionState.UPLOADED }) });
    },
  };
  return { ingest, starts, completes };
}

function deps(ingest: IngestLike, fetchFn: typeof fetch, extra: { sleeps?: number[]; progress?: UploadProgress[]; checkpoints?: UploadCheckpoint[] } = {}) {
  return {
    ingest,
    send: fetchSender(fetchFn),
    sleep: async (ms: number) => {
      extra.sleeps?.push(ms);
    },
    random: () => 0.5,
    onProgress: (p: UploadProgress) => extra.progress?.push(p),
    onCheckpoint: (c: UploadCheckpoint) => {
      extra.checkpoints?.push(structuredClone(c));
    },
  };
}

describe("uploadSession", () => {
  it("starts, POSTs each form with the file last, and completes with sizes and SHA-256", async () => {
    const { ingest, starts, completes } = fakeIngest();
    const { fn, calls } = fakeFetch({});
    const progress: UploadProgress[] = [];
    const telemetry = telemetryBytes();
    const video = new Blob([VIDEO], { type: "video/webm" });
    const result = await uploadSession({ video, telemetry }, deps(ingest, fn, { progress }));

    expect(result.sessionId).toBe("s1");
    expect(result.session?.state).toBe(SessionState.UPLOADED);
    expect(starts[0]!.expectedVideoBytes).toBe(2500n);
    expect(calls).toHaveLength(2);
    const form = calls[0]!.body as FormData;
    expect([...form.keys()]).toEqual(["key", "policy", "x-amz-signature", "file"]);
    const file = form.get("file") as File;
    expect(file.size).toBe(2500);
    expect(file.type).toBe("video/webm");

    const objs = completes[0]!.objects;
    expect(completes[0]!.sessionId).toBe("s1");
    expect(objs.map((o) => [o.kind, o.key, o.sizeBytes])).toEqual([
      [UploadKind.VIDEO, "raw/p/s1/video.webm", 2500n],
      [UploadKind.TELEMETRY, "raw/p/s1/telemetry.pb", expect.any(BigInt)],
    ]);
    expect(objs[0]!.sha256).toBe(hex(VIDEO));
    // The telemetry was stamped with the session id before hashing and uploading.
    const sent = new Uint8Array(await ((calls[1]!.body as FormData).get("file") as File).arrayBuffer());
    expect(fromBinary(TelemetrySchema, sent).sessionId).toBe("s1");
    expect(objs[1]!.sha256).toBe(hex(sent));
    expect(objs[1]!.sizeBytes).toBe(BigInt(sent.length));

    expect(progress[0]!.phase).toBe("starting");
    expect(progress[progress.length - 1]).toMatchObject({ phase: "done", fraction: 1 });
    const fractions = progress.map((p) => p.fraction);
    expect([...fractions].sort((a, b) => a - b)).toEqual(fractions);
  });

  it("retries 503s and network errors with growing backoff", async () => {
    const { ingest, completes } = fakeIngest({ startErrors: [new ConnectError("down", Code.Unavailable)] });
    const { fn, calls } = fakeFetch({ "https://s3.test/raw": [503, "network", 500, 204] });
    const sleeps: number[] = [];
    await uploadSession({ video: new Blob([VIDEO]), telemetry: telemetryBytes() }, deps(ingest, fn, { sleeps }));
    // StartSession once retried (500 ms ceiling), then 503, network error, 500 on the video POST.
    expect(sleeps).toEqual([375, 375, 750, 1500]);
    expect(calls.filter((c) => c.url === "https://s3.test/raw")).toHaveLength(5);
    expect(completes).toHaveLength(1);
  });

  it("does not retry a 403 and says why in words", async () => {
    const { ingest, completes } = fakeIngest();
    const { fn, calls } = fakeFetch({ "https://s3.test/raw": [403] });
    const sleeps: number[] = [];
    const err = await uploadSession({ video: new Blob([VIDEO]), telemetry: telemetryBytes() }, deps(ingest, fn, { sleeps })).catch((e) => e);
    expect(err).toBeInstanceOf(UploadError);
    expect(err.retryable).toBe(false);
    expect(err.status).toBe(403);
    expect(err.message).toMatch(/refused the video upload \(HTTP 403, AccessDenied: nope\)/);
    expect(calls).toHaveLength(1);
    expect(sleeps).toEqual([]);
    expect(completes).toHaveLength(0);
  });

  it("does not retry INVALID_ARGUMENT or PERMISSION_DENIED from the ingest service", async () => {
    for (const code of [Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated]) {
      const { ingest } = fakeIngest({ completeErrors: [new ConnectError("bad", code)] });
      const { fn } = fakeFetch({});
      const sleeps: number[] = [];
      const err = await uploadSession({ video: new Blob([VIDEO]), telemetry: telemetryBytes() }, deps(ingest, fn, { sleeps })).catch((e) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect(err.code).toBe(code);
      expect(sleeps).toEqual([]);
    }
  });

  it("gives up after maxAttempts", async () => {
    const { ingest } = fakeIngest();
    const { fn, calls } = fakeFetch({ "https://s3.test/raw": [503] });
    const err = await uploadSession({ video: new Blob([VIDEO]), telemetry: telemetryBytes() }, deps(ingest, fn)).catch((e) => e);
    expect(err).toBeInstanceOf(UploadError);
    expect(err.message).toMatch(/HTTP 503, SlowDown/);
    expect(calls).toHaveLength(DEFAULT_RETRY.maxAttempts);
  });

  it("PUTs multipart chunks in order and completes with their ETags", async () => {
    const { ingest, completes } = fakeIngest({ multipart: { partSize: 1000, parts: 4 } });
    const { fn, calls } = fakeFetch(
      { "https://s3.test/part2": [503, 200] },
      { "https://s3.test/part1": '"e1"', "https://s3.test/part2": '"e2"', "https://s3.test/part3": '"e3"' },
    );
    await uploadSession({ video: new Blob([VIDEO]), telemetry: telemetryBytes() }, deps(ingest, fn));
    const puts = calls.filter((c) => c.method === "PUT");
    expect(puts.map((c) => c.url)).toEqual(["https://s3.test/part1", "https://s3.test/part2", "https://s3.test/part2", "https://s3.test/part3"]);
    expect(puts.map((c) => (c.body as Blob).size)).toEqual([1000, 1000, 1000, 500]);
    const video = completes[0]!.objects[0]!;
    expect(video.parts.map((p) => [p.partNumber, p.etag])).toEqual([
      [1, '"e1"'],
      [2, '"e2"'],
      [3, '"e3"'],
    ]);
    expect(video.sha256).toBe(hex(VIDEO));
    expect(video.sizeBytes).toBe(2500n);
  });

  it("fails in words when the ETag header is not exposed", async () => {
    const { ingest } = fakeIngest({ multipart: { partSize: 1000, parts: 3 } });
    const { fn } = fakeFetch({ "https://s3.test/part1": [200] });
    await expect(uploadSession({ video: new Blob([VIDEO]), telemetry: telemetryBytes() }, deps(ingest, fn))).rejects.toThrow(/ExposeHeaders/);
  });

  it("resumes from a checkpoint without re-uploading what was done", async () => {
    const first = fakeIngest();
    const checkpoints: UploadCheckpoint[] = [];
    const broken = fakeFetch({ "https://s3.test/raw": [204, 403] });
    const payload = { video: new Blob([VIDEO]), telemetry: telemetryBytes() };
    await expect(uploadSession(payload, deps(first.ingest, broken.fn, { checkpoints }))).rejects.toThrow(UploadError);
    const cp = checkpoints[checkpoints.length - 1]!;
    expect(cp.sessionId).toBe("s1");
    expect(cp.done).toHaveLength(1);
    expect(checkpointUsable(cp, Date.now())).toBe(true);
    expect(checkpointUsable(cp, Date.now() + 3600_000)).toBe(false);

    const second = fakeIngest();
    const ok = fakeFetch({});
    const result = await uploadSession(payload, deps(second.ingest, ok.fn), cp);
    expect(result.sessionId).toBe("s1");
    expect(second.starts).toHaveLength(0);
    expect(ok.calls).toHaveLength(1); // only the telemetry
    expect(second.completes[0]!.objects.map((o) => o.kind)).toEqual([UploadKind.VIDEO, UploadKind.TELEMETRY]);
  });
});

describe("retry helpers", () => {
  it("backs off exponentially with jitter and a cap", () => {
    const p = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(1, p, () => 0)).toBe(50);
    expect(backoffDelay(1, p, () => 1)).toBe(100);
    expect(backoffDelay(3, p, () => 1)).toBe(400);
    expect(backoffDelay(8, p, () => 1)).toBe(1000);
  });

  it("classifies errors", () => {
    expect(isRetryable(new TypeError("Failed to fetch"))).toBe(true);
    expect(isRetryable(new ConnectError("x", Code.Unavailable))).toBe(true);
    expect(isRetryable(new ConnectError("x", Code.Aborted))).toBe(true);
    expect(isRetryable(new ConnectError("fetch failed", Code.Unknown))).toBe(true);
    expect(isRetryable(new ConnectError("x", Code.InvalidArgument))).toBe(false);
    expect(isRetryable(new ConnectError("x", Code.PermissionDenied))).toBe(false);
    expect(isRetryable(new ConnectError("x", Code.ResourceExhausted))).toBe(false);
    expect(isRetryable(new UploadError("x", false, 400))).toBe(false);
  });

  it("parses S3 errors and hashes blobs", async () => {
    expect(parseS3Error("<Error><Code>EntityTooLarge</Code><Message>big</Message></Error>")).toEqual({ code: "EntityTooLarge", message: "big" });
    expect(await sha256Hex(new Blob([new TextEncoder().encode("abc")]))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});
