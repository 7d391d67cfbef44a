// The Applications, live: a list to start from, then the server's event stream
// (/api/v1/stream/applications) applied as it comes, as Argo CD's UI does.

import { useEffect, useState } from "react";
import { api, toLogin } from "./api";
import type { Application, UserInfo } from "./types";

interface StreamEvent {
  result: { type: "ADDED" | "MODIFIED" | "DELETED"; application: Application };
}

/** How long a broken stream waits before it is opened again. */
const RECONNECT_MS = 3000;

/** Every app the user may see (or only `name`), kept current; `error` when loading failed. */
export function useApplications(name?: string) {
  const [apps, setApps] = useState<Map<string, Application>>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let source: EventSource | undefined;
    let retry: number | undefined;
    let stopped = false;
    const query = name ? `?name=${encodeURIComponent(name)}` : "";

    const open = () => {
      source = new EventSource(`/api/v1/stream/applications${query}`);
      source.onmessage = (message) => {
        const { result } = JSON.parse(message.data) as StreamEvent;
        setApps((current) => {
          const next = new Map(current);
          if (result.type === "DELETED") next.delete(result.application.metadata.name);
          else next.set(result.application.metadata.name, result.application);
          return next;
        });
      };
      source.onerror = () => {
        if (source?.readyState !== EventSource.CLOSED || stopped) return;
        // The browser gave up (a refusal, not a dropped connection): an ended session goes
        // to the login page, anything else is retried.
        api<UserInfo>("/api/v1/session/userinfo")
          .then((info) => (info.loggedIn ? undefined : toLogin()))
          .catch(() => undefined);
        retry = window.setTimeout(open, RECONNECT_MS);
      };
    };

    // The first list; a failure is shown and tried again until it works.
    const load = () => {
      const list = name
        ? api<Application>(`/api/v1/applications/${encodeURIComponent(name)}`).then((app) => [app])
        : api<{ items: Application[] | null }>("/api/v1/applications").then((r) => r.items ?? []);
      list
        .then((items) => {
          if (stopped) return;
          setError(undefined);
          setApps(new Map(items.map((app) => [app.metadata.name, app])));
          open();
        })
        .catch((err) => {
          if (stopped) return;
          setError(err.message);
          retry = window.setTimeout(load, RECONNECT_MS);
        });
    };
    load();
    return () => {
      stopped = true;
      source?.close();
      window.clearTimeout(retry);
    };
  }, [name]);
  return { apps, error };
}
