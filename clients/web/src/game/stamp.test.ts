import { describe, expect, it } from "vitest";
import { drawStamp, STAMP_BITS, stampBlocks, stampValue } from "./stamp";

describe("render-time stamp", () => {
  it("stamps whole milliseconds, low 16 bits, most significant bit on the left", () => {
    expect(stampValue(1234.4)).toBe(1234);
    expect(stampValue(65536 + 7.6)).toBe(8);
    const blocks = stampBlocks(0b1000_0000_0000_0011, 640, 360);
    expect(blocks).toHaveLength(STAMP_BITS);
    expect(blocks.map((b) => (b.white ? 1 : 0)).join("")).toBe("1000000000000011");
    expect(blocks[0]).toMatchObject({ x: 0, y: 0, w: 40, h: 26 });
    expect(blocks[15]!.x + blocks[15]!.w).toBe(640);
  });

  it("paints every block", () => {
    const fills: string[] = [];
    const ctx = { fillStyle: "", fillRect() { fills.push(this.fillStyle); } };
    drawStamp(ctx as never, 3, 320, 180);
    expect(fills.filter((f) => f === "#ffffff")).toHaveLength(2);
    expect(fills).toHaveLength(16);
  });
});
