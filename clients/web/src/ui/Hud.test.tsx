import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import type { HudState } from "../game/runtime";
import { diffusionLine, formatClock, formatDistance, Hud } from "./Hud";

const hud: HudState = {
  phase: "driving",
  speedKmh: 42.4,
  timeLeftS: 59.2,
  elapsedS: 0.8,
  command: RoadOption.LEFT,
  nextTurn: { command: RoadOption.LEFT, distanceM: 34 },
  distanceToNextM: 34,
  nextIntersection: { id: "i1_1", x: 100, y: 100 },
  vehicle: { x: 100, y: 66, theta: Math.PI / 2, speed: 11.8 },
  diffusion: { status: "unavailable", enabled: true, notice: "x", streamId: null, lastRttMs: null, framesSent: 0, framesReceived: 0, framesDropped: 0, width: 0, height: 0, advisedFps: 0, resized: 0 },
  showingRepainted: false,
  repaintedShown: 0,
  lastRepaintAtMs: null,
  renders: { full: 0, stream: 0 },
  repaintedFps: 0,
  recording: true,
  paused: false,
  reverse: false,
  cameraMode: "chase",
  collisions: 0,
  crashed: false,
  ticks: 10,
  videoBytes: 0,
  recorder: "webcodecs",
  framesRecorded: 0,
  framesSkipped: 0,
  renderFps: 30,
};

describe("Hud", () => {
  it("shows speed, the countdown, the next command, diffusion and recording", () => {
    const html = renderToStaticMarkup(<Hud hud={hud} />);
    expect(html).toContain("42 <small>km/h</small>");
    expect(html).toContain("1:00");
    expect(html).toContain("Turn left");
    expect(html).toContain("left in 30 m");
    expect(html).toContain('data-command="LEFT"');
    expect(html).toContain("Diffusion unavailable");
    expect(html).toContain("REC");
  });

  it("says diffusion is on only while repainted frames reach the screen", () => {
    const on = { ...hud.diffusion, status: "on" as const, lastRttMs: 412.6 };
    expect(diffusionLine({ diffusion: on, showingRepainted: true, repaintedFps: 4.5 })).toEqual({ text: "Repainting at 4.5 fps · 413 ms behind", tone: "on" });
    expect(diffusionLine({ diffusion: on, showingRepainted: false, repaintedFps: 0.5 })).toEqual({ text: "Diffusion too slow on this server · showing the raw view", tone: "slow" });
    expect(diffusionLine({ diffusion: { ...on, status: "connecting" }, showingRepainted: false, repaintedFps: 0 }).text).toBe("Diffusion connecting…");
    expect(diffusionLine({ diffusion: { ...on, status: "error" }, showingRepainted: false, repaintedFps: 0 }).tone).toBe("bad");
    expect(diffusionLine({ diffusion: { ...on, status: "off" }, showingRepainted: false, repaintedFps: 0 }).text).toBe("Diffusion off");
    const html = renderToStaticMarkup(<Hud hud={{ ...hud, diffusion: on, showingRepainted: false }} />);
    expect(html).not.toContain("Diffusion on");
    expect(html).toContain('data-tone="slow"');
  });

  it("formats clocks and distances", () => {
    expect(formatClock(0)).toBe("0:00");
    expect(formatClock(59.01)).toBe("1:00");
    expect(formatClock(125)).toBe("2:05");
    expect(formatDistance(1234)).toBe("1.2 km");
    expect(formatDistance(86)).toBe("90 m");
  });
});
