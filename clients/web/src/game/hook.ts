// window.__SD_GAME__: a tiny hook for end-to-end tests (and curious players) to read the game's state and finish a
// session early. The UI publishes into it; it holds no logic of its own.

export type GamePhase =
  | "signin" // no token yet
  | "loading" // fetching the world
  | "ready" // world shown, Start not pressed
  | "starting" // recorder starting
  | "driving"
  | "finishing" // recorder stopping
  | "uploading"
  | "done" // CompleteSession answered; sessionId/sessionState set
  | "error"; // see error

export interface GameHookState {
  phase: GamePhase;
  worldId: string | null;
  /** The last error, in words. */
  error: string | null;
  /** A one-line notice that does not stop the game (e.g. diffusion unavailable). */
  notice: string | null;
  timeLeftS: number | null;
  ticks: number;
  videoBytes: number;
  /** "webcodecs" (frame by frame, aligned by frame records) or "mediarecorder"; null before recording. */
  recorder: "webcodecs" | "mediarecorder" | null;
  /** Frame-by-frame recording: frames in the video so far, pictures skipped. */
  framesRecorded: number;
  framesSkipped: number;
  /** Frames the game draws per second now. */
  renderFps: number;
  upload: { fraction: number; message: string } | null;
  sessionId: string | null;
  /** SessionState name without prefix: "UPLOADED", "ACCEPTED", "REJECTED", ... */
  sessionState: string | null;
  /** Diffusion status: off, connecting, on, unavailable, error. */
  diffusion: string;
  /** Diffused frames received this drive, and the last measured round trip. */
  diffusionFrames: number;
  diffusionRttMs: number | null;
  /** Frames sent for repainting this stream, replies without a picture (skipped by the server or overtaken), and the
   * frame rate the server advises now. */
  diffusionSent: number;
  diffusionDropped: number;
  diffusionAdvisedFps: number;
  /** Repainted frames that reached the screen per second, over the last 2 s. */
  repaintedFps: number;
  /** Repainted frames shown during this drive, the drive's elapsed seconds, and the stream's size ("WxH"). */
  repaintedShown: number;
  elapsedS: number;
  diffusionSize: string | null;
  /** Scene renders this drive at the display's size and at the diffusion stream's. */
  renders: { full: number; stream: number };
  /** The car (city frame: metres, radians CCW from +x, m/s), updated about 10 times a second. */
  vehicle: { x: number; y: number; theta: number; speed: number } | null;
  /** The navigation command shown now and the intersection it refers to. */
  nav: { command: string; nextIntersection: { id: string; x: number; y: number } | null; distanceToNextM: number | null } | null;
  /** Recordings saved locally and not uploaded yet. */
  pending: number;
}

export interface GameHook {
  state(): GameHookState;
  /** Ends the current drive now (then it uploads). Resolves false when nothing was being driven. */
  finish(): Promise<boolean>;
  /** Presses Start. Resolves false when the game was not ready. */
  start(): Promise<boolean>;
}

export function initialHookState(): GameHookState {
  return {
    phase: "signin",
    worldId: null,
    error: null,
    notice: null,
    timeLeftS: null,
    ticks: 0,
    videoBytes: 0,
    recorder: null,
    repaintedFps: 0,
    diffusionSent: 0,
    diffusionDropped: 0,
    diffusionAdvisedFps: 0,
    repaintedShown: 0,
    elapsedS: 0,
    diffusionSize: null,
    renders: { full: 0, stream: 0 },
    framesRecorded: 0,
    framesSkipped: 0,
    renderFps: 0,
    upload: null,
    sessionId: null,
    sessionState: null,
    diffusion: "off",
    diffusionFrames: 0,
    diffusionRttMs: null,
    vehicle: null,
    nav: null,
    pending: 0,
  };
}

let current: GameHookState = initialHookState();
let actions: { finish: () => Promise<boolean>; start: () => Promise<boolean> } = {
  finish: async () => false,
  start: async () => false,
};

export function publish(patch: Partial<GameHookState>): void {
  current = { ...current, ...patch };
}

export function setActions(a: Partial<typeof actions>): void {
  actions = { ...actions, ...a };
}

export const gameHook: GameHook = {
  state: () => structuredClone(current),
  finish: () => actions.finish(),
  start: () => actions.start(),
};

export function installHook(w: { __SD_GAME__?: GameHook } | undefined): void {
  if (w !== undefined) w.__SD_GAME__ = gameHook;
}
