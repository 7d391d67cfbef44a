// The app's deployments, newest first, each one a rollback target (Argo CD's history panel);
// two of them ticked show the diff of their manifests, as rendered at each one's revision.

import { lazy, Suspense, useState } from "react";
import { ApiError, post } from "../api";
import type { Application, HistoryEntry } from "../types";

// Loaded when first asked for: the diff code is not needed to show the app.
const RevisionDiff = lazy(() => import("./RevisionDiff"));

export function History({ app, denied }: { app: Application; denied?: string }) {
  const history = [...(app.status?.history ?? [])].reverse();
  const [target, setTarget] = useState<HistoryEntry>();
  const [compared, setCompared] = useState<number[]>([]);
  if (history.length === 0) return null;
  // The last two ticked, older first.
  const compare = (id: number) =>
    setCompared((ids) =>
      ids.includes(id) ? ids.filter((other) => other !== id) : [...ids, id].slice(-2),
    );
  const pair = history
    .filter((entry) => compared.includes(entry.id))
    .sort((a, b) => a.id - b.id);
  // Argo CD's rule: an automated app would sync straight back to its target revision.
  const automated = !!app.spec.syncPolicy?.automated;
  const refused = denied ?? (automated ? "Automated sync is on: turn it off to roll back" : undefined);
  return (
    <section aria-label="History" data-testid="history">
      <h2>History and rollback</h2>
      <table className="table">
        <thead>
          <tr>
            <th>Compare</th>
            <th>ID</th>
            <th>Revision</th>
            <th>Deployed</th>
            <th>By</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {history.map((entry, index) => (
            <tr key={entry.id} data-history-id={entry.id}>
              <td>
                <input
                  type="checkbox"
                  name="compare"
                  aria-label={`Compare deployment ${entry.id}`}
                  checked={compared.includes(entry.id)}
                  onChange={() => compare(entry.id)}
                />
              </td>
              <td>{entry.id}</td>
              <td className="wrap">{entry.revision}</td>
              <td>{entry.deployedAt}</td>
              <td>{entry.initiatedBy?.automated ? "automated sync" : entry.initiatedBy?.username}</td>
              <td>
                {index > 0 && (
                  <button
                    onClick={() => setTarget(entry)}
                    disabled={!!refused}
                    title={refused}
                  >
                    Rollback
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {pair.length === 2 && (
        <Suspense fallback={<p>Loading…</p>}>
          <RevisionDiff appName={app.metadata.name} older={pair[0]} newer={pair[1]} />
        </Suspense>
      )}
      {target && <RollbackDialog app={app} entry={target} onClose={() => setTarget(undefined)} />}
    </section>
  );
}

function RollbackDialog({
  app,
  entry,
  onClose,
}: {
  app: Application;
  entry: HistoryEntry;
  onClose: () => void;
}) {
  const [prune, setPrune] = useState(false);
  const [error, setError] = useState<string>();
  const rollback = async () => {
    try {
      await post(`/api/v1/applications/${encodeURIComponent(app.metadata.name)}/rollback`, {
        id: entry.id,
        prune,
      });
      onClose();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  };
  return (
    <div className="modal-backdrop">
      <div className="modal" role="dialog" aria-label="Rollback">
        <h2>
          Roll back {app.metadata.name} to deployment {entry.id}?
        </h2>
        <p className="wrap">Revision {entry.revision}</p>
        <label className="check">
          <input type="checkbox" checked={prune} onChange={() => setPrune(!prune)} />
          Prune
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <footer>
          <button className="primary" onClick={rollback}>
            Rollback
          </button>
          <button onClick={onClose}>Cancel</button>
        </footer>
      </div>
    </div>
  );
}
