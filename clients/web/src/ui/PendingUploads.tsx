import { useCallback, useEffect, useRef, useState } from "react";
import type { Api } from "../api";
import { resumePending, uploadPending, type PendingSession, type PendingStore } from "../record/pending";
import { describeError } from "./errors";
import { isRetryable, makeUploader } from "./uploads";

interface Props {
  api: Api;
  store: PendingStore;
  /** The recording the game view is handling itself (not listed here). */
  activeId: string | null;
  onCount?: (n: number) => void;
}

/** Recordings saved in this browser that are not uploaded yet: resumed once on load, retry or discard by hand. */
export function PendingUploads({ api, store, activeId, onCount }: Props) {
  const [items, setItems] = useState<PendingSession[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const resumed = useRef(false);

  const refresh = useCallback(async () => {
    try {
      const list = await store.list();
      setItems(list);
      onCount?.(list.length);
    } catch (err) {
      setMessage(describeError(err, "Reading saved recordings"));
    }
  }, [store, onCount]);

  useEffect(() => {
    void refresh();
    const id = setInterval(() => void refresh(), 3000);
    return () => clearInterval(id);
  }, [refresh]);

  useEffect(() => {
    if (resumed.current) return;
    resumed.current = true;
    void (async () => {
      const list = await store.list().catch(() => []);
      if (list.length === 0) return;
      setBusy(true);
      setMessage(`Uploading ${list.length} saved recording${list.length === 1 ? "" : "s"} from an earlier visit…`);
      const uploader = makeUploader(api, { onProgress: (p) => setMessage(`${p.message} (${Math.round(p.fraction * 100)} %)`) });
      const outcomes = await resumePending(store, uploader, isRetryable);
      const ok = outcomes.filter((o) => o.ok).length;
      setMessage(outcomes.length === 0 ? null : `Uploaded ${ok} of ${outcomes.length} saved recording${outcomes.length === 1 ? "" : "s"}.`);
      setBusy(false);
      await refresh();
    })();
  }, [api, store, refresh]);

  const retry = async (id: string) => {
    setBusy(true);
    const out = await uploadPending(store, id, makeUploader(api, { onProgress: (p) => setMessage(`${p.message} (${Math.round(p.fraction * 100)} %)`) }), isRetryable);
    setMessage(out.ok ? `Uploaded session ${out.result.sessionId}.` : out.error);
    setBusy(false);
    await refresh();
  };

  const discard = async (id: string) => {
    await store.delete(id);
    await refresh();
  };

  const shown = items.filter((s) => s.id !== activeId);
  if (shown.length === 0 && message === null) return null;
  return (
    <section className="panel" aria-labelledby="pending-title" data-testid="pending">
      <h2 id="pending-title">Saved recordings</h2>
      {message !== null && <p data-testid="pending-message">{message}</p>}
      {shown.length > 0 && (
        <ul className="pending-list">
          {shown.map((s) => (
            <li key={s.id}>
              {new Date(s.createdAt).toLocaleString()} · {(s.video.size / 1e6).toFixed(1)} MB · {s.state}
              {s.error ? <span className="error"> — {s.error}</span> : null}{" "}
              <button type="button" disabled={busy} onClick={() => void retry(s.id)}>
                Upload
              </button>{" "}
              <button type="button" disabled={busy} onClick={() => void discard(s.id)}>
                Discard
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
