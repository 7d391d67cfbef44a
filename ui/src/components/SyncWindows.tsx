// The sync windows of the app's project that apply to it, which are active now, and whether a
// sync by hand may start now (`GET /api/v1/applications/{name}/syncwindows`), read again each
// half minute since windows open and close with the clock.

import { useEffect, useState } from "react";
import { api } from "../api";

interface Window {
  kind: string;
  schedule: string;
  duration: string;
  manualSync?: boolean;
}

interface Windows {
  activeWindows?: Window[];
  assignedWindows?: Window[];
  canSync?: boolean;
}

const WINDOWS_POLL_MS = 30_000;

const same = (a: Window, b: Window) =>
  a.kind === b.kind && a.schedule === b.schedule && a.duration === b.duration;

export function SyncWindows({ appName, project }: { appName: string; project: string }) {
  const [windows, setWindows] = useState<Windows>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const load = () =>
      api<Windows>(`/api/v1/applications/${encodeURIComponent(appName)}/syncwindows`)
        .then((found) => {
          setWindows(found);
          setError(undefined);
        })
        .catch((err) => setError(err.message));
    load();
    const timer = window.setInterval(load, WINDOWS_POLL_MS);
    return () => window.clearInterval(timer);
  }, [appName, project]);

  if (error) return <p role="alert" className="error">Sync windows: {error}</p>;
  const assigned = windows?.assignedWindows ?? [];
  if (assigned.length === 0) return null;
  const active = windows?.activeWindows ?? [];
  return (
    <section aria-label="Sync windows" data-testid="sync-windows">
      <h2>
        Sync windows{" "}
        <span
          className={`badge ${windows?.canSync ? "sync-Synced" : "health-Degraded"}`}
          data-can-sync={String(!!windows?.canSync)}
        >
          {windows?.canSync ? "Sync allowed now" : "Sync denied now"}
        </span>
      </h2>
      <ul>
        {assigned.map((w, i) => {
          const on = active.some((a) => same(a, w));
          return (
            <li key={i} data-kind={w.kind} data-active={String(on)}>
              <strong>{w.kind}</strong> {w.schedule} for {w.duration}
              {w.manualSync && ", manual sync allowed"} — {on ? "active now" : "inactive"}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
