import { useCallback, useEffect, useRef, useState } from "react";
import { flushSync } from "react-dom";
import type { Api } from "../api";
import type { GameConfig } from "../config";
import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import { SessionState } from "../gen/scalediffusion/v1/ingest_pb";
import type { World } from "../gen/scalediffusion/v1/world_pb";
import { publish, setActions, type GamePhase } from "../game/hook";
import type { GameRuntime, HudState } from "../game/runtime";
import { newPendingId, uploadPending, type PendingStore } from "../record/pending";
import type { UploadProgress } from "../record/upload";
import { gridWorld } from "../world/gridWorld";
import { describeError, describeRejection } from "./errors";
import { Hud } from "./Hud";
import { hudRedrawDue, type HudDraw } from "./hudPacing";
import { isRetryable, makeUploader } from "./uploads";

interface Props {
  api: Api;
  config: GameConfig;
  store: PendingStore;
  /** The local id of the recording this view is uploading (so the saved-recordings list can skip it). */
  onActiveRecording?: (id: string | null) => void;
}

interface Result {
  sessionId: string;
  state: string;
  reasons: string[];
}

export function sessionStateName(s: SessionState | undefined): string {
  return s === undefined ? "UNKNOWN" : (SessionState[s] ?? String(s));
}

const FINAL_STATES = new Set([SessionState.ACCEPTED, SessionState.REJECTED, SessionState.EXPIRED]);

/** Loads the city, runs the game, records, uploads and shows the result. */
export function GameView({ api, config, store, onActiveRecording }: Props) {
  const [phase, setPhaseState] = useState<GamePhase>("loading");
  const phaseRef = useRef<GamePhase>("loading");
  const [world, setWorld] = useState<World | null>(null);
  const [offline, setOffline] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [hud, setHud] = useState<HudState | null>(null);
  const [progress, setProgress] = useState<UploadProgress | null>(null);
  const [retryNote, setRetryNote] = useState<string | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [pendingId, setPendingId] = useState<string | null>(null);
  const [loadAttempt, setLoadAttempt] = useState(0);
  const [run, setRun] = useState(0);
  const container = useRef<HTMLDivElement>(null);
  const runtime = useRef<GameRuntime | null>(null);

  const setPhase = useCallback((p: GamePhase) => {
    phaseRef.current = p;
    setPhaseState(p);
    publish({ phase: p });
  }, []);

  const fail = useCallback(
    (message: string) => {
      setError(message);
      publish({ error: message });
      setPhase("error");
    },
    [setPhase],
  );

  // 1. The world.
  useEffect(() => {
    if (offline) {
      const w = gridWorld({ worldId: "offline-grid", cols: 5, rows: 5, spacing: 120, roadWidth: 14, sidewalk: 4 });
      setWorld(w);
      publish({ worldId: w.worldId });
      return;
    }
    let cancelled = false;
    setPhase("loading");
    setError(null);
    api.world
      .getWorld({ worldId: config.worldId }, { timeoutMs: 15_000 })
      .then((w) => {
        if (cancelled) return;
        if (w.roads.length === 0) throw new Error(`the world ${JSON.stringify(w.worldId)} has no roads`);
        setWorld(w);
        publish({ worldId: w.worldId });
      })
      .catch((err) => {
        if (!cancelled) fail(describeError(err, "Loading the city", api.config.ingestUrl));
      });
    return () => {
      cancelled = true;
    };
  }, [api, config.worldId, loadAttempt, offline, fail, setPhase]);

  const finish = useCallback(async (): Promise<boolean> => {
    const rt = runtime.current;
    if (rt === null || phaseRef.current !== "driving") return false;
    setPhase("finishing");
    let recording;
    try {
      recording = await rt.finish();
      const h = rt.hud();
      publish({ diffusion: h.diffusion.status, notice: h.diffusion.notice, ticks: recording.ticks, videoBytes: recording.video.size });
    } catch (err) {
      fail(describeError(err, "Stopping the recording"));
      return true;
    }
    if (recording.problems.length > 0) {
      fail(`This drive cannot be uploaded: ${recording.problems.join("; ")}.`);
      return true;
    }
    const id = newPendingId();
    try {
      await store.put({
        id,
        createdAt: Date.now(),
        worldId: recording.worldId,
        video: recording.video,
        telemetry: recording.telemetry,
        state: "recorded",
        attempts: 0,
      });
    } catch (err) {
      // Still try to upload from memory; only a reload would lose it.
      console.warn("could not save the recording locally", err);
    }
    setPendingId(id);
    onActiveRecording?.(id);
    await upload(id, recording);
    return true;
  }, [store, fail, setPhase]);

  const upload = async (id: string, inMemory?: { video: Blob; telemetry: Uint8Array }) => {
    setPhase("uploading");
    setError(null);
    setRetryNote(null);
    publish({ error: null });
    const uploader = makeUploader(api, {
      onProgress: (p) => {
        setProgress(p);
        publish({ upload: { fraction: p.fraction, message: p.message } });
      },
      onRetry: (m) => setRetryNote(m),
    });
    let outcome = await uploadPending(store, id, uploader, isRetryable);
    if (!outcome.ok && inMemory !== undefined && (await store.get(id).catch(() => undefined)) === undefined) {
      // The local store could not keep it (e.g. IndexedDB full): upload straight from memory.
      try {
        outcome = { ok: true, result: await uploader(inMemory, undefined, async () => undefined) };
      } catch (err) {
        outcome = { ok: false, error: describeError(err, "Uploading"), retryable: isRetryable(err) };
      }
    }
    if (!outcome.ok) {
      const sentence = /[.!?)]$/.test(outcome.error) ? outcome.error : `${outcome.error}.`;
      fail(`Uploading failed: ${sentence}${outcome.retryable ? " The recording is saved in this browser; try again." : ""}`);
      return;
    }
    const state = sessionStateName(outcome.result.session?.state);
    setResult({ sessionId: outcome.result.sessionId, state, reasons: (outcome.result.session?.rejections ?? []).map(describeRejection) });
    publish({ sessionId: outcome.result.sessionId, sessionState: state, upload: { fraction: 1, message: "Uploaded" } });
    onActiveRecording?.(null);
    setPendingId(null);
    setPhase("done");
  };

  // 2. The game itself (Three.js is loaded on demand, in its own chunk).
  useEffect(() => {
    if (world === null || container.current === null) return;
    let cancelled = false;
    let rt: GameRuntime | null = null;
    let lastHud: HudDraw = { atMs: -Infinity, phase: null, repaintAtMs: null };
    setHud(null);
    setResult(null);
    setProgress(null);
    publish({ sessionId: null, sessionState: null, upload: null, ticks: 0, videoBytes: 0, error: null });
    import("../game/runtime")
      .then(({ GameRuntime }) => {
        if (cancelled || container.current === null) return;
        rt = new GameRuntime(container.current, {
          world,
          config,
          diffusion: api.diffusion,
          clientInfo: `scale-diffusion-web; ${typeof navigator === "undefined" ? "" : navigator.userAgent}`,
          onHud: (h) => {
            // The HUD is redrawn at most 4 times a second, in the frame of a repainted picture while they arrive
            // (hudPacing.ts: each composited frame costs the CPU the model needs on a machine without a GPU); the hook
            // below stays at the runtime's 10 Hz. flushSync: the change must land in this animation frame, with the
            // repainted picture, not in a frame of its own.
            const wall = performance.now();
            if (hudRedrawDue(wall, lastHud, h.phase, h.lastRepaintAtMs)) {
              lastHud = { atMs: wall, phase: h.phase, repaintAtMs: h.lastRepaintAtMs };
              flushSync(() => setHud(h));
            }
            publish({
              timeLeftS: h.timeLeftS,
              ticks: h.ticks,
              videoBytes: h.videoBytes,
              recorder: h.recorder,
              framesRecorded: h.framesRecorded,
              framesSkipped: h.framesSkipped,
              renderFps: Math.round(h.renderFps * 10) / 10,
              diffusion: h.diffusion.status,
              diffusionFrames: h.diffusion.framesReceived,
              diffusionRttMs: h.diffusion.lastRttMs,
              diffusionSent: h.diffusion.framesSent,
              diffusionDropped: h.diffusion.framesDropped,
              diffusionAdvisedFps: Math.round(h.diffusion.advisedFps * 10) / 10,
              repaintedFps: h.repaintedFps,
              repaintedShown: h.repaintedShown,
              renders: h.renders,
              elapsedS: Math.round(h.elapsedS * 100) / 100,
              diffusionSize: h.diffusion.width > 0 ? `${h.diffusion.width}x${h.diffusion.height}` : null,
              notice: h.diffusion.notice,
              vehicle: h.vehicle,
              nav: { command: RoadOption[h.command] ?? "UNSPECIFIED", nextIntersection: h.nextIntersection, distanceToNextM: h.distanceToNextM },
            });
          },
          onTimeUp: () => void finish(),
        });
        runtime.current = rt;
        setPhase("ready");
      })
      .catch((err) => {
        if (!cancelled) fail(describeError(err, "Starting the 3D view"));
      });
    return () => {
      cancelled = true;
      rt?.dispose();
      if (runtime.current === rt) runtime.current = null;
    };
  }, [world, run]);

  const start = useCallback(async (): Promise<boolean> => {
    const rt = runtime.current;
    if (rt === null || phaseRef.current !== "ready") return false;
    setPhase("starting");
    try {
      await rt.begin();
      setPhase("driving");
      // Keys drive the car: keep Space/Enter from pressing whatever button has focus.
      if (document.activeElement instanceof HTMLElement) document.activeElement.blur();
      container.current?.focus();
      return true;
    } catch (err) {
      fail(describeError(err, "Starting the recording"));
      return false;
    }
  }, [fail, setPhase]);

  useEffect(() => {
    setActions({ start, finish });
  }, [start, finish]);

  // 3. After upload: follow the session until processing decides.
  useEffect(() => {
    if (result === null || phase !== "done") return;
    let stop = false;
    let n = 0;
    const poll = async () => {
      while (!stop && n++ < 36) {
        await new Promise((r) => setTimeout(r, 5000));
        if (stop) return;
        try {
          const s = await api.ingest.getSession({ sessionId: result.sessionId });
          const name = sessionStateName(s.state);
          setResult((r) => (r === null ? r : { ...r, state: name, reasons: s.rejections.map(describeRejection) }));
          publish({ sessionState: name });
          if (FINAL_STATES.has(s.state)) return;
        } catch {
          // Keep the last known state; polling is best effort.
        }
      }
    };
    void poll();
    return () => {
      stop = true;
    };
  }, [result?.sessionId, phase]);

  const again = () => {
    setError(null);
    publish({ error: null });
    setPhase("loading");
    setRun((r) => r + 1);
  };

  const driving = phase === "driving" || phase === "starting" || phase === "finishing";
  return (
    <section className="panel game" aria-label="Game" data-testid="game" data-phase={phase}>
      <div className="stage" ref={container} tabIndex={-1} style={{ aspectRatio: `${config.recordWidth} / ${config.recordHeight}` }}>
        {hud !== null && (driving || phase === "ready") && <Hud hud={hud} />}
        {phase === "loading" && <p className="overlay">Loading the city…</p>}
      </div>
      {hud?.diffusion.notice && driving && (
        <p className="notice" data-testid="diffusion-notice">
          {hud.diffusion.notice}
        </p>
      )}
      <div className="controls-row">
        {phase === "ready" && (
          <>
            <button type="button" className="primary" data-testid="start" onClick={() => void start()}>
              Start a {config.sessionSeconds} s drive
            </button>
            <span className="hint">
              W/↑ throttle · S/↓ brake · A/D or ←/→ steer · Space hand brake · R reverse · C camera · F diffusion · P pause ·
              Backspace respawn
            </span>
          </>
        )}
        {driving && (
          <button type="button" data-testid="finish" onClick={() => void finish()} disabled={phase !== "driving"}>
            Finish now
          </button>
        )}
        {phase === "uploading" && (
          <div className="upload" data-testid="upload">
            <progress max={1} value={progress?.fraction ?? 0} data-testid="upload-progress" />
            <span>
              {progress?.message ?? "Uploading"} · {Math.round((progress?.fraction ?? 0) * 100)} %
            </span>
            {retryNote !== null && <p className="warning">{retryNote}</p>}
          </div>
        )}
        {phase === "done" && result !== null && (
          <div className="result" data-testid="result">
            <p>
              Uploaded session <code data-testid="result-session-id">{result.sessionId}</code> — state{" "}
              <strong data-testid="result-state">{result.state}</strong>
              {result.state === "UPLOADED" && " (being processed)"}
            </p>
            {result.reasons.length > 0 && <p className="error">Rejected: {result.reasons.join("; ")}</p>}
            <button type="button" className="primary" onClick={again} data-testid="again">
              Drive again
            </button>
          </div>
        )}
        {phase === "error" && (
          <div className="failure" role="alert" data-testid="game-error">
            <p className="error">{error}</p>
            {pendingId !== null && (
              <button type="button" className="primary" onClick={() => void upload(pendingId)}>
                Try the upload again
              </button>
            )}{" "}
            {world === null ? (
              <>
                <button type="button" onClick={() => setLoadAttempt((n) => n + 1)}>
                  Retry
                </button>{" "}
                <button type="button" onClick={() => setOffline(true)}>
                  Drive the offline demo grid (cannot upload)
                </button>
              </>
            ) : (
              <button type="button" onClick={again}>
                Drive again
              </button>
            )}
          </div>
        )}
      </div>
      {offline && <p className="warning">Offline demo grid: the ingest service could not be reached, so uploads will fail.</p>}
    </section>
  );
}
