import { describe, expect, it } from "vitest";
import { decodeBase58, isSolanaAddress, phantomProvider, walletProblem } from "./wallet";

describe("Solana wallet addresses", () => {
  it("accepts 32-byte base58 keys", () => {
    expect(isSolanaAddress("11111111111111111111111111111111")).toBe(true); // the system program: 32 zero bytes
    expect(decodeBase58("11111111111111111111111111111111")).toEqual(new Uint8Array(32));
    expect(isSolanaAddress("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA")).toBe(true);
    expect(isSolanaAddress("  So11111111111111111111111111111111111111112 ")).toBe(true);
  });

  it("explains what is wrong", () => {
    expect(walletProblem("")).toMatch(/Enter/);
    expect(walletProblem("abc")).toMatch(/32-44 characters/);
    expect(walletProblem("0OIl1111111111111111111111111111111")).toMatch(/not a base58 character/);
    expect(walletProblem("2222222222222222222222222222222222222222222")).toMatch(/bytes; a Solana public key is 32 bytes/);
  });

  it("decodes base58 like the reference", () => {
    expect([...decodeBase58("2g")!]).toEqual([0x61]);
    expect([...decodeBase58("1112")!]).toEqual([0, 0, 0, 1]);
  });

  it("finds Phantom when injected", () => {
    expect(phantomProvider({})).toBeNull();
    expect(phantomProvider({ solana: { isPhantom: true, connect: async () => ({ publicKey: "x" }) } })).not.toBeNull();
  });
});
