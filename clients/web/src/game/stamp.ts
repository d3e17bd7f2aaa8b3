// A test aid (?stamp=on): the game draws, across the top of every picture it shows, the time of the game state
// that picture depicts (its render time, ms, low 16 bits) as 16 black/white blocks. The end-to-end test reads the
// stamps back from the processor's output frames and compares them with each frame's render_ms in
// measurements.json: frame identity checked through encoder, muxer, upload, decoder and resampling. Never on for
// players (it would be in the training data).

export const STAMP_BITS = 16;
/** Stamp height as a fraction of the picture (the processor squashes to 256x256: blocks stay >= 16 px tall there). */
export const STAMP_HEIGHT = 1 / 14;

/** The value stamped for a render time: whole milliseconds, low 16 bits. */
export function stampValue(renderTMs: number): number {
  return Math.round(renderTMs) & 0xffff;
}

/** Rectangles [x, y, w, h] of the blocks, most significant bit first, and whether each is white. */
export function stampBlocks(value: number, width: number, height: number): { x: number; y: number; w: number; h: number; white: boolean }[] {
  const h = Math.max(2, Math.round(height * STAMP_HEIGHT));
  const out = [];
  for (let i = 0; i < STAMP_BITS; i++) {
    const x0 = Math.round((i * width) / STAMP_BITS);
    const x1 = Math.round(((i + 1) * width) / STAMP_BITS);
    out.push({ x: x0, y: 0, w: x1 - x0, h, white: ((value >> (STAMP_BITS - 1 - i)) & 1) === 1 });
  }
  return out;
}

export function drawStamp(ctx: Pick<CanvasRenderingContext2D, "fillRect" | "fillStyle">, renderTMs: number, width: number, height: number): void {
  for (const b of stampBlocks(stampValue(renderTMs), width, height)) {
    ctx.fillStyle = b.white ? "#ffffff" : "#000000";
    ctx.fillRect(b.x, b.y, b.w, b.h);
  }
}
