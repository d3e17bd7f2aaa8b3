// Wires the upload flow (record/upload.ts) to the real clients: the ingest service over gRPC-Web and the object
// store over XMLHttpRequest (for upload progress) or fetch.

import type { Api } from "../api";
import type { Uploader } from "../record/pending";
import { fetchSender, isRetryable, uploadSession, xhrSender, type UploadProgress } from "../record/upload";
import { describeError } from "./errors";

export interface UploaderHooks {
  onProgress?: (p: UploadProgress) => void;
  /** A retry is about to wait; the message says what failed, in words. */
  onRetry?: (message: string) => void;
}

export function makeUploader(api: Api, hooks: UploaderHooks = {}): Uploader {
  const send = typeof XMLHttpRequest === "undefined" ? fetchSender() : xhrSender();
  return (payload, checkpoint, onCheckpoint) =>
    uploadSession(
      payload,
      {
        ingest: api.ingest,
        send,
        onProgress: hooks.onProgress,
        onCheckpoint,
        onRetry: ({ what, attempt, delayMs, error }) =>
          hooks.onRetry?.(`${describeError(error, what)} Trying again in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1}).`),
      },
      checkpoint,
    );
}

export { isRetryable };
