// One application, live: summary, conditions, the running or last operation, and its resources
// as a tree or a list; actions to sync, refresh and terminate.

import { lazy, Suspense, useCallback, useEffect, useMemo, useState } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { api, del } from "../api";
import { useApplications } from "../appStream";
import { denied, useCan } from "../can";
import { DeleteDialog } from "../components/DeleteDialog";
import { History } from "../components/History";
import { ResourceTree, buildTree, flatten, type Row } from "../components/ResourceTree";
import { OperationProgress } from "../components/OperationProgress";
import { HealthStatus, SyncStatus } from "../components/Status";
import { SyncDialog } from "../components/SyncDialog";
import { SyncWindows } from "../components/SyncWindows";
import "./AppDetails.css";
import { primarySource, type Application, type TreeNode } from "../types";

// Loaded when a resource is first opened: its diff and log code is not needed to show the app.
const ResourcePanel = lazy(() => import("../components/ResourcePanel"));

/** How often the tree is read again while nothing else says it changed (pods come and go). */
const TREE_POLL_MS = 5000;

export function AppDetails() {
  const name = useParams().name!;
  const { apps, error } = useApplications(name);
  const app = apps?.get(name);
  const [params, setParams] = useSearchParams();
  const [nodes, setNodes] = useState<TreeNode[]>([]);
  const [treeError, setTreeError] = useState<string>();
  const [selected, setSelected] = useState<Row>();
  const [syncing, setSyncing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [notice, setNotice] = useState<string>();
  const view = params.get("view") === "list" ? "list" : "tree";
  const rbacObject = app && `${app.spec.project || "default"}/${name}`;
  const canSync = useCan("applications", "sync", rbacObject);
  const canDelete = useCan("applications", "delete", rbacObject);

  const loadTree = useCallback(() => {
    api<{ nodes: TreeNode[] | null }>(`/api/v1/applications/${encodeURIComponent(name)}/resource-tree`)
      .then((tree) => {
        // The same tree again (most polls) keeps the old nodes: nothing below re-renders.
        const next = tree.nodes ?? [];
        setNodes((current) => (JSON.stringify(current) === JSON.stringify(next) ? current : next));
        setTreeError(undefined);
      })
      .catch((err) => setTreeError(err.message));
  }, [name]);
  // Again whenever the app changes (its status follows its resources), and now and then.
  useEffect(loadTree, [loadTree, app?.metadata.resourceVersion]);
  useEffect(() => {
    const timer = window.setInterval(loadTree, TREE_POLL_MS);
    return () => window.clearInterval(timer);
  }, [loadTree]);

  const roots = useMemo(() => (app ? buildTree(app, nodes) : []), [app, nodes]);

  const act = async (what: string, request: () => Promise<unknown>) => {
    setNotice(undefined);
    try {
      await request();
    } catch (err) {
      setNotice(`${what}: ${(err as Error).message}`);
    }
  };
  const refresh = (kind: "normal" | "hard") =>
    act("Refresh", () => api(`/api/v1/applications/${encodeURIComponent(name)}?refresh=${kind}`));
  const terminate = () =>
    act("Terminate", () => del(`/api/v1/applications/${encodeURIComponent(name)}/operation`));

  if (error) return <p role="alert" className="error">{error}</p>;
  if (!apps) return <p className="empty">Loading…</p>;
  if (!app) return <p className="empty">Application {name} was deleted.</p>;
  const running = app.status?.operationState?.phase === "Running" || !!app.operation;
  const noSync = canSync === false ? denied("sync", rbacObject!) : undefined;
  const noDelete = canDelete === false ? denied("delete", rbacObject!) : undefined;

  return (
    <div className="details">
      <section className="page">
        <nav className="crumbs" aria-label="Breadcrumb">
          <Link to="/applications">Applications</Link> / {name}
        </nav>
        <div className="toolbar">
          <h1>{name}</h1>
          <SyncStatus status={app.status?.sync?.status} />
          <HealthStatus status={app.status?.health?.status} />
          <div className="actions">
            <button
              className="primary"
              onClick={() => setSyncing(true)}
              disabled={!!noSync}
              title={noSync}
            >
              Sync
            </button>
            <button onClick={() => refresh("normal")}>Refresh</button>
            <button onClick={() => refresh("hard")}>Hard refresh</button>
            <button onClick={terminate} disabled={!running || !!noSync} title={noSync}>
              Terminate
            </button>
            <button onClick={() => setDeleting(true)} disabled={!!noDelete} title={noDelete}>
              Delete
            </button>
            <Link className="button" to={`/applications/${encodeURIComponent(name)}/edit`}>
              Edit
            </Link>
          </div>
        </div>
        {(noSync || noDelete) && (
          <p className="denied" data-testid="denied">
            {[noSync, noDelete].filter(Boolean).join(". ")}.
          </p>
        )}
        {notice && (
          <p role="alert" className="error">
            {notice}
          </p>
        )}
        <Summary app={app} />
        <Conditions app={app} />
        <SyncWindows appName={name} project={app.spec.project || "default"} />
        <OperationProgress app={app} />
        <History app={app} denied={noSync} />
        <div className="toolbar">
          <h2>Resources</h2>
          <div role="group" aria-label="View" className="views">
            <button aria-pressed={view === "tree"} onClick={() => setParams({}, { replace: true })}>
              Tree
            </button>
            <button
              aria-pressed={view === "list"}
              onClick={() => setParams({ view: "list" }, { replace: true })}
            >
              List
            </button>
          </div>
        </div>
        {treeError && (
          <p role="alert" className="error">
            Resource tree: {treeError}
          </p>
        )}
        {view === "tree" ? (
          <ResourceTree app={app} roots={roots} onSelect={setSelected} />
        ) : (
          <ResourceList rows={flatten(roots)} onSelect={setSelected} />
        )}
      </section>
      {selected && (
        <Suspense fallback={<aside className="panel">Loading…</aside>}>
          <ResourcePanel
            app={app}
            row={selected}
            deleteDenied={noDelete}
            onClose={() => setSelected(undefined)}
          />
        </Suspense>
      )}
      {syncing && <SyncDialog app={app} onClose={() => setSyncing(false)} />}
      {deleting && <DeleteDialog name={name} onClose={() => setDeleting(false)} />}
    </div>
  );
}

function Summary({ app }: { app: Application }) {
  const source = primarySource(app);
  const { destination } = app.spec;
  return (
    <dl className="summary" data-testid="app-summary">
      <dt>Project</dt>
      <dd>{app.spec.project || "default"}</dd>
      <dt>Repository</dt>
      <dd className="wrap">{source?.repoURL}</dd>
      <dt>{source?.chart ? "Chart" : "Path"}</dt>
      <dd>{source?.chart ?? source?.path}</dd>
      <dt>Target revision</dt>
      <dd>{source?.targetRevision || "HEAD"}</dd>
      <dt>Synced revision</dt>
      <dd className="wrap">{app.status?.sync?.revision}</dd>
      <dt>Destination</dt>
      <dd>
        {destination.name || destination.server} / {destination.namespace}
      </dd>
      <dt>Automated sync</dt>
      <dd>{app.spec.syncPolicy?.automated ? "on" : "off"}</dd>
    </dl>
  );
}

function Conditions({ app }: { app: Application }) {
  const conditions = app.status?.conditions ?? [];
  if (conditions.length === 0) return null;
  return (
    <section aria-label="Conditions" data-testid="conditions">
      <h2>Conditions</h2>
      <ul className="conditions">
        {conditions.map((c, i) => (
          <li key={i} className={c.type.endsWith("Error") ? "error" : ""}>
            <strong>{c.type}</strong> {c.message}
            {c.lastTransitionTime && <span className="muted"> (since {c.lastTransitionTime})</span>}
          </li>
        ))}
      </ul>
    </section>
  );
}

function ResourceList({ rows, onSelect }: { rows: Row[]; onSelect: (row: Row) => void }) {
  return (
    <table className="table" data-testid="resource-list">
      <thead>
        <tr>
          <th>Kind</th>
          <th>Name</th>
          <th>Namespace</th>
          <th>Sync</th>
          <th>Health</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={row.key}>
            <td>{row.node.kind}</td>
            <td>
              <button className="link" onClick={() => onSelect(row)}>
                {row.node.name}
              </button>
            </td>
            <td>{row.node.namespace}</td>
            <td>{row.managed && <SyncStatus status={row.managed.status} />}</td>
            <td>
              <HealthStatus status={row.node.health?.status ?? row.managed?.health?.status} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
