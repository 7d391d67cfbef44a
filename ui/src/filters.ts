// The applications list's filters, kept in the URL (comma-separated values) so a filtered view
// can be bookmarked and shared.

import type { Application } from "./types";
import { primarySource } from "./types";

export const FILTER_KEYS = ["proj", "sync", "health", "namespace", "cluster", "repo"] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

export const FILTER_TITLES: Record<FilterKey, string> = {
  proj: "Projects",
  sync: "Sync status",
  health: "Health status",
  namespace: "Namespaces",
  cluster: "Clusters",
  repo: "Repositories",
};

/** The value of `key` an app has, as the filter compares it. */
export function facet(app: Application, key: FilterKey): string {
  switch (key) {
    case "proj":
      return app.spec.project || "default";
    case "sync":
      return app.status?.sync?.status || "Unknown";
    case "health":
      return app.status?.health?.status || "Unknown";
    case "namespace":
      return app.spec.destination.namespace || "";
    case "cluster":
      return app.spec.destination.name || app.spec.destination.server || "";
    case "repo":
      return primarySource(app)?.repoURL || "";
  }
}

export function values(params: URLSearchParams, key: string): string[] {
  return (params.get(key) ?? "").split(",").filter(Boolean);
}

/** `key=value` or `key` (present with any value), as `kubectl -l` reads them. */
function labelsMatch(app: Application, selectors: string[]): boolean {
  const labels = app.metadata.labels ?? {};
  return selectors.every((selector) => {
    const [key, value] = selector.split("=").map((part) => part.trim());
    return value === undefined ? key in labels : labels[key] === value;
  });
}

export function matches(app: Application, params: URLSearchParams): boolean {
  const search = (params.get("search") ?? "").toLowerCase();
  if (search && !app.metadata.name.toLowerCase().includes(search)) return false;
  if (!labelsMatch(app, values(params, "labels"))) return false;
  return FILTER_KEYS.every((key) => {
    const wanted = values(params, key);
    return wanted.length === 0 || wanted.includes(facet(app, key));
  });
}

/** How many apps have each value of `key`, for the filter's options. */
export function counts(apps: Application[], key: FilterKey): [string, number][] {
  const found = new Map<string, number>();
  for (const app of apps) found.set(facet(app, key), (found.get(facet(app, key)) ?? 0) + 1);
  return [...found.entries()].sort(([a], [b]) => a.localeCompare(b));
}
