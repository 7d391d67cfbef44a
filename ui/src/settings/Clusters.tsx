// Settings → Clusters: the destination clusters (in-cluster too) with their connection state (the
// server asks each API server for its version), a cluster's details, and delete, which RBAC may
// deny and the server refuses for the implicit in-cluster destination.

import { Link, useNavigate, useParams } from "react-router";
import { api, del } from "../api";
import { denied, useCan } from "../can";
import { Alert, DeleteButton, useLoad } from "./common";
import type { Cluster, List } from "./types";

/** A cluster's connection: Successful, Failed (with the reason) or Unknown, and its version. */
function Connection({ cluster }: { cluster: Cluster }) {
  const state = cluster.connectionState ?? cluster.info?.connectionState;
  const status = state?.status ?? "Unknown";
  const version = cluster.info?.serverVersion;
  return (
    <>
      <span className={`badge conn-${status}`} data-connection={status} title={state?.message || undefined}>
        {status}
      </span>
      {version && <span className="small"> Kubernetes {version}</span>}
      {status === "Failed" && state?.message && <div className="small error">{state.message}</div>}
    </>
  );
}

const clusterPath = (server: string) => `/api/v1/clusters/${encodeURIComponent(server)}`;
const rbacObject = (c: Cluster) => `${c.project ?? ""}/${c.server}`;

export function Clusters() {
  const { data, error } = useLoad(() => api<List<Cluster>>("/api/v1/clusters"), []);
  return (
    <section className="page settings">
      <h1>Clusters</h1>
      <Alert text={error} />
      <table className="table" data-testid="clusters">
        <thead>
          <tr>
            <th>Name</th>
            <th>Server</th>
            <th>Project</th>
            <th>Namespaces</th>
            <th>Connection</th>
          </tr>
        </thead>
        <tbody>
          {data?.items?.map((c) => (
            <tr key={c.server} data-testid={`cluster-${c.name}`}>
              <td>
                <Link to={`/settings/clusters/${encodeURIComponent(c.server)}`}>{c.name}</Link>
              </td>
              <td className="wrap">{c.server}</td>
              <td>{c.project}</td>
              <td>{c.namespaces?.join(", ") || "all"}</td>
              <td>
                <Connection cluster={c} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function ClusterDetails() {
  const server = useParams().server!;
  const navigate = useNavigate();
  const { data: cluster, error } = useLoad(() => api<Cluster>(clusterPath(server)), [server]);
  const object = cluster && rbacObject(cluster);
  const canDelete = useCan("clusters", "delete", object);
  return (
    <section className="page settings">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/settings/clusters">Clusters</Link> / {cluster?.name ?? server}
      </nav>
      <Alert text={error} />
      {cluster && (
        <>
          <div className="toolbar">
            <h1>{cluster.name}</h1>
            <div className="actions">
              <DeleteButton
                what={`cluster ${cluster.name}`}
                reason={canDelete === false ? denied("delete", object!, "clusters") : undefined}
                onDelete={async () => {
                  await del(clusterPath(cluster.server));
                  navigate("/settings/clusters");
                }}
              />
            </div>
          </div>
          <dl className="summary" data-testid="cluster">
            <dt>Server</dt>
            <dd className="wrap">{cluster.server}</dd>
            <dt>Project</dt>
            <dd>{cluster.project || "any"}</dd>
            <dt>Namespaces</dt>
            <dd>{cluster.namespaces?.join(", ") || "all"}</dd>
            <dt>Cluster-scoped resources</dt>
            <dd>{cluster.namespaces?.length ? (cluster.clusterResources ? "managed" : "not managed") : "managed"}</dd>
            <dt>TLS</dt>
            <dd>
              {cluster.config?.tlsClientConfig?.insecure ? "server not verified" : "verified"}
              {cluster.config?.tlsClientConfig?.serverName && ` as ${cluster.config.tlsClientConfig.serverName}`}
            </dd>
            <dt>Connection</dt>
            <dd>
              <Connection cluster={cluster} />
            </dd>
            <dt>Labels</dt>
            <dd>{Object.entries(cluster.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"}</dd>
            <dt>Annotations</dt>
            <dd>{Object.entries(cluster.annotations ?? {}).map(([k, v]) => `${k}=${v}`).join(", ") || "none"}</dd>
          </dl>
        </>
      )}
    </section>
  );
}
