// One resource: its summary, the live and desired manifests, and the diff between them.

import { useEffect, useState } from "react";
import { stringify } from "yaml";
import { api } from "../api";
import { HealthStatus, SyncStatus } from "./Status";
import type { Row } from "./ResourceTree";
import { resourceKey, type ManagedResource } from "../types";

type Tab = "summary" | "live" | "desired" | "diff";

function asYaml(json?: string): string {
  if (!json) return "";
  try {
    return stringify(JSON.parse(json));
  } catch {
    return json;
  }
}

export function ResourcePanel({
  appName,
  row,
  onClose,
}: {
  appName: string;
  row: Row;
  onClose: () => void;
}) {
  const [tab, setTab] = useState<Tab>("summary");
  const [live, setLive] = useState<string>();
  const [managed, setManaged] = useState<ManagedResource | null>();
  const [error, setError] = useState<string>();
  const { node } = row;

  useEffect(() => {
    setError(undefined);
    const app = encodeURIComponent(appName);
    if (tab === "live") {
      const query = new URLSearchParams({
        namespace: node.namespace ?? "",
        resourceName: node.name,
        version: node.version ?? "",
        group: node.group ?? "",
        kind: node.kind,
      });
      api<{ manifest: string }>(`/api/v1/applications/${app}/resource?${query}`)
        .then((r) => setLive(asYaml(r.manifest)))
        .catch((err) => setError(err.message));
    } else if (tab === "desired" || tab === "diff") {
      api<{ items: ManagedResource[] | null }>(`/api/v1/applications/${app}/managed-resources`)
        .then((r) => setManaged((r.items ?? []).find((m) => resourceKey(m) === row.key) ?? null))
        .catch((err) => setError(err.message));
    }
  }, [tab, appName, node, row.key]);

  const tabs: [Tab, string][] = [
    ["summary", "Summary"],
    ["live", "Live manifest"],
  ];
  if (row.managed) tabs.push(["desired", "Desired manifest"], ["diff", "Diff"]);

  return (
    <aside className="panel" aria-label={`${node.kind} ${node.name}`} data-testid="resource-panel">
      <header>
        <h2>
          {node.kind} {node.name}
        </h2>
        <button onClick={onClose} aria-label="Close">
          ✕
        </button>
      </header>
      <div role="tablist">
        {tabs.map(([id, title]) => (
          <button key={id} role="tab" aria-selected={tab === id} onClick={() => setTab(id)}>
            {title}
          </button>
        ))}
      </div>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {tab === "summary" && (
        <dl className="summary">
          <dt>Kind</dt>
          <dd>{node.kind}</dd>
          <dt>Name</dt>
          <dd>{node.name}</dd>
          <dt>Namespace</dt>
          <dd>{node.namespace || "(cluster)"}</dd>
          <dt>API version</dt>
          <dd>{[node.group, node.version].filter(Boolean).join("/")}</dd>
          {row.managed && (
            <>
              <dt>Sync</dt>
              <dd>
                <SyncStatus status={row.managed.status} />
                {row.managed.requiresPruning && " (requires pruning)"}
              </dd>
            </>
          )}
          <dt>Health</dt>
          <dd>
            <HealthStatus status={node.health?.status ?? row.managed?.health?.status} />{" "}
            {node.health?.message ?? row.managed?.health?.message}
          </dd>
          {node.images && (
            <>
              <dt>Images</dt>
              <dd>{node.images.join(", ")}</dd>
            </>
          )}
          {node.createdAt && (
            <>
              <dt>Created</dt>
              <dd>{node.createdAt}</dd>
            </>
          )}
        </dl>
      )}
      {tab === "live" && <pre className="manifest">{live ?? "Loading…"}</pre>}
      {tab === "desired" && (
        <pre className="manifest">
          {managed === undefined
            ? "Loading…"
            : asYaml(managed?.targetState) || "Not in the desired state (to be pruned)."}
        </pre>
      )}
      {tab === "diff" &&
        (managed === undefined ? (
          <p>Loading…</p>
        ) : managed?.diff ? (
          <Diff text={managed.diff} />
        ) : (
          <p data-testid="no-diff">No difference between the desired and the live state.</p>
        ))}
    </aside>
  );
}

function Diff({ text }: { text: string }) {
  return (
    <pre className="diff" data-testid="diff">
      {text.split("\n").map((line, i) => {
        const kind = line.startsWith("+") ? "added" : line.startsWith("-") ? "removed" : "";
        return (
          <span key={i} className={kind}>
            {line}
            {"\n"}
          </span>
        );
      })}
    </pre>
  );
}
