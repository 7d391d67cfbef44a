// Argo CD's sync panel: revision, prune, dry run, apply only, force, sync options and which
// resources to sync, sent as its ApplicationSyncRequest.

import { useState, type FormEvent } from "react";
import { ApiError, post } from "../api";
import { primarySource, resourceKey, type Application } from "../types";

const SYNC_OPTIONS: [string, string][] = [
  ["Validate=false", "Skip schema validation"],
  ["CreateNamespace=true", "Auto-create namespace"],
  ["PruneLast=true", "Prune last"],
  ["ApplyOutOfSyncOnly=true", "Apply out of sync only"],
  ["RespectIgnoreDifferences=true", "Respect ignore differences"],
  ["ServerSideApply=true", "Server-side apply"],
  ["Replace=true", "Replace"],
];

export function SyncDialog({ app, onClose }: { app: Application; onClose: () => void }) {
  const resources = (app.status?.resources ?? []).filter((r) => !r.hook);
  const [revision, setRevision] = useState(primarySource(app)?.targetRevision || "HEAD");
  const [prune, setPrune] = useState(false);
  const [dryRun, setDryRun] = useState(false);
  const [applyOnly, setApplyOnly] = useState(false);
  const [force, setForce] = useState(false);
  const [options, setOptions] = useState<string[]>(app.spec.syncPolicy?.syncOptions ?? []);
  const [selected, setSelected] = useState(() => new Set(resources.map(resourceKey)));
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const toggle = <T,>(set: Set<T>, value: T) => {
    const next = new Set(set);
    if (next.has(value)) next.delete(value);
    else next.add(value);
    return next;
  };

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    const strategy = applyOnly ? { apply: { force } } : { hook: { force } };
    const partial = selected.size < resources.length;
    try {
      await post(`/api/v1/applications/${encodeURIComponent(app.metadata.name)}/sync`, {
        revision,
        prune,
        dryRun,
        strategy,
        resources: partial
          ? resources
              .filter((r) => selected.has(resourceKey(r)))
              .map(({ group, kind, name, namespace }) => ({ group: group ?? "", kind, name, namespace }))
          : undefined,
        syncOptions: options.length ? { items: options } : undefined,
      });
      onClose();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="modal-backdrop">
      <form className="modal" role="dialog" aria-label="Synchronize" onSubmit={submit}>
        <header>
          <h2>Synchronize {app.metadata.name}</h2>
          <button type="button" onClick={onClose} aria-label="Cancel">
            ✕
          </button>
        </header>
        <label>
          Revision
          <input name="revision" value={revision} onChange={(e) => setRevision(e.target.value)} />
        </label>
        <fieldset>
          <legend>Options</legend>
          <label className="check">
            <input type="checkbox" name="prune" checked={prune} onChange={() => setPrune(!prune)} />
            Prune
          </label>
          <label className="check">
            <input type="checkbox" name="dryRun" checked={dryRun} onChange={() => setDryRun(!dryRun)} />
            Dry run
          </label>
          <label className="check">
            <input
              type="checkbox"
              name="applyOnly"
              checked={applyOnly}
              onChange={() => setApplyOnly(!applyOnly)}
            />
            Apply only (no hooks)
          </label>
          <label className="check">
            <input type="checkbox" name="force" checked={force} onChange={() => setForce(!force)} />
            Force
          </label>
        </fieldset>
        <fieldset>
          <legend>Sync options</legend>
          {SYNC_OPTIONS.map(([value, title]) => (
            <label key={value} className="check">
              <input
                type="checkbox"
                checked={options.includes(value)}
                onChange={() => setOptions([...toggle(new Set(options), value)])}
              />
              {title}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>
            Resources ({selected.size} of {resources.length}){" "}
            <button type="button" onClick={() => setSelected(new Set(resources.map(resourceKey)))}>
              all
            </button>{" "}
            <button type="button" onClick={() => setSelected(new Set())}>
              none
            </button>{" "}
            <button
              type="button"
              onClick={() =>
                setSelected(new Set(resources.filter((r) => r.status === "OutOfSync").map(resourceKey)))
              }
            >
              out of sync
            </button>
          </legend>
          {resources.map((r) => (
            <label key={resourceKey(r)} className="check">
              <input
                type="checkbox"
                data-resource={`${r.kind}/${r.name}`}
                checked={selected.has(resourceKey(r))}
                onChange={() => setSelected(toggle(selected, resourceKey(r)))}
              />
              {r.kind}/{r.name} <small>{r.status}</small>
            </label>
          ))}
        </fieldset>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <footer>
          <button type="submit" className="primary" disabled={busy || selected.size === 0}>
            Synchronize
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </footer>
      </form>
    </div>
  );
}
