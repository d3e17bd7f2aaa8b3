import { describe, expect, it } from "vitest";
import { MemoryPendingStore, newPendingId, resumePending, uploadPending, type PendingSession, type Uploader } from "./pending";
import { UploadError, type UploadCheckpoint } from "./upload";

const session = (id: string, createdAt: number, extra: Partial<PendingSession> = {}): PendingSession => ({
  id,
  createdAt,
  worldId: "w",
  video: new Blob([new Uint8Array([1, 2, 3])]),
  telemetry: new Uint8Array([4, 5]),
  state: "recorded",
  attempts: 0,
  ...extra,
});

const cp: UploadCheckpoint = { sessionId: "s1", start: new Uint8Array([1]), done: [] };

describe("MemoryPendingStore", () => {
  it("puts, gets, lists oldest first and deletes", async () => {
    const store = new MemoryPendingStore();
    await store.put(session("b", 2));
    await store.put(session("a", 1));
    expect((await store.list()).map((s) => s.id)).toEqual(["a", "b"]);
    expect((await store.get("b"))?.telemetry).toEqual(new Uint8Array([4, 5]));
    await store.delete("a");
    expect((await store.list()).map((s) => s.id)).toEqual(["b"]);
    expect(await store.get("a")).toBeUndefined();
  });

  it("makes distinct local ids", () => {
    expect(newPendingId(1000, () => 0.1)).not.toBe(newPendingId(1000, () => 0.2));
  });
});

describe("uploadPending / resumePending", () => {
  it("saves checkpoints while uploading and deletes the session when done", async () => {
    const store = new MemoryPendingStore();
    await store.put(session("a", 1));
    const seen: (UploadCheckpoint | undefined)[] = [];
    const upload: Uploader = async (payload, checkpoint, onCheckpoint) => {
      seen.push(checkpoint);
      expect(payload.telemetry).toEqual(new Uint8Array([4, 5]));
      await onCheckpoint(cp);
      expect((await store.get("a"))?.checkpoint).toEqual(cp);
      expect((await store.get("a"))?.state).toBe("uploading");
      return { sessionId: "s1", session: undefined };
    };
    const out = await uploadPending(store, "a", upload);
    expect(out).toEqual({ ok: true, result: { sessionId: "s1", session: undefined } });
    expect(seen).toEqual([undefined]);
    expect(await store.list()).toEqual([]);
  });

  it("keeps a failed session with its error and checkpoint, and resumes from it after a reload", async () => {
    const store = new MemoryPendingStore();
    await store.put(session("a", 1));
    const out = await uploadPending(store, "a", async (_p, _c, save) => {
      await save(cp);
      throw new TypeError("Failed to fetch");
    });
    expect(out).toEqual({ ok: false, error: "Failed to fetch", retryable: true });
    const kept = (await store.get("a"))!;
    expect(kept).toMatchObject({ state: "failed", error: "Failed to fetch", attempts: 1, checkpoint: cp });

    // "Page reload": a new run over the same store picks it up with its checkpoint.
    const resumedWith: (UploadCheckpoint | undefined)[] = [];
    const outcomes = await resumePending(store, async (_p, c) => {
      resumedWith.push(c);
      return { sessionId: c!.sessionId, session: undefined };
    });
    expect(resumedWith).toEqual([cp]);
    expect(outcomes).toHaveLength(1);
    expect(await store.list()).toEqual([]);
  });

  it("leaves sessions refused for good alone when resuming", async () => {
    const store = new MemoryPendingStore();
    await store.put(session("a", 1));
    await store.put(session("b", 2));
    const isRetryable = (e: unknown) => !(e instanceof UploadError) || e.retryable;
    await uploadPending(store, "a", async () => {
      throw new UploadError("refused", false, 403);
    }, isRetryable);
    const calls: string[] = [];
    await resumePending(store, async () => {
      calls.push("upload");
      return { sessionId: "s2", session: undefined };
    }, isRetryable);
    expect(calls).toHaveLength(1);
    expect((await store.list()).map((s) => [s.id, s.state, s.retryable])).toEqual([["a", "failed", false]]);
  });

  it("reports a missing session", async () => {
    expect(await uploadPending(new MemoryPendingStore(), "zz", async () => ({ sessionId: "", session: undefined }))).toMatchObject({ ok: false });
  });
});
