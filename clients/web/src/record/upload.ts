// The session upload: StartSession -> upload every target straight to object storage (presigned POST form, or
// multipart PUTs keeping each part's ETag) -> CompleteSession with sizes and SHA-256. Every dependency (the ingest
// client, the HTTP sender, sleep, randomness, hashing) is injected so the whole flow runs in unit tests.

import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  CompleteSessionRequestSchema,
  StartSessionRequestSchema,
  StartSessionResponseSchema,
  UploadedObjectSchema,
  UploadedPartSchema,
  UploadKind,
  type UploadedPart,
  type CompleteSessionResponse,
  type Session,
  type StartSessionResponse,
  type UploadedObject,
  type UploadTarget,
} from "../gen/scalediffusion/v1/ingest_pb";
import { withSessionId } from "./telemetry";

// ---- HTTP ------------------------------------------------------------------------------------------------------

export interface HttpRequest {
  method: "POST" | "PUT";
  url: string;
  body: Blob | FormData;
  headers?: Record<string, string>;
}

export interface HttpResponse {
  status: number;
  header(name: string): string | null;
  text(): Promise<string>;
}

/** Sends one request; calls onProgress with bytes of the body sent so far when it can tell. */
export type HttpSend = (req: HttpRequest, onProgress?: (sentBytes: number) => void, signal?: AbortSignal) => Promise<HttpResponse>;

/** An HttpSend over fetch (no upload progress until the response arrives). */
export function fetchSender(fetchImpl: typeof globalThis.fetch = globalThis.fetch): HttpSend {
  return async (req, onProgress, signal) => {
    const response = await fetchImpl(req.url, { method: req.method, body: req.body, headers: req.headers, signal });
    if (onProgress !== undefined && response.status < 300) onProgress(req.body instanceof Blob ? req.body.size : 0);
    return { status: response.status, header: (n) => response.headers.get(n), text: () => response.text() };
  };
}

/** An HttpSend over XMLHttpRequest, for real upload progress in browsers. */
export function xhrSender(): HttpSend {
  return (req, onProgress, signal) =>
    new Promise<HttpResponse>((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(req.method, req.url);
      for (const [k, v] of Object.entries(req.headers ?? {})) xhr.setRequestHeader(k, v);
      xhr.upload.onprogress = (e) => onProgress?.(e.loaded);
      xhr.onload = () => resolve({ status: xhr.status, header: (n) => xhr.getResponseHeader(n), text: async () => xhr.responseText });
      xhr.onerror = () => reject(new TypeError(`network error sending ${req.method} to ${new URL(req.url).host}`));
      xhr.ontimeout = () => reject(new TypeError(`timed out sending ${req.method} to ${new URL(req.url).host}`));
      xhr.onabort = () => reject(new DOMException("upload aborted", "AbortError"));
      signal?.addEventListener("abort", () => xhr.abort(), { once: true });
      xhr.send(req.body);
    });
}

// ---- errors and retries ----------------------------------------------------------------------------------------

/** A failed upload step, in words; `retryable` says whether trying again later can help. */
export class UploadError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = "UploadError";
  }
}

const RETRY_CODES = new Set([Code.Unavailable, Code.Aborted, Code.DeadlineExceeded]);

function isNetworkError(err: unknown): boolean {
  if (err instanceof TypeError) return true;
  const cause = (err as { cause?: unknown } | null)?.cause;
  if (cause instanceof TypeError) return true;
  const msg = err instanceof Error ? err.message : String(err);
  return /failed to fetch|fetch failed|network ?error|load failed|ECONNREFUSED|ECONNRESET|socket hang up/i.test(msg);
}

/** Whether an error from an RPC or an HTTP request is worth retrying. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof UploadError) return err.retryable;
  if (err instanceof DOMException && err.name === "AbortError") return false;
  if (err instanceof ConnectError) {
    if (RETRY_CODES.has(err.code)) return true;
    return (err.code === Code.Unknown || err.code === Code.Internal) && isNetworkError(err);
  }
  return isNetworkError(err);
}

export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429 || status === 0;
}

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 20_000 });

/** Delay before retry number `attempt` (1 = first retry): exponential, capped, with "equal jitter" (50-100 %). */
export function backoffDelay(attempt: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

export interface RetryHooks {
  sleep: (ms: number) => Promise<void>;
  random: () => number;
  onRetry?: (info: { what: string; attempt: number; delayMs: number; error: unknown }) => void;
}

export async function withRetry<T>(what: string, fn: () => Promise<T>, policy: RetryPolicy, hooks: RetryHooks): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= policy.maxAttempts || !isRetryable(err)) throw err;
      const delayMs = backoffDelay(attempt, policy, hooks.random);
      hooks.onRetry?.({ what, attempt, delayMs, error: err });
      await hooks.sleep(delayMs);
    }
  }
}

/** The <Code> and <Message> of an S3 XML error body, if any. */
export function parseS3Error(body: string): { code?: string; message?: string } {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  return { code, message };
}

async function httpError(what: string, res: HttpResponse): Promise<UploadError> {
  let body = "";
  try {
    body = await res.text();
  } catch {
    // The body is only for the message.
  }
  const s3 = parseS3Error(body);
  const detail = s3.code !== undefined ? `${s3.code}${s3.message ? `: ${s3.message}` : ""}` : body.slice(0, 200).trim();
  return new UploadError(
    `The object store refused the ${what} (HTTP ${res.status}${detail ? `, ${detail}` : ""})`,
    isRetryableStatus(res.status),
    res.status,
    s3.code,
  );
}

// ---- the flow ----------------------------------------------------------------------------------------------------

export interface IngestLike {
  startSession(request: MessageInitShape<typeof StartSessionRequestSchema>): Promise<StartSessionResponse>;
  completeSession(request: MessageInitShape<typeof CompleteSessionRequestSchema>): Promise<CompleteSessionResponse>;
}

/** Where an interrupted upload got to; saved after every step so a page reload can resume it. */
export interface UploadCheckpoint {
  sessionId: string;
  /** The StartSessionResponse (targets), binary. */
  start: Uint8Array;
  /** UploadedObject messages (binary) for the targets already uploaded. */
  done: Uint8Array[];
}

export type UploadPhase = "starting" | "uploading" | "completing" | "done";

export interface UploadProgress {
  phase: UploadPhase;
  sentBytes: number;
  totalBytes: number;
  /** 0..1 */
  fraction: number;
  message: string;
}

export interface UploadDeps {
  ingest: IngestLike;
  send: HttpSend;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  now?: () => number;
  sha256?: (data: Blob) => Promise<string>;
  retry?: RetryPolicy;
  onProgress?: (p: UploadProgress) => void;
  onCheckpoint?: (c: UploadCheckpoint) => void | Promise<void>;
  onRetry?: RetryHooks["onRetry"];
  signal?: AbortSignal;
}

export interface SessionPayload {
  video: Blob;
  /** Telemetry bytes; the session id is stamped in once StartSession assigns it. */
  telemetry: Uint8Array;
}

export interface UploadResult {
  sessionId: string;
  session: Session | undefined;
}

export const VIDEO_CONTENT_TYPE = "video/webm";
export const TELEMETRY_CONTENT_TYPE = "application/x-protobuf";

export async function sha256Hex(data: Blob): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await data.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True when a checkpoint's upload targets are still usable (not expired, with a minute to spare). */
export function checkpointUsable(c: UploadCheckpoint | undefined, nowMs: number): c is UploadCheckpoint {
  if (c === undefined) return false;
  let start: StartSessionResponse;
  try {
    start = fromBinary(StartSessionResponseSchema, c.start);
  } catch {
    return false;
  }
  return start.targets.every((t) => t.expiresAt === undefined || timestampMs(t.expiresAt) - 60_000 > nowMs);
}

function toBlob(data: Uint8Array, type: string): Blob {
  // Copy into a fresh ArrayBuffer-backed view (Blob wants ArrayBuffer, not SharedArrayBuffer).
  return new Blob([new Uint8Array(data)], { type });
}

/**
 * Uploads one recorded session and completes it. Resumes from `checkpoint` when its targets are still valid.
 * Throws UploadError (or the RPC's ConnectError) in words when it cannot finish; retryable failures were already
 * retried with exponential backoff and jitter.
 */
export async function uploadSession(payload: SessionPayload, deps: UploadDeps, checkpoint?: UploadCheckpoint): Promise<UploadResult> {
  const policy = deps.retry ?? DEFAULT_RETRY;
  const hooks: RetryHooks = { sleep: deps.sleep ?? sleepMs, random: deps.random ?? Math.random, onRetry: deps.onRetry };
  const hash = deps.sha256 ?? sha256Hex;
  const now = deps.now ?? Date.now;
  const totalBytes = payload.video.size + payload.telemetry.length;
  let sentBefore = 0;
  const progress = (phase: UploadPhase, sent: number, message: string) =>
    deps.onProgress?.({ phase, sentBytes: sent, totalBytes, fraction: totalBytes > 0 ? Math.min(1, sent / totalBytes) : 1, message });

  let cp: UploadCheckpoint;
  if (checkpointUsable(checkpoint, now())) {
    cp = { ...checkpoint, done: [...checkpoint.done] };
  } else {
    progress("starting", 0, "Starting the session");
    const started = await withRetry(
      "StartSession",
      () => deps.ingest.startSession({ contentType: VIDEO_CONTENT_TYPE, expectedVideoBytes: BigInt(payload.video.size) }),
      policy,
      hooks,
    );
    cp = { sessionId: started.sessionId, start: toBinary(StartSessionResponseSchema, started), done: [] };
    await deps.onCheckpoint?.(cp);
  }
  const start = fromBinary(StartSessionResponseSchema, cp.start);
  const telemetry = toBlob(withSessionId(payload.telemetry, cp.sessionId), TELEMETRY_CONTENT_TYPE);
  const done = new Map<string, UploadedObject>();
  for (const b of cp.done) {
    const o = fromBinary(UploadedObjectSchema, b);
    done.set(o.key, o);
    sentBefore += Number(o.sizeBytes);
  }

  for (const target of start.targets) {
    if (done.has(target.key)) continue;
    let data: Blob;
    if (target.kind === UploadKind.VIDEO) data = payload.video;
    else if (target.kind === UploadKind.TELEMETRY) data = telemetry;
    else continue; // label streams are never requested by the game
    const what = target.kind === UploadKind.VIDEO ? "video" : "telemetry";
    const base = sentBefore;
    progress("uploading", base, `Uploading the ${what}`);
    const sha256 = await hash(data);
    const obj = create(UploadedObjectSchema, { kind: target.kind, key: target.key, sizeBytes: BigInt(data.size), sha256 });
    if (target.method === "MULTIPART") {
      obj.parts = await uploadMultipart(target, data, what, deps, policy, hooks, (n) => progress("uploading", base + n, `Uploading the ${what}`));
    } else if (target.method === "POST") {
      await withRetry(
        `POST ${what}`,
        () => postForm(target, data, what, deps, (n) => progress("uploading", base + n, `Uploading the ${what}`)),
        policy,
        hooks,
      );
    } else {
      throw new UploadError(`The ingest service asked for an upload method this game does not know: ${JSON.stringify(target.method)}`, false);
    }
    sentBefore += data.size;
    done.set(target.key, obj);
    cp.done.push(toBinary(UploadedObjectSchema, obj));
    await deps.onCheckpoint?.(cp);
    progress("uploading", sentBefore, `Uploaded the ${what}`);
  }

  progress("completing", sentBefore, "Completing the session");
  const objects = start.targets.map((t) => done.get(t.key)).filter((o): o is UploadedObject => o !== undefined);
  const completed = await withRetry(
    "CompleteSession",
    () => deps.ingest.completeSession(create(CompleteSessionRequestSchema, { sessionId: cp.sessionId, objects })),
    policy,
    hooks,
  );
  progress("done", totalBytes, "Uploaded");
  return { sessionId: cp.sessionId, session: completed.session };
}

async function postForm(target: UploadTarget, data: Blob, what: string, deps: UploadDeps, onProgress: (n: number) => void): Promise<void> {
  const form = new FormData();
  for (const [k, v] of Object.entries(target.formFields)) form.append(k, v);
  const type = target.headers["Content-Type"] ?? data.type ?? "application/octet-stream";
  // The file goes last: S3 ignores form fields after it.
  form.append("file", data.type === type ? data : new Blob([data], { type }), what === "video" ? "video.webm" : "telemetry.pb");
  const res = await deps.send({ method: "POST", url: target.url, body: form }, onProgress, deps.signal);
  if (res.status < 200 || res.status >= 300) throw await httpError(`${what} upload`, res);
}

async function uploadMultipart(
  target: UploadTarget,
  data: Blob,
  what: string,
  deps: UploadDeps,
  policy: RetryPolicy,
  hooks: RetryHooks,
  onProgress: (n: number) => void,
): Promise<UploadedPart[]> {
  const mp = target.multipart;
  const partSize = mp === undefined ? 0 : Number(mp.partSize);
  if (mp === undefined || !(partSize > 0)) throw new UploadError(`The ${what} multipart target has no part size`, false);
  const count = Math.max(1, Math.ceil(data.size / partSize));
  if (count > mp.partUrls.length) {
    throw new UploadError(
      `The ${what} is ${data.size} bytes, ${count} parts of ${partSize}, but the ingest service gave only ${mp.partUrls.length} part URLs`,
      false,
    );
  }
  const parts: UploadedPart[] = [];
  for (let i = 0; i < count; i++) {
    const chunk = data.slice(i * partSize, Math.min(data.size, (i + 1) * partSize));
    const etag = await withRetry(
      `PUT ${what} part ${i + 1}`,
      async () => {
        const res = await deps.send({ method: "PUT", url: mp.partUrls[i]!, body: chunk }, (n) => onProgress(i * partSize + n), deps.signal);
        if (res.status < 200 || res.status >= 300) throw await httpError(`${what} part ${i + 1}`, res);
        const tag = res.header("ETag");
        if (tag === null || tag.trim() === "") {
          throw new UploadError(
            `The object store did not expose the ETag of ${what} part ${i + 1} (the bucket's CORS rule must list ETag in ExposeHeaders)`,
            false,
          );
        }
        return tag.trim();
      },
      policy,
      hooks,
    );
    parts.push(create(UploadedPartSchema, { partNumber: i + 1, etag }));
    onProgress(Math.min(data.size, (i + 1) * partSize));
  }
  return parts;
}
