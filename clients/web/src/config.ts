// Endpoint configuration for the web client.
//
// Resolution order, per endpoint (first non-empty value wins):
//   1. build-time Vite env: VITE_INGEST_URL / VITE_DIFFUSION_URL / VITE_TRAINER_URL
//   2. runtime page config: window.__SD_CONFIG__ = { ingestUrl, diffusionUrl, trainerUrl }
//      (the local stack injects it into index.html)
//   3. defaults: http://127.0.0.1:8080 (ingest), :8081 (diffusion), :8083 (trainer)
//
// resolveConfig() is pure: it takes its sources as arguments so it can be unit-tested and used
// outside the browser. loadConfig() in api.ts feeds it import.meta.env and window.

export interface EndpointConfig {
  /** Base URL of IngestService (gRPC-Web). */
  ingestUrl: string;
  /** Base URL of DiffusionService (gRPC-Web). */
  diffusionUrl: string;
  /** Base URL of TrainerService (gRPC-Web). */
  trainerUrl: string;
}

export type EndpointKey = keyof EndpointConfig;

/** The shape of window.__SD_CONFIG__; every field is optional. */
export type RuntimeConfig = Partial<EndpointConfig>;

export const DEFAULT_CONFIG: Readonly<EndpointConfig> = Object.freeze({
  ingestUrl: "http://127.0.0.1:8080",
  diffusionUrl: "http://127.0.0.1:8081",
  trainerUrl: "http://127.0.0.1:8083",
});

/** The Vite env variable that sets each endpoint. */
export const ENV_VARS: Readonly<Record<EndpointKey, string>> = Object.freeze({
  ingestUrl: "VITE_INGEST_URL",
  diffusionUrl: "VITE_DIFFUSION_URL",
  trainerUrl: "VITE_TRAINER_URL",
});

const KEYS: readonly EndpointKey[] = ["ingestUrl", "diffusionUrl", "trainerUrl"];

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export interface ConfigSources {
  /** import.meta.env (or any string map); only the VITE_*_URL keys are read. */
  env?: Readonly<Record<string, unknown>> | undefined;
  /** window.__SD_CONFIG__ as found on the page (validated here, so `unknown`). */
  runtime?: unknown;
}

/**
 * Validates one base URL and returns it normalised (no trailing slash).
 * Throws ConfigError naming the setting and where it came from.
 */
export function parseBaseUrl(value: string, key: EndpointKey, source: string): string {
  const where = `${key} (from ${source})`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(
      `Invalid ${where}: ${JSON.stringify(value)} is not an absolute URL; ` +
        `expected something like ${DEFAULT_CONFIG[key]}`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(
      `Invalid ${where}: ${JSON.stringify(value)} must use http: or https:, not ${url.protocol}`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new ConfigError(`Invalid ${where}: ${JSON.stringify(value)} must not contain credentials`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw new ConfigError(
      `Invalid ${where}: ${JSON.stringify(value)} must not have a query string or fragment`,
    );
  }
  // url.href always has at least "/" as path; drop trailing slashes so "<base>/<service>/<method>"
  // joins cleanly.
  return url.href.replace(/\/+$/, "");
}

function checkRuntime(runtime: unknown): Record<string, unknown> {
  if (runtime === undefined || runtime === null) {
    return {};
  }
  if (typeof runtime !== "object" || Array.isArray(runtime)) {
    throw new ConfigError(
      `Invalid window.__SD_CONFIG__: expected an object like ` +
        `{ingestUrl, diffusionUrl, trainerUrl}, got ${Array.isArray(runtime) ? "an array" : typeof runtime}`,
    );
  }
  return runtime as Record<string, unknown>;
}

function pick(
  map: Readonly<Record<string, unknown>>,
  name: string,
  source: string,
  key: EndpointKey,
): string | undefined {
  const value = map[name];
  if (value === undefined || value === null || value === "") {
    return undefined;
  }
  if (typeof value !== "string") {
    throw new ConfigError(`Invalid ${key} (from ${source}): expected a string, got ${typeof value}`);
  }
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

/** Resolves every endpoint: Vite env, then window.__SD_CONFIG__, then the defaults. */
export function resolveConfig(sources: ConfigSources = {}): EndpointConfig {
  const env = sources.env ?? {};
  const runtime = checkRuntime(sources.runtime);
  const out = {} as EndpointConfig;
  for (const key of KEYS) {
    const envName = ENV_VARS[key];
    const fromEnv = pick(env, envName, envName, key);
    if (fromEnv !== undefined) {
      out[key] = parseBaseUrl(fromEnv, key, envName);
      continue;
    }
    const fromRuntime = pick(runtime, key, `window.__SD_CONFIG__.${key}`, key);
    if (fromRuntime !== undefined) {
      out[key] = parseBaseUrl(fromRuntime, key, `window.__SD_CONFIG__.${key}`);
      continue;
    }
    out[key] = DEFAULT_CONFIG[key];
  }
  return out;
}
