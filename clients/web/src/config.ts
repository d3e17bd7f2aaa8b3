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
export type RuntimeConfig = Partial<EndpointConfig> & Partial<Record<keyof GameConfig, unknown>>;

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

// ---- game settings ---------------------------------------------------------------------------------------------
//
// Resolution order, per setting (first valid value wins):
//   1. URL query parameter (?session=10&w=640&h=360&fps=20&fov=70&diffusion=off&world=nyc-sample&sim=60&rec=auto)
//   2. window.__SD_CONFIG__ = { sessionSeconds, recordWidth, recordHeight, recordFps, fovDeg, diffusion, worldId, simHz }
//   3. DEFAULT_GAME_CONFIG
// A malformed value is a ConfigError naming the setting and where it came from (never silently ignored).

export interface GameConfig {
  /** Session length; the game finishes and uploads when the timer runs out. */
  sessionSeconds: number;
  /** Size and frame rate of the recorded video (and of the render). */
  recordWidth: number;
  recordHeight: number;
  recordFps: number;
  /** Vertical field of view of the camera, degrees. */
  fovDeg: number;
  /** Physics and telemetry ticks per second. */
  simHz: number;
  /** Whether diffusion starts switched on. */
  diffusion: boolean;
  /** World to drive in; "" = the server's default. */
  worldId: string;
  /** How to record: "auto" = frame by frame with WebCodecs where the browser has a VP8 encoder, else MediaRecorder. */
  recorder: RecorderMode;
  /** Test aid: stamp each picture with the time of the game state it shows (game/stamp.ts). Never for players. */
  stamp: boolean;
}

export const RECORDER_MODES = ["auto", "webcodecs", "mediarecorder"] as const;
export type RecorderMode = (typeof RECORDER_MODES)[number];

export const DEFAULT_GAME_CONFIG: Readonly<GameConfig> = Object.freeze({
  sessionSeconds: 60,
  recordWidth: 1280,
  recordHeight: 720,
  recordFps: 30,
  fovDeg: 60,
  simHz: 60,
  diffusion: true,
  worldId: "",
  recorder: "auto",
  stamp: false,
});

/** URL query parameter for each setting. */
export const QUERY_PARAMS: Readonly<Record<keyof GameConfig, string>> = Object.freeze({
  sessionSeconds: "session",
  recordWidth: "w",
  recordHeight: "h",
  recordFps: "fps",
  fovDeg: "fov",
  simHz: "sim",
  diffusion: "diffusion",
  worldId: "world",
  recorder: "rec",
  stamp: "stamp",
});

type NumberKey = "sessionSeconds" | "recordWidth" | "recordHeight" | "recordFps" | "fovDeg" | "simHz";

const NUMBER_RULES: Readonly<Record<NumberKey, { min: number; max: number; integer: boolean; unit: string }>> = {
  sessionSeconds: { min: 2, max: 300, integer: false, unit: "seconds" },
  recordWidth: { min: 16, max: 4096, integer: true, unit: "pixels" },
  recordHeight: { min: 16, max: 4096, integer: true, unit: "pixels" },
  recordFps: { min: 1, max: 60, integer: false, unit: "frames per second" },
  fovDeg: { min: 20, max: 120, integer: false, unit: "degrees" },
  simHz: { min: 30, max: 240, integer: true, unit: "ticks per second" },
};

export interface GameConfigSources {
  /** window.__SD_CONFIG__ (validated here). */
  runtime?: unknown;
  /** location.search or a URLSearchParams. */
  query?: string | URLSearchParams;
}

function parseNumber(key: NumberKey, raw: unknown, source: string): number {
  const rule = NUMBER_RULES[key];
  const n = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw.trim()) : NaN;
  if (!Number.isFinite(n)) {
    throw new ConfigError(`Invalid ${key} (from ${source}): ${JSON.stringify(raw)} is not a number`);
  }
  if (rule.integer && !Number.isInteger(n)) {
    throw new ConfigError(`Invalid ${key} (from ${source}): ${n} must be a whole number of ${rule.unit}`);
  }
  if (n < rule.min || n > rule.max) {
    throw new ConfigError(`Invalid ${key} (from ${source}): ${n} is outside ${rule.min}-${rule.max} ${rule.unit}`);
  }
  return n;
}

function parseBool(key: string, raw: unknown, source: string): boolean {
  if (typeof raw === "boolean") return raw;
  const v = typeof raw === "string" ? raw.trim().toLowerCase() : raw;
  if (v === "1" || v === "true" || v === "on" || v === "yes" || v === 1) return true;
  if (v === "0" || v === "false" || v === "off" || v === "no" || v === 0) return false;
  throw new ConfigError(`Invalid ${key} (from ${source}): ${JSON.stringify(raw)} is not on/off`);
}

function parseWorldId(raw: unknown, source: string): string {
  if (typeof raw !== "string" || !/^[A-Za-z0-9._-]{0,64}$/.test(raw.trim())) {
    throw new ConfigError(`Invalid worldId (from ${source}): ${JSON.stringify(raw)} is not a world id (letters, digits, . _ -)`);
  }
  return raw.trim();
}

function parseRecorder(raw: unknown, source: string): RecorderMode {
  const v = typeof raw === "string" ? raw.trim().toLowerCase() : raw;
  if (!(RECORDER_MODES as readonly unknown[]).includes(v)) {
    throw new ConfigError(`Invalid recorder (from ${source}): ${JSON.stringify(raw)} is not one of ${RECORDER_MODES.join(", ")}`);
  }
  return v as RecorderMode;
}

/** Resolves the game settings: URL query, then window.__SD_CONFIG__, then the defaults. */
export function resolveGameConfig(sources: GameConfigSources = {}): GameConfig {
  const runtime = checkRuntime(sources.runtime);
  const query = typeof sources.query === "string" || sources.query === undefined ? new URLSearchParams(sources.query ?? "") : sources.query;
  const out = { ...DEFAULT_GAME_CONFIG };
  for (const key of Object.keys(DEFAULT_GAME_CONFIG) as (keyof GameConfig)[]) {
    const param = QUERY_PARAMS[key];
    const fromQuery = query.get(param);
    let raw: unknown;
    let source: string;
    if (fromQuery !== null && fromQuery.trim() !== "") {
      raw = fromQuery;
      source = `?${param}=`;
    } else if (runtime[key] !== undefined && runtime[key] !== null && runtime[key] !== "") {
      raw = runtime[key];
      source = `window.__SD_CONFIG__.${key}`;
    } else {
      continue;
    }
    if (key === "diffusion" || key === "stamp") out[key] = parseBool(key, raw, source);
    else if (key === "worldId") out.worldId = parseWorldId(raw, source);
    else if (key === "recorder") out.recorder = parseRecorder(raw, source);
    else out[key] = parseNumber(key, raw, source);
  }
  return out;
}

/** With diffusion on, the widest the display (and so the recording) is drawn. The frames repainted for the player
 * are at most 512 wide (what the game asks the service for) and the raw view between them is a stopgap, so more
 * pixels only cost the machine: on a 2-core machine without a GPU each repainted frame shown at 1280x720 cost the
 * browser ~400 ms of CPU (its read-back and VP8 encode for the recording, software swaps; Chrome tracing) and the
 * player saw 3.3-3.8 repainted frames/s, at 640x360 4.8-5.0 /s of the same frames. */
export const DIFFUSION_DISPLAY_MAX_WIDTH = 640;

/** The display's and the recording's size: the configured one, or with diffusion on at most
 * DIFFUSION_DISPLAY_MAX_WIDTH wide, aspect kept, sides even (VP8). */
export function displaySize(config: Pick<GameConfig, "recordWidth" | "recordHeight">, diffusionOn: boolean): { width: number; height: number } {
  const { recordWidth: width, recordHeight: height } = config;
  if (!diffusionOn || width <= DIFFUSION_DISPLAY_MAX_WIDTH) return { width, height };
  const even = (v: number) => Math.max(2, Math.round(v / 2) * 2);
  return { width: even(DIFFUSION_DISPLAY_MAX_WIDTH), height: even((height * DIFFUSION_DISPLAY_MAX_WIDTH) / width) };
}
