// A resource's Kubernetes events, newest first (Argo CD's events tab), read again while open.

import { useEffect, useState } from "react";
import { api } from "../api";
import type { TreeNode } from "../types";

interface KubeEvent {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
  metadata: { uid?: string; creationTimestamp?: string };
}

const EVENTS_POLL_MS = 5000;

const when = (event: KubeEvent) =>
  event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp ?? event.metadata.creationTimestamp ?? "";

export function ResourceEvents({ appName, node }: { appName: string; node: TreeNode }) {
  const [events, setEvents] = useState<KubeEvent[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const query = new URLSearchParams({
      resourceNamespace: node.namespace ?? "",
      resourceName: node.name,
      resourceUID: node.uid ?? "",
    });
    const load = () =>
      api<{ items: KubeEvent[] | null }>(
        `/api/v1/applications/${encodeURIComponent(appName)}/events?${query}`,
      )
        .then((list) => {
          setEvents([...(list.items ?? [])].sort((a, b) => when(b).localeCompare(when(a))));
          setError(undefined);
        })
        .catch((err) => setError(err.message));
    load();
    const timer = window.setInterval(load, EVENTS_POLL_MS);
    return () => window.clearInterval(timer);
  }, [appName, node.namespace, node.name, node.uid]);

  if (error) return <p role="alert" className="error">Events: {error}</p>;
  if (!events) return <p>Loading…</p>;
  if (events.length === 0) return <p data-testid="no-events">No events for this resource.</p>;
  return (
    <table className="table" data-testid="events">
      <thead>
        <tr>
          <th>Type</th>
          <th>Reason</th>
          <th>Message</th>
          <th>Count</th>
          <th>Last seen</th>
        </tr>
      </thead>
      <tbody>
        {events.map((event, i) => (
          <tr key={event.metadata.uid ?? i} className={event.type === "Warning" ? "error" : ""}>
            <td>{event.type}</td>
            <td>{event.reason}</td>
            <td className="wrap">{event.message}</td>
            <td>{event.count ?? 1}</td>
            <td>{when(event)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
