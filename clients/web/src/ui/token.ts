// The player's token, kept in localStorage (never in the URL).

export const TOKEN_KEY = "sd.token";

function storage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // e.g. storage disabled
  }
}

export function readToken(): string | null {
  const t = storage()?.getItem(TOKEN_KEY) ?? null;
  return t === null || t.trim() === "" ? null : t.trim();
}

export function writeToken(token: string | null): void {
  const s = storage();
  if (s === null) return;
  if (token === null) s.removeItem(TOKEN_KEY);
  else s.setItem(TOKEN_KEY, token.trim());
}

/** Why a pasted token cannot be one, in words; null when it looks fine. */
export function tokenProblem(token: string): string | null {
  const t = token.trim();
  if (t === "") return "Paste the token you were given.";
  if (/^bearer\s+/i.test(t)) return 'Paste only the token itself, without the word "Bearer".';
  if (/\s/.test(t)) return "A token has no spaces or line breaks; check that you copied all of it and nothing else.";
  if (t.length < 8) return "That is too short to be a token.";
  if (t.length > 4096) return "That is too long to be a token.";
  return null;
}
