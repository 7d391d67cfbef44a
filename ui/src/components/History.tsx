// The app's deployments, newest first, each one a rollback target (Argo CD's history panel).

import { useState } from "react";
import { ApiError, post } from "../api";
import type { Application, HistoryEntry } from "../types";

export function History({ app, denied }: { app: Application; denied?: string }) {
  const history = [...(app.status?.history ?? [])].reverse();
  const [target, setTarget] = useState<HistoryEntry>();
  if (history.length === 0) return null;
  // Argo CD's rule: an automated app would sync straight back to its target revision.
  const automated = !!app.spec.syncPolicy?.automated;
  const refused = denied ?? (automated ? "Automated sync is on: turn it off to roll back" : undefined);
  return (
    <section aria-label="History" data-testid="history">
      <h2>History and rollback</h2>
      <table className="table">
        <thead>
          <tr>
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
