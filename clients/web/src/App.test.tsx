import { renderToStaticMarkup } from "react-dom/server";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";

describe("App", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.unstubAllGlobals();
  });

  it("shows the title, the sign-in form and the configured endpoints when signed out", () => {
    vi.stubEnv("VITE_INGEST_URL", "");
    vi.stubEnv("VITE_DIFFUSION_URL", "");
    vi.stubEnv("VITE_TRAINER_URL", "");
    vi.stubGlobal("window", { __SD_CONFIG__: { trainerUrl: "http://trainer.local:9083/", sessionSeconds: 10 }, location: { search: "?w=640&h=360" } });
    const html = renderToStaticMarkup(<App />);
    expect(html).toContain("<h1>Scale Diffusion</h1>");
    expect(html).toContain("http://127.0.0.1:8080");
    expect(html).toContain("http://127.0.0.1:8081");
    expect(html).toContain("http://trainer.local:9083");
    expect(html).toContain('data-testid="token-input"');
    expect(html).toContain("Paste your player token");
    expect(html).toContain("10 s · 640×360 @ 30 fps");
  });

  it("shows a config error instead of crashing", () => {
    vi.stubEnv("VITE_INGEST_URL", "nonsense");
    const html = renderToStaticMarkup(<App />);
    expect(html).toContain('role="alert"');
    expect(html).toContain("Invalid ingestUrl (from VITE_INGEST_URL)");
  });

  it("shows a bad game setting in words and falls back to the defaults", () => {
    vi.stubGlobal("window", { location: { search: "?session=abc" } });
    const html = renderToStaticMarkup(<App />);
    expect(html).toContain("Invalid sessionSeconds (from ?session=): &quot;abc&quot; is not a number");
    expect(html).toContain("60 s · 1280×720 @ 30 fps");
  });

  it("renders the game panel when a token is stored", () => {
    vi.stubGlobal("localStorage", { getItem: () => "sdt-test-token-123", setItem: () => undefined, removeItem: () => undefined });
    const html = renderToStaticMarkup(<App />);
    // The pending-session store opens asynchronously (an effect), so the server render shows the navigation only.
    expect(html).toContain('data-testid="tab-drive"');
    expect(html).not.toContain('data-testid="token-input"');
  });
});
