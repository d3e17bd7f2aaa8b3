// Errors in words for the player: what failed, why, and what to do.

import { Code, ConnectError } from "@connectrpc/connect";
import { RejectionReason, type Rejection } from "../gen/scalediffusion/v1/processor_pb";

/** UPPER_SNAKE name of a Connect/gRPC code, e.g. Code.InvalidArgument -> "INVALID_ARGUMENT". */
export function codeName(code: Code): string {
  const name = Code[code] ?? String(code);
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function looksLikeNetwork(msg: string): boolean {
  return /failed to fetch|fetch failed|networkerror|network error|load failed|ECONNREFUSED/i.test(msg);
}

/**
 * One or two sentences for the player. `what` names the action ("Signing in", "Loading the city"); `where` the
 * service URL when known.
 */
export function describeError(err: unknown, what: string, where?: string): string {
  const at = where ? ` at ${where}` : "";
  if (err instanceof ConnectError) {
    const name = codeName(err.code);
    const msg = err.rawMessage || "no details";
    switch (err.code) {
      case Code.Unauthenticated:
        return `${what} failed: the service did not accept your token (${name}: ${msg}). Sign in again with a valid token.`;
      case Code.PermissionDenied:
        return `${what} failed: your token is not allowed to do this (${name}: ${msg}).`;
      case Code.Unavailable:
        return `${what} failed: cannot reach the service${at} (${name}: ${msg}). Check that it is running and try again.`;
      case Code.InvalidArgument:
      case Code.FailedPrecondition:
        return `${what} was refused: ${msg} (${name}).`;
      case Code.ResourceExhausted:
        return `${what} was refused for now: ${msg} (${name}). Wait a little and try again.`;
      case Code.NotFound:
        return `${what} failed: not found (${msg}).`;
      case Code.Unimplemented:
        return `${what} failed: the service${at} does not offer this (${name}).`;
      case Code.DeadlineExceeded:
        return `${what} timed out${at} (${name}). Try again.`;
      default:
        if (looksLikeNetwork(msg)) return `${what} failed: cannot reach the service${at} (${msg}). Check that it is running and try again.`;
        return `${what} failed (${name}: ${msg}).`;
    }
  }
  if (err instanceof Error) {
    if (looksLikeNetwork(err.message)) return `${what} failed: cannot reach the service${at} (${err.message}).`;
    return `${what} failed: ${err.message}`;
  }
  return `${what} failed: ${String(err)}`;
}

/** A session's rejection in words: the reason (BLUR, DUPLICATE, ...), then what was measured or said. */
export function describeRejection(r: Rejection): string {
  const reason = (RejectionReason[r.reason] ?? String(r.reason)).replace(/_/g, " ").toLowerCase();
  const measured = r.threshold ? `${r.metric} ${fmt(r.value)} (limit ${fmt(r.threshold)})` : r.metric;
  return r.detail ? `${reason}: ${r.detail}` : measured ? `${reason}: ${measured}` : reason;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
