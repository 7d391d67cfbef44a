// Deleting an app, with Argo CD's cascade choices: its resources deleted first (foreground) or
// in the background, or kept (non-cascading). The name must be typed to confirm.

import { useState, type FormEvent } from "react";
import { useNavigate } from "react-router";
import { ApiError, del } from "../api";

const CASCADES: [string, string][] = [
  ["foreground", "Foreground: delete the resources, then the app"],
  ["background", "Background: delete the app, the resources after"],
  ["none", "Non-cascading: keep the resources"],
];

export function DeleteDialog({ name, onClose }: { name: string; onClose: () => void }) {
  const navigate = useNavigate();
  const [typed, setTyped] = useState("");
  const [cascade, setCascade] = useState("foreground");
  const [error, setError] = useState<string>();

  async function submit(event: FormEvent) {
    event.preventDefault();
    const query =
      cascade === "none" ? "cascade=false" : `cascade=true&propagationPolicy=${cascade}`;
    try {
      await del(`/api/v1/applications/${encodeURIComponent(name)}?${query}`);
      navigate("/applications");
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    }
  }

  return (
    <div className="modal-backdrop">
      <form className="modal" role="dialog" aria-label="Delete" onSubmit={submit}>
        <h2>Delete {name}?</h2>
        <fieldset>
          <legend>Propagation</legend>
          {CASCADES.map(([value, title]) => (
            <label key={value} className="check">
              <input
                type="radio"
                name="cascade"
                value={value}
                checked={cascade === value}
                onChange={() => setCascade(value)}
              />
              {title}
            </label>
          ))}
        </fieldset>
        <label>
          Type the app's name to confirm
          <input name="confirm" value={typed} onChange={(e) => setTyped(e.target.value)} />
        </label>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        <footer>
          <button type="submit" className="primary" disabled={typed !== name}>
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
