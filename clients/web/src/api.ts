// gRPC-Web clients for the Scale Diffusion services.
//
// Browsers speak gRPC-Web (unary and server-streaming only); each service's base URL comes from
// the endpoint config (see config.ts for the precedence rules).

import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { resolveConfig, type EndpointConfig } from "./config";
import { DiffusionService } from "./gen/scalediffusion/v1/diffusion_pb";
import { IngestService } from "./gen/scalediffusion/v1/ingest_pb";
import { TrainerService } from "./gen/scalediffusion/v1/trainer_pb";

export type IngestClient = Client<typeof IngestService>;
export type DiffusionClient = Client<typeof DiffusionService>;
export type TrainerClient = Client<typeof TrainerService>;

export interface Api {
  config: EndpointConfig;
  ingest: IngestClient;
  diffusion: DiffusionClient;
  trainer: TrainerClient;
}

/** Reads the endpoint config from import.meta.env (when built by Vite) and window.__SD_CONFIG__. */
export function loadConfig(): EndpointConfig {
  // import.meta.env only exists when the module went through Vite (dev server, build, vitest);
  // under plain Node/tsx it is undefined. Keep the literal `import.meta.env` so Vite replaces it.
  const env: Readonly<Record<string, unknown>> | undefined = import.meta.env;
  const runtime = typeof window === "undefined" ? undefined : window.__SD_CONFIG__;
  return resolveConfig({ env, runtime });
}

export interface ApiOptions {
  /** Override fetch (tests, Node). Defaults to the global fetch. */
  fetch?: typeof globalThis.fetch;
  /** Default per-call deadline in milliseconds. */
  defaultTimeoutMs?: number;
}

export function createTransport(baseUrl: string, options: ApiOptions = {}): Transport {
  return createGrpcWebTransport({
    baseUrl,
    // Binary protobuf framing (the gRPC-Web default; not every server accepts JSON).
    useBinaryFormat: true,
    fetch: options.fetch,
    defaultTimeoutMs: options.defaultTimeoutMs,
  });
}

/** Creates one client per service. Creating clients makes no network calls. */
export function createApi(config: EndpointConfig = loadConfig(), options: ApiOptions = {}): Api {
  return {
    config,
    ingest: createClient(IngestService, createTransport(config.ingestUrl, options)),
    diffusion: createClient(DiffusionService, createTransport(config.diffusionUrl, options)),
    trainer: createClient(TrainerService, createTransport(config.trainerUrl, options)),
  };
}
