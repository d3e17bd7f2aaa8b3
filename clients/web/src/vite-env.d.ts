/// <reference types="vite/client" />

import type { RuntimeConfig } from "./config";
import type { GameHook } from "./game/hook";

declare global {
  interface ImportMetaEnv {
    readonly VITE_INGEST_URL?: string;
    readonly VITE_DIFFUSION_URL?: string;
    readonly VITE_TRAINER_URL?: string;
  }

  interface Window {
    /** Injected by the local stack (see index.html); any field may be missing. */
    __SD_CONFIG__?: RuntimeConfig;
    /** Test hook for end-to-end tests: { state(), finish(), start() } (see src/game/hook.ts). */
    __SD_GAME__?: GameHook;
  }
}
