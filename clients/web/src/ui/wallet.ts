// Solana wallet addresses: base58 of a 32-byte Ed25519 public key.

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const INDEX = new Map([...ALPHABET].map((c, i) => [c, i]));

/** Decodes base58 (Bitcoin alphabet); null when a character is not base58. */
export function decodeBase58(s: string): Uint8Array | null {
  const bytes: number[] = [];
  for (const ch of s) {
    const v = INDEX.get(ch);
    if (v === undefined) return null;
    let carry = v;
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i]! * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const ch of s) {
    if (ch !== "1") break;
    bytes.push(0);
  }
  return new Uint8Array(bytes.reverse());
}

/** Why an address is not a Solana address, in words; null when it is one. */
export function walletProblem(address: string): string | null {
  const a = address.trim();
  if (a === "") return "Enter a Solana wallet address.";
  if (a.length < 32 || a.length > 44) return `A Solana address has 32-44 characters; this one has ${a.length}.`;
  const bytes = decodeBase58(a);
  if (bytes === null) {
    const bad = [...a].find((c) => !INDEX.has(c));
    return `"${bad}" is not a base58 character (0, O, I and l are never used).`;
  }
  if (bytes.length !== 32) return `That decodes to ${bytes.length} bytes; a Solana public key is 32 bytes.`;
  return null;
}

export const isSolanaAddress = (address: string) => walletProblem(address) === null;

/** The parts of Phantom's injected provider (window.solana) the game uses. */
export interface PhantomProvider {
  isPhantom?: boolean;
  connect(): Promise<{ publicKey: { toString(): string } }>;
}

export function phantomProvider(w: unknown): PhantomProvider | null {
  const sol = (w as { solana?: PhantomProvider } | undefined)?.solana;
  return sol !== undefined && sol !== null && typeof sol.connect === "function" ? sol : null;
}
