// The app's resources as a tree: the Application, its managed resources, and what they own
// (ReplicaSets, Pods...) through owner references, each with its sync and health. Large sets of
// siblings of one kind without children of their own (a ReplicaSet's many Pods) collapse into
// one group node with their counts, which opens on demand (Argo CD's grouped nodes).

import { useState } from "react";
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

/** More leaf siblings of one kind than this are shown as one group node. */
export const GROUP_ABOVE = 5;

type Item = { row: Row } | { group: Row[]; key: string };

/** The children to show: rows, and groups of many leaf rows of one kind. */
export function grouped(rows: Row[], parentKey: string): Item[] {
  const leavesByKind = new Map<string, Row[]>();
  for (const row of rows) {
    if (row.children.length > 0) continue;
    const kind = `${row.node.group ?? ""}/${row.node.kind}`;
    const leaves = leavesByKind.get(kind);
    if (leaves) leaves.push(row);
    else leavesByKind.set(kind, [row]);
  }
  const items: Item[] = [];
  const placed = new Set<string>();
  for (const row of rows) {
    const kind = `${row.node.group ?? ""}/${row.node.kind}`;
    const leaves = leavesByKind.get(kind);
    if (row.children.length === 0 && leaves && leaves.length > GROUP_ABOVE) {
      if (!placed.has(kind)) items.push({ group: leaves, key: `${parentKey}>${kind}` });
      placed.add(kind);
    } else {
      items.push({ row });
    }
  }
  return items;
}

/** How many of `rows` are in each health (or sync) state, as "3 Healthy, 1 Progressing". */
function counts(rows: Row[], of: (row: Row) => string | undefined): [string, number][] {
  const found = new Map<string, number>();
  for (const row of rows) {
    const value = of(row);
    if (value) found.set(value, (found.get(value) ?? 0) + 1);
  }
  return [...found.entries()];
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
  const [open, setOpen] = useState<Set<string>>(new Set());
  const toggle = (key: string) =>
    setOpen((previous) => {
      const next = new Set(previous);
      if (!next.delete(key)) next.add(key);
      return next;
    });
  return (
    <ul className="tree" data-testid="resource-tree" aria-label="Resource tree">
      <li>
        <div className="node app-node" data-kind="Application" data-name={app.metadata.name}>
          <span className="kind">Application</span> <strong>{app.metadata.name}</strong>{" "}
          <SyncStatus status={app.status?.sync?.status} />{" "}
          <HealthStatus status={app.status?.health?.status} />
        </div>
        <Branch rows={roots} parentKey="" onSelect={onSelect} open={open} toggle={toggle} />
      </li>
    </ul>
  );
}

function Branch({
  rows,
  parentKey,
  onSelect,
  open,
  toggle,
}: {
  rows: Row[];
  parentKey: string;
  onSelect: (row: Row) => void;
  open: Set<string>;
  toggle: (key: string) => void;
}) {
  if (rows.length === 0) return null;
  const node = (row: Row) => (
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
      <Branch rows={row.children} parentKey={row.key} onSelect={onSelect} open={open} toggle={toggle} />
    </li>
  );
  return (
    <ul>
      {grouped(rows, parentKey).map((item) => {
        if ("row" in item) return node(item.row);
        const { group, key } = item;
        const kind = group[0].node.kind;
        const expanded = open.has(key);
        const health = counts(group, (row) => row.node.health?.status ?? row.managed?.health?.status);
        const sync = counts(group, (row) => row.managed?.status);
        return (
          <li key={key} className="group">
            <button
              className="node group-node"
              data-testid="group-node"
              data-kind={kind}
              data-count={group.length}
              aria-expanded={expanded}
              onClick={() => toggle(key)}
            >
              <span aria-hidden>{expanded ? "▾" : "▸"}</span>
              <strong>
                {group.length} {kind}s
              </strong>
              {[...sync, ...health].map(([state, n]) => (
                <span key={state} className="muted" data-state={state}>
                  {n} {state}
                </span>
              ))}
            </button>
            {expanded && <ul>{group.map(node)}</ul>}
          </li>
        );
      })}
    </ul>
  );
}

/** Every row, depth first, for the list view. */
export function flatten(rows: Row[]): Row[] {
  return rows.flatMap((row) => [row, ...flatten(row.children)]);
}
