// A pod's log through the server's streaming endpoint (Server-Sent Events, one line each), with
// the choice of container and of following new lines (Argo CD's logs tab).

import { useEffect, useRef, useState } from "react";
import { toLogin } from "../api";
import type { TreeNode } from "../types";

/** How many lines are read back before following. */
const TAIL_LINES = 500;

interface LogEvent {
  result?: { content?: string; timeStamp?: string; last?: boolean };
  error?: { message?: string };
}

/** Reads the `data:` lines of an event stream as they come, until it ends or is aborted. */
async function readEvents(response: Response, onEvent: (data: LogEvent) => void) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    const events = buffered.split("\n\n");
    buffered = events.pop() ?? "";
    for (const event of events) {
      const data = event
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data) onEvent(JSON.parse(data) as LogEvent);
    }
  }
}

export function PodLogs({
  appName,
  node,
  containers,
}: {
  appName: string;
  node: TreeNode;
  containers: string[];
}) {
  const [container, setContainer] = useState(containers[0] ?? "");
  const [follow, setFollow] = useState(true);
  const [lines, setLines] = useState<string[]>([]);
  const [state, setState] = useState<"loading" | "streaming" | "ended">("loading");
  const [error, setError] = useState<string>();
  const bottom = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!containers.includes(container) && containers[0]) setContainer(containers[0]);
  }, [containers, container]);

  useEffect(() => {
    const abort = new AbortController();
    setLines([]);
    setError(undefined);
    setState("loading");
    const query = new URLSearchParams({
      namespace: node.namespace ?? "",
      container,
      follow: String(follow),
      tailLines: String(TAIL_LINES),
    });
    const url = `/api/v1/applications/${encodeURIComponent(appName)}/pods/${encodeURIComponent(
      node.name,
    )}/logs?${query}`;
    (async () => {
      const response = await fetch(url, { credentials: "same-origin", signal: abort.signal });
      if (!response.ok) {
        if (response.status === 401) toLogin();
        const body = await response.json().catch(() => ({}));
        throw new Error(body.message || body.error || response.statusText);
      }
      setState("streaming");
      await readEvents(response, (event) => {
        if (event.error) setError(event.error.message);
        else if (event.result?.content !== undefined) {
          const line = event.result.content;
          setLines((previous) => [...previous, line]);
        }
      });
      setState("ended");
    })().catch((err: Error) => {
      if (abort.signal.aborted) return;
      setError(err.message);
      setState("ended");
    });
    return () => abort.abort();
  }, [appName, node.namespace, node.name, container, follow]);

  useEffect(() => {
    if (follow) bottom.current?.scrollIntoView({ block: "nearest" });
  }, [lines, follow]);

  return (
    <div className="logs" data-testid="pod-logs">
      <div className="toolbar">
        <label>
          Container{" "}
          <select
            name="container"
            value={container}
            onChange={(event) => setContainer(event.target.value)}
          >
            {containers.map((name) => (
              <option key={name}>{name}</option>
            ))}
          </select>
        </label>
        <label className="check">
          <input type="checkbox" checked={follow} onChange={() => setFollow(!follow)} />
          Follow
        </label>
        <span className="muted" data-testid="log-state">
          {state === "loading" ? "Loading…" : state === "streaming" ? "Following" : "End of log"}
        </span>
      </div>
      {error && (
        <p role="alert" className="error">
          Logs: {error}
        </p>
      )}
      <pre className="manifest" data-testid="log-lines" tabIndex={0} role="region" aria-label="Log lines">
        {lines.join("\n")}
        <div ref={bottom} />
      </pre>
    </div>
  );
}
