import { renderToStaticMarkup } from "react-dom/server";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";

describe("App", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.unstubAllGlobals();
  });

  it("shows the title, the configured endpoints and the game placeholder", () => {
    vi.stubEnv("VITE_INGEST_URL", "");
    vi.stubEnv("VITE_DIFFUSION_URL", "");
    vi.stubEnv("VITE_TRAINER_URL", "");
    vi.stubGlobal("window", { __SD_CONFIG__: { trainerUrl: "http://trainer.local:9083/" } });
    const html = renderToStaticMarkup(<App />);
    expect(html).toContain("<h1>Scale Diffusion</h1>");
    expect(html).toContain("http://127.0.0.1:8080");
    expect(html).toContain("http://127.0.0.1:8081");
    expect(html).toContain("http://trainer.local:9083");
    expect(html).toContain("The driving game lands with its own issue");
  });

  it("shows a config error instead of crashing", () => {
    vi.stubEnv("VITE_INGEST_URL", "nonsense");
    const html = renderToStaticMarkup(<App />);
    expect(html).toContain('role="alert"');
    expect(html).toContain("Invalid ingestUrl (from VITE_INGEST_URL)");
    expect(html).toContain("The driving game lands with its own issue");
  });
});
