// When the HUD is redrawn. On a machine without a GPU every change on the page is composited in software: each
// composited frame of a 1280x720 page cost the browser's GPU process ~40-50 ms of CPU in the 2-core drive, and the
// diffusion model on the same cores pays for it. A repainted frame must reach the screen anyway, so while repainted
// frames arrive the HUD changes in the same frame as one of them (one composite for both), at most every
// HUD_REDRAW_MS; otherwise it is redrawn every HUD_REDRAW_MS, and never held back longer than HUD_MAX_HOLD_MS.

/** How often the HUD is redrawn at most while driving (ms). */
export const HUD_REDRAW_MS = 250;
/** The longest a HUD change waits for a repainted frame to ride with (ms). */
export const HUD_MAX_HOLD_MS = 1000;

export interface HudDraw {
  /** performance.now() of the last redraw (-Infinity before the first). */
  atMs: number;
  phase: string | null;
  /** The repainted frame on screen at the last redraw (performance.now() it was drawn, null: none yet). */
  repaintAtMs: number | null;
}

/** Whether to redraw the HUD now, given the last redraw and the runtime's phase and latest repainted frame. */
export function hudRedrawDue(nowMs: number, last: HudDraw, phase: string, lastRepaintAtMs: number | null): boolean {
  if (phase !== last.phase) return true;
  const since = nowMs - last.atMs;
  if (since < HUD_REDRAW_MS) return false;
  if (since >= HUD_MAX_HOLD_MS) return true;
  const repainting = lastRepaintAtMs !== null && nowMs - lastRepaintAtMs < HUD_MAX_HOLD_MS;
  if (!repainting) return true;
  // Repainted frames are arriving: wait for the next one, then redraw in the frame that shows it.
  return lastRepaintAtMs !== last.repaintAtMs;
}
