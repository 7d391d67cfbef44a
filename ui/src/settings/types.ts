// The parts of Argo CD's settings objects these screens read: repositories, credential
// templates, clusters, projects and accounts, as the API answers them (never a credential).

export interface ConnectionState {
  status: string;
  message?: string;
  attemptedAt?: string;
}

export interface Repository {
  repo: string;
  type?: string;
  name?: string;
  project?: string;
  username?: string;
  insecure?: boolean;
  forceHttpBasicAuth?: boolean;
  enableLfs?: boolean;
  enableOCI?: boolean;
  insecureOCIForceHttp?: boolean;
  proxy?: string;
  noProxy?: string;
  inheritedCreds?: boolean;
  connectionState?: ConnectionState;
}

export interface RepoCreds {
  url: string;
  type?: string;
  username?: string;
  enableOCI?: boolean;
  proxy?: string;
}

export interface Cluster {
  server: string;
  name: string;
  namespaces?: string[];
  clusterResources?: boolean;
  project?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  config?: { tlsClientConfig?: { insecure?: boolean; serverName?: string } };
  connectionState?: ConnectionState;
  serverVersion?: string;
  info?: { serverVersion?: string; applicationsCount?: number; connectionState?: ConnectionState };
}

export interface GroupKind {
  group: string;
  kind: string;
}

export interface JwtToken {
  iat: number;
  exp?: number;
  id?: string;
}

export interface ProjectRole {
  name: string;
  description?: string;
  policies?: string[];
  groups?: string[];
  jwtTokens?: JwtToken[];
}

export interface SyncWindow {
  kind: string;
  schedule: string;
  duration: string;
  applications?: string[];
  namespaces?: string[];
  clusters?: string[];
  manualSync?: boolean;
  timeZone?: string;
}

export interface Project {
  metadata: { name: string; resourceVersion?: string; [key: string]: unknown };
  spec: {
    description?: string;
    sourceRepos?: string[];
    destinations?: { server?: string; name?: string; namespace?: string }[];
    clusterResourceWhitelist?: GroupKind[];
    clusterResourceBlacklist?: GroupKind[];
    namespaceResourceWhitelist?: GroupKind[];
    namespaceResourceBlacklist?: GroupKind[];
    roles?: ProjectRole[];
    syncWindows?: SyncWindow[];
    [key: string]: unknown;
  };
  status?: { jwtTokensByRole?: Record<string, { items?: JwtToken[] }> };
}

export interface Account {
  name: string;
  enabled: boolean;
  capabilities?: string[];
  tokens?: { id: string; issuedAt: number; expiresAt?: number }[];
}

export interface List<T> {
  items: T[] | null;
}
