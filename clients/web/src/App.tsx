import { useMemo } from "react";
import { loadConfig } from "./api";
import type { EndpointConfig } from "./config";

type ConfigState = { ok: true; config: EndpointConfig } | { ok: false; error: string };

function readConfig(): ConfigState {
  try {
    return { ok: true, config: loadConfig() };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const ENDPOINTS: ReadonlyArray<{ key: keyof EndpointConfig; label: string }> = [
  { key: "ingestUrl", label: "Ingest" },
  { key: "diffusionUrl", label: "Diffusion" },
  { key: "trainerUrl", label: "Trainer" },
];

export function App() {
  // Resolving the config is cheap and makes no network calls.
  const state = useMemo(readConfig, []);

  return (
    <main className="app">
      <h1>Scale Diffusion</h1>

      <section className="panel" aria-labelledby="status-title">
        <h2 id="status-title">Status</h2>
        {state.ok ? (
          <dl className="endpoints" data-testid="endpoints">
            {ENDPOINTS.map(({ key, label }) => (
              <div key={key}>
                <dt>{label}</dt>
                <dd>
                  <code data-testid={`endpoint-${key}`}>{state.config[key]}</code>
                </dd>
              </div>
            ))}
          </dl>
        ) : (
          <p className="error" role="alert" data-testid="config-error">
            {state.error}
          </p>
        )}
      </section>

      <section className="panel game" aria-label="Game">
        <p data-testid="game-placeholder">The driving game lands with its own issue</p>
      </section>
    </main>
  );
}
