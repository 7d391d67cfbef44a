// Deleting one of the app's resources, with Argo CD's choices: foreground (dependents first),
// background with force (no grace period), or non-cascading (dependents kept). A managed
// resource's name must be typed to confirm, as the app would otherwise bring it back unseen.

import { useState, type FormEvent } from "react";
import { ApiError, del } from "../api";
import type { TreeNode } from "../types";

const OPTIONS: [string, string][] = [
  ["foreground", "Foreground: delete the resource and its dependents, dependents first"],
  ["force", "Background, forced: no grace period, dependents deleted after"],
  ["orphan", "Non-cascading (orphan): keep the dependents"],
];

export function DeleteResourceDialog({
  appName,
  node,
  managed,
  dependents,
  onClose,
  onDeleted,
}: {
  appName: string;
  node: TreeNode;
  managed: boolean;
  dependents: TreeNode[];
  onClose: () => void;
  onDeleted: () => void;
}) {
  const [option, setOption] = useState("foreground");
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<string>();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const query = new URLSearchParams({
      namespace: node.namespace ?? "",
      resourceName: node.name,
      version: node.version ?? "",
      group: node.group ?? "",
      kind: node.kind,
      force: String(option === "force"),
      orphan: String(option === "orphan"),
    });
    try {
      await del(`/api/v1/applications/${encodeURIComponent(appName)}/resource?${query}`);
      onDeleted();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  return (
    <div className="modal-backdrop">
      <form className="modal" role="dialog" aria-label="Delete resource" onSubmit={submit}>
        <h2>
          Delete {node.kind} {node.name}?
        </h2>
        {dependents.length > 0 && (
          <>
            <p>Dependent resources:</p>
            <ul data-testid="dependents">
              {dependents.slice(0, 5).map((child) => (
                <li key={`${child.kind}/${child.name}`}>
                  <code>
                    {child.kind}/{child.name}
                  </code>
                </li>
              ))}
              {dependents.length > 5 && <li>and {dependents.length - 5} more</li>}
            </ul>
          </>
        )}
        {managed && (
          <p>
            The app manages this resource: unless it leaves the desired state, the next sync
            creates it again.
          </p>
        )}
        <fieldset>
          <legend>Propagation</legend>
          {OPTIONS.map(([value, title]) => (
            <label key={value} className="check">
              <input
                type="radio"
                name="propagation"
                value={value}
                checked={option === value}
                onChange={() => setOption(value)}
              />
              {title}
            </label>
          ))}
        </fieldset>
        {managed && (
          <label>
            Type the resource's name to confirm
            <input name="confirm" value={typed} onChange={(e) => setTyped(e.target.value)} />
          </label>
        )}
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <footer>
          <button type="submit" className="primary" disabled={managed && typed !== node.name}>
            Delete
          </button>
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </footer>
      </form>
    </div>
  );
}
