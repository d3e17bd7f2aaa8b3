import { useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Api } from "../api";
import { describeError } from "./errors";
import { tokenProblem } from "./token";

interface Props {
  api: Api;
  /** Saves the token (localStorage) and switches the app to signed in. */
  onSignedIn: (token: string) => void;
  /** Checks a token against the ingest service; defaults to GetRewards with that token. */
  verify?: (token: string) => Promise<void>;
}

/** Paste a player token; it is checked with the ingest service and kept in this browser. */
export function SignIn({ api, onSignedIn, verify }: Props) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [warning, setWarning] = useState<string | null>(null);

  const submit = async () => {
    const problem = tokenProblem(value);
    setWarning(null);
    if (problem !== null) {
      setError(problem);
      return;
    }
    const token = value.trim();
    setBusy(true);
    setError(null);
    try {
      await (verify ?? (async (t) => void (await api.ingest.getRewards({ page: { pageSize: 1 } }, { headers: { authorization: `Bearer ${t}` } }))))(token);
      onSignedIn(token);
    } catch (err) {
      if (err instanceof ConnectError && (err.code === Code.Unauthenticated || err.code === Code.PermissionDenied)) {
        setError(describeError(err, "Signing in"));
      } else {
        // The service could not be asked; keep the token and say so.
        setWarning(`${describeError(err, "Checking the token", api.config.ingestUrl)} The token was saved anyway.`);
        onSignedIn(token);
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="panel" aria-labelledby="signin-title" data-testid="signin">
      <h2 id="signin-title">Sign in</h2>
      <p>Paste your player token. It stays in this browser and is sent only to the ingest service.</p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        <label htmlFor="token-input">Player token</label>
        <textarea
          id="token-input"
          data-testid="token-input"
          rows={3}
          spellCheck={false}
          autoComplete="off"
          value={value}
          onChange={(e) => setValue(e.target.value)}
        />
        <button type="submit" data-testid="signin-button" disabled={busy}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
      {error !== null && (
        <p className="error" role="alert" data-testid="signin-error">
          {error}
        </p>
      )}
      {warning !== null && <p className="warning">{warning}</p>}
    </section>
  );
}
