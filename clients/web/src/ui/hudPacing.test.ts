import { describe, expect, it } from "vitest";
import { HUD_MAX_HOLD_MS, HUD_REDRAW_MS, hudRedrawDue, type HudDraw } from "./hudPacing";

const drawn = (atMs: number, repaintAtMs: number | null = null, phase = "driving"): HudDraw => ({ atMs, phase, repaintAtMs });

describe("hudRedrawDue", () => {
  it("redraws at once when the phase changes", () => {
    expect(hudRedrawDue(10, drawn(5), "finished", null)).toBe(true);
    expect(hudRedrawDue(0, { atMs: -Infinity, phase: null, repaintAtMs: null }, "driving", null)).toBe(true);
  });

  it("without repainted frames, redraws every HUD_REDRAW_MS", () => {
    expect(hudRedrawDue(1000 + HUD_REDRAW_MS - 1, drawn(1000), "driving", null)).toBe(false);
    expect(hudRedrawDue(1000 + HUD_REDRAW_MS, drawn(1000), "driving", null)).toBe(true);
  });

  it("while repainted frames arrive, redraws only in the frame of a new one", () => {
    const last = drawn(1000, 990);
    // 300 ms later, no new repainted frame since the last redraw: wait for it.
    expect(hudRedrawDue(1300, last, "driving", 990)).toBe(false);
    // A new one was just drawn: ride with it.
    expect(hudRedrawDue(1300, last, "driving", 1290)).toBe(true);
    // ... but never more often than HUD_REDRAW_MS.
    expect(hudRedrawDue(1100, last, "driving", 1090)).toBe(false);
  });

  it("never holds a change longer than HUD_MAX_HOLD_MS", () => {
    expect(hudRedrawDue(1000 + HUD_MAX_HOLD_MS, drawn(1000, 990), "driving", 990)).toBe(true);
  });

  it("goes back to the plain rate when repainted frames stop", () => {
    // The last repainted frame is older than HUD_MAX_HOLD_MS: the raw view is on screen.
    expect(hudRedrawDue(5000, drawn(4700, 3000), "driving", 3000)).toBe(true);
  });
});
