// The Application the create and edit screens work on, as plain JSON: the form changes it field
// by field, the YAML editor replaces it whole. Only what the form knows is typed; anything else
// in the object (other fields of the spec, labels...) is kept as it is.

import { parse } from "yaml";

export interface HelmParameter {
  name: string;
  value: string;
  forceString?: boolean;
}

export interface AppSource {
  repoURL: string;
  targetRevision?: string;
  path?: string;
  chart?: string;
  helm?: { valueFiles?: string[]; values?: string; parameters?: HelmParameter[]; releaseName?: string; [k: string]: unknown };
  kustomize?: { images?: string[]; namePrefix?: string; nameSuffix?: string; [k: string]: unknown };
  directory?: { recurse?: boolean; [k: string]: unknown };
  [k: string]: unknown;
}

export interface AppObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; finalizers?: string[]; resourceVersion?: string; [k: string]: unknown };
  spec: {
    project: string;
    source?: AppSource;
    sources?: AppSource[];
    destination: { server?: string; name?: string; namespace?: string };
    syncPolicy?: {
      automated?: { prune?: boolean; selfHeal?: boolean; [k: string]: unknown };
      syncOptions?: string[];
      [k: string]: unknown;
    };
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** Argo CD's finalizer that deletes an app's resources with it. */
export const RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io";

/** The new app Argo CD's create panel starts from. */
export function newApp(): AppObject {
  return {
    apiVersion: "argoproj.io/v1alpha1",
    kind: "Application",
    metadata: { name: "" },
    spec: {
      project: "default",
      source: { repoURL: "", targetRevision: "HEAD", path: "" },
      destination: { server: "https://kubernetes.default.svc", namespace: "" },
    },
  };
}

/** An app as read from the server, without what only the controller writes. */
export function editable(app: Record<string, unknown>): AppObject {
  const { status: _status, operation: _operation, ...rest } = app;
  const metadata = { ...(rest.metadata as AppObject["metadata"]) };
  delete metadata.managedFields;
  return { ...(rest as unknown as AppObject), metadata };
}

/** The YAML editor's text as an app, or why it is not one. */
export function fromYaml(text: string): AppObject {
  let value: unknown;
  try {
    value = parse(text);
  } catch (err) {
    throw new Error(`YAML: ${(err as Error).message}`);
  }
  const app = value as AppObject;
  if (!app || typeof app !== "object" || Array.isArray(app)) throw new Error("YAML: expected an Application object");
  if (app.kind !== "Application") throw new Error("YAML: kind must be Application");
  if (!app.metadata?.name) throw new Error("YAML: metadata.name is required");
  if (!app.spec || typeof app.spec !== "object") throw new Error("YAML: spec is required");
  if (!app.spec.destination) throw new Error("YAML: spec.destination is required");
  if (!app.spec.source && !app.spec.sources) throw new Error("YAML: spec.source or spec.sources is required");
  return app;
}

/** The sync options Argo CD's panel offers as check boxes. */
export const SYNC_OPTIONS: [string, string][] = [
  ["Validate=false", "Skip schema validation"],
  ["CreateNamespace=true", "Auto-create namespace"],
  ["PruneLast=true", "Prune last"],
  ["ApplyOutOfSyncOnly=true", "Apply out of sync only"],
  ["RespectIgnoreDifferences=true", "Respect ignore differences"],
  ["ServerSideApply=true", "Server-side apply"],
  ["Replace=true", "Replace"],
];

/** Which of a source's tools the form shows: as set in the spec, else none (detected). */
export type SourceType = "" | "directory" | "helm" | "kustomize";

export function sourceType(source: AppSource): SourceType {
  if (source.helm || source.chart) return "helm";
  if (source.kustomize) return "kustomize";
  if (source.directory) return "directory";
  return "";
}
