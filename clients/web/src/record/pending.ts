// Recorded sessions that are not uploaded yet, kept across page reloads (IndexedDB) and resumed when the player is
// signed in again. The store interface has an in-memory implementation for tests and browsers without IndexedDB.

import type { SessionPayload, UploadCheckpoint, UploadResult } from "./upload";

export type PendingState = "recorded" | "uploading" | "failed";

export interface PendingSession {
  /** Local id (not the ingest session id, which the checkpoint holds once StartSession answered). */
  id: string;
  createdAt: number;
  worldId: string;
  video: Blob;
  telemetry: Uint8Array;
  state: PendingState;
  checkpoint?: UploadCheckpoint;
  /** The last failure, in words. */
  error?: string;
  /** False when the last failure cannot be fixed by trying again (the upload was refused). */
  retryable?: boolean;
  attempts: number;
}

export interface PendingStore {
  readonly kind: "indexeddb" | "memory";
  put(session: PendingSession): Promise<void>;
  get(id: string): Promise<PendingSession | undefined>;
  /** Oldest first. */
  list(): Promise<PendingSession[]>;
  delete(id: string): Promise<void>;
}

export function newPendingId(now = Date.now(), random = Math.random): string {
  return `local-${now.toString(36)}-${Math.floor(random() * 2 ** 32).toString(36)}`;
}

export class MemoryPendingStore implements PendingStore {
  readonly kind = "memory" as const;
  private readonly items = new Map<string, PendingSession>();

  async put(session: PendingSession): Promise<void> {
    this.items.set(session.id, { ...session });
  }
  async get(id: string): Promise<PendingSession | undefined> {
    const s = this.items.get(id);
    return s === undefined ? undefined : { ...s };
  }
  async list(): Promise<PendingSession[]> {
    return [...this.items.values()].map((s) => ({ ...s })).sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
  async delete(id: string): Promise<void> {
    this.items.delete(id);
  }
}

const DB_NAME = "scale-diffusion";
const DB_VERSION = 1;
const STORE = "pending-sessions";

function promised<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

export class IndexedDbPendingStore implements PendingStore {
  readonly kind = "indexeddb" as const;

  private constructor(private readonly db: IDBDatabase) {}

  static open(factory: IDBFactory = indexedDB, name = DB_NAME): Promise<IndexedDbPendingStore> {
    return new Promise((resolve, reject) => {
      const req = factory.open(name, DB_VERSION);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE, { keyPath: "id" });
      };
      req.onsuccess = () => resolve(new IndexedDbPendingStore(req.result));
      req.onerror = () => reject(req.error ?? new Error("could not open IndexedDB"));
      req.onblocked = () => reject(new Error("IndexedDB is blocked by another tab holding an older version"));
    });
  }

  private async tx<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const t = this.db.transaction(STORE, mode);
    const result = await promised(fn(t.objectStore(STORE)));
    await new Promise<void>((resolve, reject) => {
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error ?? new Error("IndexedDB transaction failed"));
      t.onabort = () => reject(t.error ?? new Error("IndexedDB transaction aborted (is the disk full?)"));
    });
    return result;
  }

  async put(session: PendingSession): Promise<void> {
    await this.tx("readwrite", (s) => s.put(session));
  }
  async get(id: string): Promise<PendingSession | undefined> {
    return (await this.tx("readonly", (s) => s.get(id))) as PendingSession | undefined;
  }
  async list(): Promise<PendingSession[]> {
    const all = (await this.tx("readonly", (s) => s.getAll())) as PendingSession[];
    return all.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
  async delete(id: string): Promise<void> {
    await this.tx("readwrite", (s) => s.delete(id));
  }
}

/** IndexedDB when the browser has it, otherwise memory (sessions then survive only until the page closes). */
export async function openPendingStore(): Promise<PendingStore> {
  if (typeof indexedDB === "undefined") return new MemoryPendingStore();
  try {
    return await IndexedDbPendingStore.open();
  } catch {
    return new MemoryPendingStore();
  }
}

export type Uploader = (
  payload: SessionPayload,
  checkpoint: UploadCheckpoint | undefined,
  onCheckpoint: (c: UploadCheckpoint) => Promise<void>,
) => Promise<UploadResult>;

export type UploadOutcome = { ok: true; result: UploadResult } | { ok: false; error: string; retryable: boolean };

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Uploads one pending session: marks it uploading, saves every checkpoint, deletes it once CompleteSession answered,
 * and on failure keeps it (with the error in words) for a later try.
 */
export async function uploadPending(
  store: PendingStore,
  id: string,
  upload: Uploader,
  isRetryable: (err: unknown) => boolean = () => true,
): Promise<UploadOutcome> {
  const session = await store.get(id);
  if (session === undefined) return { ok: false, error: `no saved recording ${id}`, retryable: false };
  let current: PendingSession = { ...session, state: "uploading", attempts: session.attempts + 1, error: undefined };
  await store.put(current);
  try {
    const result = await upload({ video: session.video, telemetry: session.telemetry }, session.checkpoint, async (c) => {
      current = { ...current, checkpoint: c };
      await store.put(current);
    });
    await store.delete(id);
    return { ok: true, result };
  } catch (err) {
    const retryable = isRetryable(err);
    await store.put({ ...current, state: "failed", error: describe(err), retryable });
    return { ok: false, error: describe(err), retryable };
  }
}

/** Uploads every saved session in turn (oldest first); sessions refused for good are left for the player to discard. */
export async function resumePending(
  store: PendingStore,
  upload: Uploader,
  isRetryable?: (err: unknown) => boolean,
  onEach?: (id: string, outcome: UploadOutcome) => void,
): Promise<UploadOutcome[]> {
  const outcomes: UploadOutcome[] = [];
  for (const s of await store.list()) {
    if (s.state === "failed" && s.retryable === false) continue;
    const outcome = await uploadPending(store, s.id, upload, isRetryable);
    onEach?.(s.id, outcome);
    outcomes.push(outcome);
  }
  return outcomes;
}
