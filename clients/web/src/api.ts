// gRPC-Web clients for the Scale Diffusion services.
//
// Browsers speak gRPC-Web (unary and server-streaming only); each service's base URL comes from
// the endpoint config (see config.ts for the precedence rules).

import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { resolveConfig, resolveGameConfig, type EndpointConfig, type GameConfig } from "./config";
import { DiffusionService } from "./gen/scalediffusion/v1/diffusion_pb";
import { IngestService } from "./gen/scalediffusion/v1/ingest_pb";
import { TrainerService } from "./gen/scalediffusion/v1/trainer_pb";
import { WorldService } from "./gen/scalediffusion/v1/world_pb";

export type IngestClient = Client<typeof IngestService>;
export type DiffusionClient = Client<typeof DiffusionService>;
export type TrainerClient = Client<typeof TrainerService>;
export type WorldClient = Client<typeof WorldService>;

export interface Api {
  config: EndpointConfig;
  ingest: IngestClient;
  diffusion: DiffusionClient;
  trainer: TrainerClient;
  /** WorldService, served by the ingest service's gRPC-Web endpoint. */
  world: WorldClient;
}

/** Reads the endpoint config from import.meta.env (when built by Vite) and window.__SD_CONFIG__. */
export function loadConfig(): EndpointConfig {
  // import.meta.env only exists when the module went through Vite (dev server, build, vitest);
  // under plain Node/tsx it is undefined. Keep the literal `import.meta.env` so Vite replaces it.
  const env: Readonly<Record<string, unknown>> | undefined = import.meta.env;
  const runtime = typeof window === "undefined" ? undefined : window.__SD_CONFIG__;
  return resolveConfig({ env, runtime });
}

/** Reads the game settings from the URL query and window.__SD_CONFIG__ (see config.ts). */
export function loadGameConfig(): GameConfig {
  if (typeof window === "undefined") return resolveGameConfig();
  return resolveGameConfig({ runtime: window.__SD_CONFIG__, query: window.location?.search ?? "" });
}

export interface ApiOptions {
  /** Override fetch (tests, Node). Defaults to the global fetch. */
  fetch?: typeof globalThis.fetch;
  /** Default per-call deadline in milliseconds. */
  defaultTimeoutMs?: number;
  /** The player's token, read at every call; sent as `authorization: Bearer <token>` when non-empty. */
  token?: () => string | null | undefined;
}

/** Adds `authorization: Bearer <token>` to every call when a token is set. */
export function bearerAuth(token: () => string | null | undefined): Interceptor {
  return (next) => async (req) => {
    const t = token()?.trim();
    if (t) req.header.set("authorization", `Bearer ${t}`);
    return next(req);
  };
}

export function createTransport(baseUrl: string, options: ApiOptions = {}): Transport {
  return createGrpcWebTransport({
    baseUrl,
    // Binary protobuf framing (the gRPC-Web default; not every server accepts JSON).
    useBinaryFormat: true,
    fetch: options.fetch,
    defaultTimeoutMs: options.defaultTimeoutMs,
    interceptors: options.token ? [bearerAuth(options.token)] : [],
  });
}

/** Creates one client per service. Creating clients makes no network calls. */
export function createApi(config: EndpointConfig = loadConfig(), options: ApiOptions = {}): Api {
  const ingestTransport = createTransport(config.ingestUrl, options);
  return {
    config,
    ingest: createClient(IngestService, ingestTransport),
    diffusion: createClient(DiffusionService, createTransport(config.diffusionUrl, options)),
    trainer: createClient(TrainerService, createTransport(config.trainerUrl, options)),
    world: createClient(WorldService, ingestTransport),
  };
}
