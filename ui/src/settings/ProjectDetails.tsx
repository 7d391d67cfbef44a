// One AppProject: its sources, destinations, cluster and namespace resource allow and deny lists
// (each edited as YAML), roles with their policies, groups and JWT tokens, and sync windows.
// Every change is a PUT of the whole project as read, so a concurrent change is refused by the
// server (resourceVersion) instead of being overwritten.

import { useState } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { parse, stringify } from "yaml";
import { api, del, post, put } from "../api";
import { denied, useCan } from "../can";
import { Alert, Check, DeleteButton, Dialog, TextArea, TextField, useLoad, when } from "./common";
import type { JwtToken, Project, ProjectRole, SyncWindow } from "./types";

type Spec = Project["spec"];

/** The list sections of a project's spec, each shown as a table of its fields. */
const LISTS: { key: keyof Spec; title: string; columns: string[] }[] = [
  { key: "sourceRepos", title: "Source repositories", columns: [] },
  { key: "destinations", title: "Destinations", columns: ["server", "name", "namespace"] },
  { key: "clusterResourceWhitelist", title: "Cluster resources allowed", columns: ["group", "kind"] },
  { key: "clusterResourceBlacklist", title: "Cluster resources denied", columns: ["group", "kind"] },
  { key: "namespaceResourceWhitelist", title: "Namespace resources allowed", columns: ["group", "kind"] },
  { key: "namespaceResourceBlacklist", title: "Namespace resources denied", columns: ["group", "kind"] },
];

const lines = (text: string) =>
  text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);

/** A list section: its entries, and an editor of them as YAML. */
function ListSection({
  title,
  items,
  columns,
  reason,
  onSave,
}: {
  title: string;
  items: unknown[];
  columns: string[];
  reason?: string;
  onSave: (items: unknown[]) => Promise<unknown>;
}) {
  const [text, setText] = useState<string>();
  const id = title.toLowerCase().replace(/ /g, "-");
  return (
    <section className="card" data-testid={id}>
      <header>
        <h2>{title}</h2>
        <button onClick={() => setText(items.length ? stringify(items) : "[]\n")} disabled={!!reason} title={reason}>
          Edit
        </button>
      </header>
      {items.length === 0 ? (
        <p className="small">None.</p>
      ) : columns.length === 0 ? (
        <ul>
          {items.map((item) => (
            <li key={String(item)}>{String(item)}</li>
          ))}
        </ul>
      ) : (
        <table className="table">
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c}>{c}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {items.map((item, i) => (
              <tr key={i}>
                {columns.map((c) => (
                  <td key={c}>{String((item as Record<string, unknown>)[c] ?? "")}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {text !== undefined && (
        <Dialog
          title={`Edit ${title.toLowerCase()}`}
          submit="Save"
          onClose={() => setText(undefined)}
          onSubmit={async () => {
            const value = parse(text) ?? [];
            if (!Array.isArray(value)) throw new Error("expected a YAML list");
            await onSave(value);
          }}
        >
          <TextArea label="YAML list" name="yaml" value={text} onChange={setText} rows={10} />
        </Dialog>
      )}
    </section>
  );
}

/** A role's tokens: create one (shown once) and delete them. */
function RoleTokens({
  project,
  role,
  tokens,
  reason,
  onChange,
}: {
  project: string;
  role: string;
  tokens: JwtToken[];
  reason?: string;
  onChange: () => void;
}) {
  const [creating, setCreating] = useState(false);
  const [expiresIn, setExpiresIn] = useState("");
  const [tokenId, setTokenId] = useState("");
  const [issued, setIssued] = useState<string>();
  const base = `/api/v1/projects/${encodeURIComponent(project)}/roles/${encodeURIComponent(role)}/token`;
  return (
    <div data-testid={`tokens-${role}`}>
      <h4>JWT tokens</h4>
      <table className="table">
        <thead>
          <tr>
            <th>ID</th>
            <th>Issued</th>
            <th>Expires</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {tokens.map((t) => (
            <tr key={t.iat} data-testid="token">
              <td>{t.id}</td>
              <td>{when(t.iat)}</td>
              <td>{when(t.exp)}</td>
              <td>
                <DeleteButton
                  what={`token ${t.id ?? t.iat}`}
                  reason={reason}
                  onDelete={async () => {
                    await del(`${base}/${t.iat}`);
                    onChange();
                  }}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <button onClick={() => setCreating(true)} disabled={!!reason} title={reason}>
        Create token
      </button>
      {issued && (
        <div className="issued" data-testid="issued-token">
          <p>The new token, shown only now:</p>
          <textarea readOnly value={issued} rows={3} aria-label="New token" />
          <button onClick={() => setIssued(undefined)}>Done</button>
        </div>
      )}
      {creating && (
        <Dialog
          title={`Create a token of ${role}`}
          submit="Create"
          onClose={() => setCreating(false)}
          onSubmit={async () => {
            const seconds = expiresIn ? Number(expiresIn) : 0;
            if (!Number.isInteger(seconds) || seconds < 0) throw new Error("Expires in: a number of seconds");
            const answer = await post<{ token: string }>(base, { expiresIn: seconds, id: tokenId || undefined });
            setIssued(answer.token);
            onChange();
          }}
        >
          <TextField label="Expires in (seconds, empty: never)" name="expiresIn" value={expiresIn} onChange={setExpiresIn} />
          <TextField label="Token ID (optional)" name="tokenId" value={tokenId} onChange={setTokenId} />
        </Dialog>
      )}
    </div>
  );
}

/** A new role or changes to one: description, policies and groups, one a line. */
function RoleDialog({
  role,
  project,
  onSave,
  onClose,
}: {
  role?: ProjectRole;
  project: string;
  onSave: (role: ProjectRole) => Promise<unknown>;
  onClose: () => void;
}) {
  const [name, setName] = useState(role?.name ?? "");
  const [description, setDescription] = useState(role?.description ?? "");
  const [policies, setPolicies] = useState((role?.policies ?? []).join("\n"));
  const [groups, setGroups] = useState((role?.groups ?? []).join("\n"));
  return (
    <Dialog
      title={role ? `Edit role ${role.name}` : "New role"}
      submit="Save"
      wide
      onClose={onClose}
      onSubmit={() =>
        onSave({
          ...role,
          name: name.trim(),
          description: description || undefined,
          policies: lines(policies),
          groups: lines(groups),
        })
      }
    >
      {!role && <TextField label="Role name" name="roleName" value={name} onChange={setName} required />}
      <TextField label="Description" name="roleDescription" value={description} onChange={setDescription} />
      <TextArea
        label={`Policies, one a line (p, proj:${project}:${name || "role"}, applications, get, ${project}/*, allow)`}
        name="policies"
        value={policies}
        onChange={setPolicies}
      />
      <TextArea label="Groups (OIDC), one a line" name="groups" value={groups} onChange={setGroups} />
    </Dialog>
  );
}

const EMPTY_WINDOW: SyncWindow = { kind: "allow", schedule: "", duration: "", manualSync: false };

function WindowDialog({ onSave, onClose }: { onSave: (w: SyncWindow) => Promise<unknown>; onClose: () => void }) {
  const [w, setW] = useState(EMPTY_WINDOW);
  const [apps, setApps] = useState("");
  const [namespaces, setNamespaces] = useState("");
  const [clusters, setClusters] = useState("");
  const list = (text: string) => {
    const found = lines(text.replace(/,/g, "\n"));
    return found.length ? found : undefined;
  };
  return (
    <Dialog
      title="New sync window"
      submit="Save"
      onClose={onClose}
      onSubmit={() =>
        onSave({
          ...w,
          timeZone: w.timeZone || undefined,
          applications: list(apps),
          namespaces: list(namespaces),
          clusters: list(clusters),
        })
      }
    >
      <label>
        Kind
        <select name="kind" value={w.kind} onChange={(e) => setW({ ...w, kind: e.target.value })}>
          <option value="allow">allow</option>
          <option value="deny">deny</option>
        </select>
      </label>
      <TextField label="Schedule (cron)" name="schedule" value={w.schedule} placeholder="0 22 * * *" required onChange={(v) => setW({ ...w, schedule: v })} />
      <TextField label="Duration" name="duration" value={w.duration} placeholder="1h" required onChange={(v) => setW({ ...w, duration: v })} />
      <TextField label="Time zone" name="timeZone" value={w.timeZone ?? ""} placeholder="UTC" onChange={(v) => setW({ ...w, timeZone: v })} />
      <TextField label="Applications (comma-separated patterns)" name="applications" value={apps} onChange={setApps} />
      <TextField label="Namespaces" name="namespaces" value={namespaces} onChange={setNamespaces} />
      <TextField label="Clusters" name="clusters" value={clusters} onChange={setClusters} />
      <Check label="Manual sync allowed" name="manualSync" checked={!!w.manualSync} onChange={(v) => setW({ ...w, manualSync: v })} />
    </Dialog>
  );
}

export function ProjectDetails() {
  const name = useParams().name!;
  const navigate = useNavigate();
  const path = `/api/v1/projects/${encodeURIComponent(name)}`;
  const { data: project, error, reload } = useLoad(() => api<Project>(path), [path]);
  const canUpdate = useCan("projects", "update", name);
  const canDelete = useCan("projects", "delete", name);
  const [editingRole, setEditingRole] = useState<ProjectRole | "new">();
  const [addingWindow, setAddingWindow] = useState(false);
  const noUpdate = canUpdate === false ? denied("update", name, "projects") : undefined;

  /** The project as read with `change` made to its spec, written back. */
  const save = async (change: (spec: Spec) => Spec) => {
    await put(path, { project: { ...project!, spec: change(structuredClone(project!.spec)) } });
    reload();
  };

  if (error) return <Alert text={error} />;
  if (!project) return <p className="empty">Loading…</p>;
  const spec = project.spec;
  const roles = spec.roles ?? [];
  return (
    <section className="page settings">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/settings/projects">Projects</Link> / {name}
      </nav>
      <div className="toolbar">
        <h1>{name}</h1>
        <div className="actions">
          <DeleteButton
            what={`project ${name}`}
            reason={canDelete === false ? denied("delete", name, "projects") : undefined}
            onDelete={async () => {
              await del(path);
              navigate("/settings/projects");
            }}
          />
        </div>
      </div>
      {spec.description && <p>{spec.description}</p>}
      {noUpdate && (
        <p className="denied" data-testid="denied">
          {noUpdate}
        </p>
      )}
      <div className="cards">
        {LISTS.map(({ key, title, columns }) => (
          <ListSection
            key={key}
            title={title}
            columns={columns}
            items={(spec[key] as unknown[] | undefined) ?? []}
            reason={noUpdate}
            onSave={(items) => save((s) => ({ ...s, [key]: items.length ? items : undefined }))}
          />
        ))}
      </div>

      <section className="card" data-testid="roles">
        <header>
          <h2>Roles</h2>
          <button onClick={() => setEditingRole("new")} disabled={!!noUpdate} title={noUpdate}>
            Add role
          </button>
        </header>
        {roles.length === 0 && <p className="small">None.</p>}
        {roles.map((role) => (
          <article key={role.name} className="role" data-testid={`role-${role.name}`}>
            <header>
              <h3>{role.name}</h3>
              <span>
                <button onClick={() => setEditingRole(role)} disabled={!!noUpdate} title={noUpdate}>
                  Edit
                </button>{" "}
                <DeleteButton
                  what={`role ${role.name}`}
                  reason={noUpdate}
                  onDelete={() => save((s) => ({ ...s, roles: roles.filter((r) => r.name !== role.name) }))}
                />
              </span>
            </header>
            {role.description && <p>{role.description}</p>}
            <h4>Policies</h4>
            <ul className="mono">
              {(role.policies ?? []).map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
            {!!role.groups?.length && <p>Groups: {role.groups.join(", ")}</p>}
            <RoleTokens
              project={name}
              role={role.name}
              tokens={role.jwtTokens ?? project.status?.jwtTokensByRole?.[role.name]?.items ?? []}
              reason={noUpdate}
              onChange={reload}
            />
          </article>
        ))}
      </section>

      <section className="card" data-testid="sync-windows">
        <header>
          <h2>Sync windows</h2>
          <button onClick={() => setAddingWindow(true)} disabled={!!noUpdate} title={noUpdate}>
            Add window
          </button>
        </header>
        <table className="table">
          <thead>
            <tr>
              <th>Kind</th>
              <th>Schedule</th>
              <th>Duration</th>
              <th>Applies to</th>
              <th>Manual sync</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {(spec.syncWindows ?? []).map((w, i) => (
              <tr key={i}>
                <td>{w.kind}</td>
                <td>
                  {w.schedule}
                  {w.timeZone && ` (${w.timeZone})`}
                </td>
                <td>{w.duration}</td>
                <td>
                  {[
                    w.applications?.length && `apps: ${w.applications.join(", ")}`,
                    w.namespaces?.length && `namespaces: ${w.namespaces.join(", ")}`,
                    w.clusters?.length && `clusters: ${w.clusters.join(", ")}`,
                  ]
                    .filter(Boolean)
                    .join("; ")}
                </td>
                <td>{w.manualSync ? "allowed" : "no"}</td>
                <td>
                  <DeleteButton
                    what={`sync window ${w.kind} ${w.schedule}`}
                    reason={noUpdate}
                    onDelete={() =>
                      save((s) => ({ ...s, syncWindows: (s.syncWindows ?? []).filter((_, j) => j !== i) }))
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      {editingRole && (
        <RoleDialog
          project={name}
          role={editingRole === "new" ? undefined : editingRole}
          onClose={() => setEditingRole(undefined)}
          onSave={(role) =>
            save((s) => {
              const others = (s.roles ?? []).filter((r) => r.name !== role.name);
              if (editingRole === "new" && others.length !== (s.roles ?? []).length) {
                throw new Error(`role ${role.name} already exists`);
              }
              const index = (s.roles ?? []).findIndex((r) => r.name === role.name);
              const roles = [...(s.roles ?? [])];
              if (index >= 0) roles[index] = role;
              else roles.push(role);
              return { ...s, roles };
            })
          }
        />
      )}
      {addingWindow && (
        <WindowDialog
          onClose={() => setAddingWindow(false)}
          onSave={(w) => save((s) => ({ ...s, syncWindows: [...(s.syncWindows ?? []), w] }))}
        />
      )}
    </section>
  );
}
