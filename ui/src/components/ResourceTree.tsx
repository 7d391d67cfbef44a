// The app's resources as a tree: the Application, its managed resources, and what they own
// (ReplicaSets, Pods...) through owner references, each with its sync and health.

import { HealthStatus, SyncStatus } from "./Status";
import { resourceKey, type Application, type ResourceStatus, type TreeNode } from "../types";

export interface Row {
  key: string;
  node: TreeNode;
  /** The app's status for a resource it manages (none for what they own). */
  managed?: ResourceStatus;
  children: Row[];
}

/** The roots (managed resources, live or missing) with their descendants. */
export function buildTree(app: Application, nodes: TreeNode[]): Row[] {
  const managed = new Map((app.status?.resources ?? []).map((r) => [resourceKey(r), r]));
  const rows = new Map<string, Row>();
  for (const node of nodes) {
    const key = resourceKey(node);
    rows.set(key, { key, node, managed: managed.get(key), children: [] });
  }
  // Managed resources not in the cluster (Missing) still belong in the tree.
  for (const [key, resource] of managed) {
    if (!rows.has(key)) rows.set(key, { key, node: resource, managed: resource, children: [] });
  }
  const roots: Row[] = [];
  for (const row of rows.values()) {
    const parent = row.managed
      ? undefined
      : row.node.parentRefs?.map((ref) => rows.get(resourceKey(ref))).find(Boolean);
    if (parent) parent.children.push(row);
    else roots.push(row);
  }
  const order = (a: Row, b: Row) =>
    a.node.kind.localeCompare(b.node.kind) || a.node.name.localeCompare(b.node.name);
  const sort = (list: Row[]) => {
    list.sort(order);
    list.forEach((row) => sort(row.children));
  };
  sort(roots);
  return roots;
}

export function ResourceTree({
  app,
  roots,
  onSelect,
}: {
  app: Application;
  roots: Row[];
  onSelect: (row: Row) => void;
}) {
  return (
    <ul className="tree" data-testid="resource-tree" aria-label="Resource tree">
      <li>
        <div className="node app-node" data-kind="Application" data-name={app.metadata.name}>
          <span className="kind">Application</span> <strong>{app.metadata.name}</strong>{" "}
          <SyncStatus status={app.status?.sync?.status} />{" "}
          <HealthStatus status={app.status?.health?.status} />
        </div>
        <Branch rows={roots} onSelect={onSelect} />
      </li>
    </ul>
  );
}

function Branch({ rows, onSelect }: { rows: Row[]; onSelect: (row: Row) => void }) {
  if (rows.length === 0) return null;
  return (
    <ul>
      {rows.map((row) => (
        <li key={row.key}>
          <button
            className="node"
            data-kind={row.node.kind}
            data-name={row.node.name}
            onClick={() => onSelect(row)}
          >
            <span className="kind">{row.node.kind}</span> <strong>{row.node.name}</strong>{" "}
            {row.managed && <SyncStatus status={row.managed.status} />}{" "}
            <HealthStatus status={row.node.health?.status ?? row.managed?.health?.status} />
          </button>
          <Branch rows={row.children} onSelect={onSelect} />
        </li>
      ))}
    </ul>
  );
}

/** Every row, depth first, for the list view. */
export function flatten(rows: Row[]): Row[] {
  return rows.flatMap((row) => [row, ...flatten(row.children)]);
}
