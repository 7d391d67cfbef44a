// The Applications, live: a list to start from, then the server's event stream
// (/api/v1/stream/applications) applied as it comes, as Argo CD's UI does. Each time the
// stream (re)connects, apps deleted while it was not listening are swept out: the stream only
// tells of deletions it sees.

import { useEffect, useState } from "react";
import { ApiError, api, toLogin } from "./api";
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

    // The apps as a list, now.
    const list = (): Promise<Application[]> =>
      name
        ? api<Application>(`/api/v1/applications/${encodeURIComponent(name)}`).then((app) => [app])
        : api<{ items: Application[] | null }>("/api/v1/applications").then((r) => r.items ?? []);
    // The same for a sweep, where one app that no longer exists is an empty list.
    const present = (): Promise<Application[]> =>
      list().catch((err) => {
        if (name && err instanceof ApiError && err.status === 404) return [];
        throw err;
      });

    const open = () => {
      const connection = new EventSource(`/api/v1/stream/applications${query}`);
      source = connection;
      // The apps this connection told of; with a list taken after it opened, whatever is in
      // neither is gone.
      let told = new Set<string>();
      connection.onopen = () => {
        told = new Set();
        const sinceOpen = told;
        present()
          .then((items) => {
            if (stopped || source !== connection) return;
            const listed = new Set(items.map((app) => app.metadata.name));
            setApps((current) => {
              if (!current) return current;
              const gone = [...current.keys()].filter((n) => !listed.has(n) && !sinceOpen.has(n));
              if (gone.length === 0) return current;
              const next = new Map(current);
              gone.forEach((n) => next.delete(n));
              return next;
            });
          })
          .catch(() => undefined);
      };
      connection.onmessage = (message) => {
        const { result } = JSON.parse(message.data) as StreamEvent;
        told.add(result.application.metadata.name);
        setApps((current) => {
          const next = new Map(current);
          if (result.type === "DELETED") next.delete(result.application.metadata.name);
          else next.set(result.application.metadata.name, result.application);
          return next;
        });
      };
      connection.onerror = () => {
        if (connection.readyState !== EventSource.CLOSED || stopped) return;
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
      list()
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
