import { useEffect, useMemo, useState } from "react";
import { createApi, loadConfig, loadGameConfig, type Api } from "./api";
import { DEFAULT_GAME_CONFIG, type EndpointConfig, type GameConfig } from "./config";
import { installHook, publish } from "./game/hook";
import { MemoryPendingStore, openPendingStore, type PendingStore } from "./record/pending";
import { Account } from "./ui/Account";
import { ErrorBoundary } from "./ui/ErrorBoundary";
import { GameView } from "./ui/GameView";
import { PendingUploads } from "./ui/PendingUploads";
import { Rewards } from "./ui/Rewards";
import { SignIn } from "./ui/SignIn";
import { readToken, writeToken } from "./ui/token";

type Loaded<T> = { ok: true; value: T } | { ok: false; error: string };

function attempt<T>(fn: () => T): Loaded<T> {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

const ENDPOINTS: ReadonlyArray<{ key: keyof EndpointConfig; label: string }> = [
  { key: "ingestUrl", label: "Ingest" },
  { key: "diffusionUrl", label: "Diffusion" },
  { key: "trainerUrl", label: "Trainer" },
];

type Tab = "drive" | "rewards" | "account";

export function App() {
  // Resolving the config is cheap and makes no network calls.
  const endpoints = useMemo(() => attempt(loadConfig), []);
  const game = useMemo(() => attempt(loadGameConfig), []);
  const [token, setToken] = useState<string | null>(() => readToken());
  const [tab, setTab] = useState<Tab>("drive");
  const [store, setStore] = useState<PendingStore | null>(null);
  const [activeRecording, setActiveRecording] = useState<string | null>(null);
  const [pageError, setPageError] = useState<string | null>(null);

  // The clients read the token at every call, so signing in or out needs no new clients.
  const api: Api | null = useMemo(() => (endpoints.ok ? createApi(endpoints.value, { token: () => readToken() }) : null), [endpoints]);
  const gameConfig: GameConfig = game.ok ? game.value : DEFAULT_GAME_CONFIG;

  useEffect(() => {
    installHook(window);
    publish({ phase: token === null ? "signin" : "loading" });
    let cancelled = false;
    openPendingStore()
      .then((s) => !cancelled && setStore(s))
      .catch(() => !cancelled && setStore(new MemoryPendingStore()));
    const onError = (e: ErrorEvent) => setPageError(`Something went wrong: ${e.message}`);
    const onRejection = (e: PromiseRejectionEvent) =>
      setPageError(`Something went wrong: ${e.reason instanceof Error ? e.reason.message : String(e.reason)}`);
    window.addEventListener("error", onError);
    window.addEventListener("unhandledrejection", onRejection);
    return () => {
      cancelled = true;
      window.removeEventListener("error", onError);
      window.removeEventListener("unhandledrejection", onRejection);
    };
  }, []);

  const signIn = (t: string) => {
    writeToken(t);
    setToken(t);
    setTab("drive");
  };
  const signOut = () => {
    writeToken(null);
    setToken(null);
    publish({ phase: "signin" });
  };

  return (
    <main className="app">
      <header className="topbar">
        <h1>Scale Diffusion</h1>
        {token !== null && (
          <nav aria-label="Sections">
            {(["drive", "rewards", "account"] as const).map((t) => (
              <button key={t} type="button" className={tab === t ? "tab active" : "tab"} aria-current={tab === t} onClick={() => setTab(t)} data-testid={`tab-${t}`}>
                {t === "drive" ? "Drive" : t === "rewards" ? "Rewards" : "Account"}
              </button>
            ))}
          </nav>
        )}
      </header>

      {!game.ok && (
        <p className="error" role="alert" data-testid="game-config-error">
          {game.error} (using the default game settings)
        </p>
      )}
      {pageError !== null && (
        <p className="warning" role="status">
          {pageError}{" "}
          <button type="button" onClick={() => setPageError(null)}>
            Dismiss
          </button>
        </p>
      )}

      {api !== null && token === null && (
        <ErrorBoundary what="Sign-in">
          <SignIn api={api} onSignedIn={signIn} />
        </ErrorBoundary>
      )}
      {api !== null && token !== null && store !== null && (
        <>
          <div hidden={tab !== "drive"}>
            <ErrorBoundary what="The game">
              <GameView api={api} config={gameConfig} store={store} onActiveRecording={setActiveRecording} />
            </ErrorBoundary>
          </div>
          {tab === "rewards" && (
            <ErrorBoundary what="Rewards">
              <Rewards api={api} />
            </ErrorBoundary>
          )}
          {tab === "account" && (
            <ErrorBoundary what="Account">
              <Account api={api} onSignOut={signOut} />
            </ErrorBoundary>
          )}
          <ErrorBoundary what="Saved recordings">
            <PendingUploads api={api} store={store} activeId={activeRecording} onCount={(n) => publish({ pending: n })} />
          </ErrorBoundary>
        </>
      )}

      <section className="panel" aria-labelledby="status-title">
        <h2 id="status-title">Status</h2>
        {endpoints.ok ? (
          <dl className="endpoints" data-testid="endpoints">
            {ENDPOINTS.map(({ key, label }) => (
              <div key={key}>
                <dt>{label}</dt>
                <dd>
                  <code data-testid={`endpoint-${key}`}>{endpoints.value[key]}</code>
                </dd>
              </div>
            ))}
            <div>
              <dt>Session</dt>
              <dd data-testid="game-settings">
                {gameConfig.sessionSeconds} s · {gameConfig.recordWidth}×{gameConfig.recordHeight} @ {gameConfig.recordFps} fps · fov{" "}
                {gameConfig.fovDeg}° · diffusion {gameConfig.diffusion ? "on" : "off"}
              </dd>
            </div>
          </dl>
        ) : (
          <p className="error" role="alert" data-testid="config-error">
            {endpoints.error}
          </p>
        )}
      </section>
    </main>
  );
}
