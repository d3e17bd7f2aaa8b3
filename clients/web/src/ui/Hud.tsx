import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import type { HudState } from "../game/runtime";

const ARROWS: Partial<Record<RoadOption, string>> = {
  [RoadOption.LEFT]: "↰",
  [RoadOption.RIGHT]: "↱",
  [RoadOption.STRAIGHT]: "↑",
  [RoadOption.LANEFOLLOW]: "↑",
};

const WORDS: Partial<Record<RoadOption, string>> = {
  [RoadOption.LEFT]: "Turn left",
  [RoadOption.RIGHT]: "Turn right",
  [RoadOption.STRAIGHT]: "Straight on",
  [RoadOption.LANEFOLLOW]: "Follow the road",
};

export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export function formatDistance(m: number): string {
  if (m >= 1000) return `${(m / 1000).toFixed(1)} km`;
  return `${Math.max(0, Math.round(m / 10) * 10)} m`;
}

/** The diffusion line in words, from what reaches the screen: "on" only while repainted frames are shown. */
export function diffusionLine(hud: Pick<HudState, "diffusion" | "showingRepainted" | "repaintedFps">): { text: string; tone: "on" | "slow" | "off" | "bad" } {
  const d = hud.diffusion;
  if (d.status === "unavailable" || d.status === "error") return { text: "Diffusion unavailable · showing the raw view", tone: "bad" };
  if (d.status === "connecting") return { text: "Diffusion connecting…", tone: "slow" };
  if (d.status !== "on") return { text: "Diffusion off", tone: "off" };
  if (!hud.showingRepainted) {
    return { text: "Diffusion too slow on this server · showing the raw view", tone: "slow" };
  }
  const rtt = d.lastRttMs !== null ? ` · ${Math.round(d.lastRttMs)} ms behind` : "";
  return { text: `Repainting at ${hud.repaintedFps.toFixed(hud.repaintedFps < 10 ? 1 : 0)} fps${rtt}`, tone: "on" };
}

/** What the player sees over the road: speed, timer, next manoeuvre, diffusion and recording state. */
export function Hud({ hud }: { hud: HudState }) {
  const turn = hud.nextTurn;
  const now = hud.command;
  const diffusion = diffusionLine(hud);
  return (
    <div className="hud" data-testid="hud">
      <div className="hud-top">
        <span className={`rec ${hud.recording ? "on" : ""}`} data-testid="hud-recording" title={hud.recording ? "Recording" : "Not recording"}>
          ● {hud.recording ? "REC" : "—"}
        </span>
        <span className="timer" data-testid="hud-timer">
          {formatClock(hud.timeLeftS)}
        </span>
        <span className={`diffusion ${diffusion.tone}`} data-testid="hud-diffusion" data-tone={diffusion.tone}>
          {diffusion.text}
        </span>
      </div>
      <div className="hud-nav" data-testid="hud-command" data-command={RoadOption[now]}>
        <span className="arrow">{ARROWS[now] ?? "↑"}</span>
        <span>
          <strong>{WORDS[now] ?? "Drive"}</strong>
          {turn !== null && (
            <small>
              {" "}
              · {turn.command === RoadOption.LEFT ? "left" : "right"} in {formatDistance(turn.distanceM)}
            </small>
          )}
        </span>
      </div>
      <div className="hud-bottom">
        <span className="speed" data-testid="hud-speed">
          {Math.round(hud.speedKmh)} <small>km/h</small>
        </span>
        <span className="flags">
          {hud.reverse && <b>R</b>}
          {hud.paused && <b>PAUSED</b>}
          {hud.crashed && <b className="crash">BUMP</b>}
          <small>{hud.cameraMode === "chase" ? "chase cam" : "dash cam"}</small>
        </span>
      </div>
    </div>
  );
}
