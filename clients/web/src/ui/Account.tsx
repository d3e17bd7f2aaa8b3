import { useState } from "react";
import type { Api } from "../api";
import { describeError } from "./errors";
import { phantomProvider, walletProblem } from "./wallet";

/** Optional Solana wallet for rewards: typed in, or taken from Phantom when it is installed. */
export function Account({ api, onSignOut }: { api: Api; onSignOut: () => void }) {
  const [address, setAddress] = useState("");
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const phantom = typeof window === "undefined" ? null : phantomProvider(window);
  const problem = address.trim() === "" ? null : walletProblem(address);

  const register = async (value: string) => {
    const p = walletProblem(value);
    if (p !== null) {
      setStatus({ ok: false, text: p });
      return;
    }
    setBusy(true);
    try {
      const res = await api.ingest.registerWallet({ walletAddress: value.trim() });
      setStatus({ ok: true, text: `Saved. Rewards for player ${res.player?.playerId ?? ""} go to ${res.player?.walletAddress || value.trim()}.` });
    } catch (err) {
      setStatus({ ok: false, text: describeError(err, "Saving the wallet", api.config.ingestUrl) });
    } finally {
      setBusy(false);
    }
  };

  const connectPhantom = async () => {
    if (phantom === null) return;
    try {
      const { publicKey } = await phantom.connect();
      const key = publicKey.toString();
      setAddress(key);
      await register(key);
    } catch (err) {
      setStatus({ ok: false, text: describeError(err, "Connecting Phantom") });
    }
  };

  return (
    <section className="panel" aria-labelledby="account-title" data-testid="account">
      <h2 id="account-title">Account</h2>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void register(address);
        }}
      >
        <label htmlFor="wallet-input">Solana wallet address (optional)</label>
        <input
          id="wallet-input"
          data-testid="wallet-input"
          spellCheck={false}
          autoComplete="off"
          placeholder="e.g. 7xKXtg2CW87d97TXJSDpbD5jBkheTqA83TZRuJosgAsU"
          value={address}
          onChange={(e) => setAddress(e.target.value)}
          aria-invalid={problem !== null}
        />
        {problem !== null && <p className="error">{problem}</p>}
        <button type="submit" disabled={busy || problem !== null || address.trim() === ""} data-testid="wallet-save">
          Save wallet
        </button>{" "}
        {phantom !== null && (
          <button type="button" onClick={() => void connectPhantom()} disabled={busy}>
            Connect Phantom
          </button>
        )}
      </form>
      {status !== null && (
        <p className={status.ok ? "ok" : "error"} role={status.ok ? "status" : "alert"} data-testid="wallet-status">
          {status.text}
        </p>
      )}
      <p>
        <button type="button" onClick={onSignOut} data-testid="signout">
          Sign out
        </button>
      </p>
    </section>
  );
}
