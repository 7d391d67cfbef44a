// The parts of Argo CD's API objects the UI reads.

export interface ResourceStatus {
  group?: string;
  version?: string;
  kind: string;
  namespace?: string;
  name: string;
  status?: string;
  health?: { status?: string; message?: string };
  hook?: boolean;
  requiresPruning?: boolean;
  syncWave?: number;
}

export interface Source {
  repoURL: string;
  path?: string;
  chart?: string;
  targetRevision?: string;
}

export interface SyncResultResource {
  group?: string;
  kind: string;
  namespace?: string;
  name: string;
  status?: string;
  message?: string;
  hookPhase?: string;
  syncPhase?: string;
}

export interface OperationState {
  phase: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  operation?: { initiatedBy?: { username?: string; automated?: boolean } };
  syncResult?: { revision?: string; resources?: SyncResultResource[] };
}

export interface HistoryEntry {
  id: number;
  revision?: string;
  deployedAt?: string;
  deployStartedAt?: string;
  source?: Source;
  initiatedBy?: { username?: string; automated?: boolean };
}

export interface Application {
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    creationTimestamp?: string;
  };
  spec: {
    project?: string;
    source?: Source;
    sources?: Source[];
    destination: { server?: string; name?: string; namespace?: string };
    syncPolicy?: { automated?: unknown; syncOptions?: string[] };
    ignoreDifferences?: {
      group?: string;
      kind: string;
      name?: string;
      namespace?: string;
      jsonPointers?: string[];
      jqPathExpressions?: string[];
      managedFieldsManagers?: string[];
    }[];
  };
  operation?: unknown;
  status?: {
    sync?: { status?: string; revision?: string };
    health?: { status?: string; message?: string };
    resources?: ResourceStatus[];
    conditions?: { type: string; message: string; lastTransitionTime?: string }[];
    operationState?: OperationState;
    history?: HistoryEntry[];
    reconciledAt?: string;
  };
}

export interface TreeNode {
  group?: string;
  version?: string;
  kind: string;
  namespace?: string;
  name: string;
  uid?: string;
  parentRefs?: { group?: string; kind: string; namespace?: string; name: string }[];
  health?: { status?: string; message?: string };
  images?: string[];
  createdAt?: string;
}

export interface ManagedResource {
  group?: string;
  kind: string;
  namespace?: string;
  name: string;
  version?: string;
  targetState?: string;
  liveState?: string;
  /** The live state as compared: ignored and server-set fields removed. */
  normalizedLiveState?: string;
  /** The desired state as it would be once applied (server-side dry run). */
  predictedLiveState?: string;
  diff?: string;
  modified?: boolean;
}

export interface Settings {
  url?: string;
  uiCssURL?: string;
  userLoginsDisabled?: boolean;
  oidcConfig?: { name?: string };
  // argocd-cm's resource customizations by `group/Kind` (`Kind` for the core group, `*/*` for
  // all); the ignore rules are YAML text, as Argo CD writes them.
  resourceOverrides?: Record<string, { ignoreDifferences?: string }>;
}

export interface UserInfo {
  loggedIn: boolean;
  username?: string;
  iss?: string;
  groups?: string[];
}

/** The first source: what the UI shows as the app's repository and path. */
export function primarySource(app: Application): Source | undefined {
  return app.spec.source ?? app.spec.sources?.[0];
}

/** A resource's identity, for matching tree nodes, statuses and parents. */
export function resourceKey(r: { group?: string; kind: string; namespace?: string; name: string }) {
  return `${r.group ?? ""}/${r.kind}/${r.namespace ?? ""}/${r.name}`;
}
