// One resource (Argo CD's resource panel): its summary, the live and desired manifests, the diff
// between them with ignored fields marked, its events, a pod's logs, and deleting it.

import { useEffect, useMemo, useState } from "react";
import { parse } from "yaml";
import { api } from "../api";
import { rulesFor, systemRules, withFields, yamlOf, type IgnoreRule } from "../manifestDiff";
import { useSession } from "../session";
import { DeleteResourceDialog } from "./DeleteResourceDialog";
import { ManifestDiff } from "./ManifestDiff";
import { PodLogs } from "./PodLogs";
import { ResourceEvents } from "./ResourceEvents";
import { HealthStatus, SyncStatus } from "./Status";
import { flatten, type Row } from "./ResourceTree";
import { resourceKey, type Application, type ManagedResource } from "../types";

type Tab = "summary" | "live" | "desired" | "diff" | "events" | "logs";

interface PodSpec {
  spec?: { containers?: { name: string }[]; initContainers?: { name: string }[] };
}

/** A manifest JSON string of the API as an object (undefined when absent). */
function objectOf(json?: string): unknown {
  return json ? JSON.parse(json) : undefined;
}

export default function ResourcePanel({
  app,
  row,
  deleteDenied,
  onClose,
}: {
  app: Application;
  row: Row;
  /** Why the user may not delete, when RBAC says so. */
  deleteDenied?: string;
  onClose: () => void;
}) {
  const appName = app.metadata.name;
  const [tab, setTab] = useState<Tab>("summary");
  const [live, setLive] = useState<string>();
  const [managed, setManaged] = useState<ManagedResource | null>();
  const [error, setError] = useState<string>();
  const [deleting, setDeleting] = useState(false);
  const [notice, setNotice] = useState<string>();
  const { node } = row;
  const isPod = node.kind === "Pod" && !node.group;

  useEffect(() => {
    setError(undefined);
    const name = encodeURIComponent(appName);
    if (tab === "live" || tab === "logs") {
      const query = new URLSearchParams({
        namespace: node.namespace ?? "",
        resourceName: node.name,
        version: node.version ?? "",
        group: node.group ?? "",
        kind: node.kind,
      });
      api<{ manifest: string }>(`/api/v1/applications/${name}/resource?${query}`)
        .then((r) => setLive(yamlOf(r.manifest)))
        .catch((err) => setError(err.message));
    } else if (tab === "desired" || tab === "diff") {
      api<{ items: ManagedResource[] | null }>(`/api/v1/applications/${name}/managed-resources`)
        .then((r) => setManaged((r.items ?? []).find((m) => resourceKey(m) === row.key) ?? null))
        .catch((err) => setError(err.message));
    }
  }, [tab, appName, node, row.key]);

  const containers = useMemo(() => {
    if (!isPod || !live) return [];
    const pod = parse(live) as PodSpec;
    return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c) => c.name);
  }, [isPod, live]);

  const tabs: [Tab, string][] = [
    ["summary", "Summary"],
    ["live", "Live manifest"],
  ];
  if (row.managed) tabs.push(["desired", "Desired manifest"], ["diff", "Diff"]);
  tabs.push(["events", "Events"]);
  if (isPod) tabs.push(["logs", "Logs"]);

  return (
    <aside className="panel" aria-label={`${node.kind} ${node.name}`} data-testid="resource-panel">
      <header>
        <h2>
          {node.kind} {node.name}
        </h2>
        <div className="actions">
          <button onClick={() => setDeleting(true)} disabled={!!deleteDenied} title={deleteDenied}>
            Delete
          </button>
          <button onClick={onClose} aria-label="Close">
            ✕
          </button>
        </div>
      </header>
      <div role="tablist">
        {tabs.map(([id, title]) => (
          <button key={id} role="tab" aria-selected={tab === id} onClick={() => setTab(id)}>
            {title}
          </button>
        ))}
      </div>
      {notice && (
        <p role="status" data-testid="panel-notice">
          {notice}
        </p>
      )}
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {tab === "summary" && <Summary row={row} />}
      {/* Focusable, so a keyboard user can scroll a long manifest. */}
      {tab === "live" && (
        <pre className="manifest" tabIndex={0} role="region" aria-label="Live manifest">
          {live ?? "Loading…"}
        </pre>
      )}
      {tab === "desired" && (
        <pre className="manifest" tabIndex={0} role="region" aria-label="Desired manifest">
          {managed === undefined
            ? "Loading…"
            : yamlOf(managed?.targetState) || "Not in the desired state (to be pruned)."}
        </pre>
      )}
      {tab === "diff" &&
        (managed === undefined ? (
          <p>Loading…</p>
        ) : managed === null ? (
          <p>The app's comparison does not have this resource.</p>
        ) : (
          <ResourceDiff app={app} resource={managed} />
        ))}
      {tab === "events" && <ResourceEvents appName={appName} node={node} />}
      {tab === "logs" &&
        (live === undefined ? (
          <p>Loading…</p>
        ) : (
          <PodLogs appName={appName} node={node} containers={containers} />
        ))}
      {deleting && (
        <DeleteResourceDialog
          appName={appName}
          node={node}
          managed={!!row.managed}
          dependents={flatten(row.children).map((child) => child.node)}
          onClose={() => setDeleting(false)}
          onDeleted={() => {
            setDeleting(false);
            setNotice(`Deletion of ${node.kind} ${node.name} requested.`);
          }}
        />
      )}
    </aside>
  );
}

function Summary({ row }: { row: Row }) {
  const { node } = row;
  return (
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
  );
}

/** The live state against the desired one as the controller compared them (normalized live,
 *  predicted live), with the fields the app's ignoreDifferences names put back from the full
 *  states and marked. */
function ResourceDiff({ app, resource }: { app: Application; resource: ManagedResource }) {
  const overrides = useSession().settings?.resourceOverrides;
  const appRules = rulesFor(app.spec.ignoreDifferences ?? [], resource);
  const systemWide = useMemo(
    () => rulesFor(systemRules(overrides ?? {}), resource),
    [overrides, resource],
  );
  const pointers = [...new Set([...appRules, ...systemWide].flatMap((rule) => rule.jsonPointers ?? []))];
  const pointersKey = pointers.join("\n");
  const described = (rules: IgnoreRule[]) =>
    rules.flatMap((rule) => [
      ...(rule.jsonPointers ?? []),
      ...(rule.jqPathExpressions ?? []).map((jq) => `jq ${jq}`),
      ...(rule.managedFieldsManagers ?? []).map((manager) => `fields managed by ${manager}`),
    ]);
  const byApp = described(appRules);
  const bySystem = described(systemWide);
  const { before, after } = useMemo(() => {
    const live = objectOf(resource.liveState);
    const target = objectOf(resource.targetState);
    const normalized = objectOf(resource.normalizedLiveState) ?? live;
    const predicted = objectOf(resource.predictedLiveState) ?? target;
    const ignored = pointersKey ? pointersKey.split("\n") : [];
    const show = (value: unknown) => (value === undefined ? "" : yamlOf(JSON.stringify(value)));
    return {
      before: show(withFields(normalized, live, ignored)),
      after: show(withFields(predicted, target, ignored)),
    };
  }, [resource, pointersKey]);
  return (
    <>
      {!resource.modified && (
        <p data-testid="no-diff">No difference between the desired and the live state.</p>
      )}
      {byApp.length > 0 && (
        <p className="muted" data-testid="ignored-rules">
          Ignored by the app's ignoreDifferences: {byApp.join(", ")}
        </p>
      )}
      {bySystem.length > 0 && (
        <p className="muted" data-testid="ignored-system-rules">
          Ignored by argocd-cm's resource.customizations: {bySystem.join(", ")}
        </p>
      )}
      {(resource.modified || pointers.length > 0) && (
        <ManifestDiff
          before={before}
          after={after}
          beforeTitle="Live"
          afterTitle="Desired"
          ignored={pointers}
        />
      )}
    </>
  );
}
