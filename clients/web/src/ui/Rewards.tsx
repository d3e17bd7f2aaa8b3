import { useCallback, useEffect, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Api } from "../api";
import type { GetRewardsResponse } from "../gen/scalediffusion/v1/ingest_pb";
import { describeError } from "./errors";

/** The player's reward balance and the segments that earned it. */
export function Rewards({ api }: { api: Api }) {
  const [data, setData] = useState<GetRewardsResponse | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);

  const load = useCallback(async () => {
    setLoading(true);
    setError(null);
    try {
      setData(await api.ingest.getRewards({ page: { pageSize: 50 } }));
    } catch (err) {
      setError(describeError(err, "Loading rewards", api.config.ingestUrl));
    } finally {
      setLoading(false);
    }
  }, [api]);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section className="panel" aria-labelledby="rewards-title" data-testid="rewards">
      <h2 id="rewards-title">Rewards</h2>
      {error !== null && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {data !== null && (
        <>
          <p className="balance">
            Balance: <strong data-testid="rewards-balance">{data.balance.toString()}</strong> points
          </p>
          {data.entries.length === 0 ? (
            <p>No rewards yet: each accepted 5-second segment of your driving earns points.</p>
          ) : (
            <table className="rewards-table">
              <thead>
                <tr>
                  <th>Credited</th>
                  <th>Session</th>
                  <th>Segment</th>
                  <th>Points</th>
                </tr>
              </thead>
              <tbody>
                {data.entries.map((e) => (
                  <tr key={e.entryId}>
                    <td>{e.creditedAt ? timestampDate(e.creditedAt).toLocaleString() : ""}</td>
                    <td>
                      <code>{e.sessionId}</code>
                    </td>
                    <td>
                      <code>{e.segmentId}</code>
                    </td>
                    <td>{e.points.toString()}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
      <button type="button" onClick={() => void load()} disabled={loading}>
        {loading ? "Loading…" : "Refresh"}
      </button>
    </section>
  );
}
