// Settings → Repositories: the repositories with their connection state (checked by the server
// with the saved credentials: `forceRefresh`), the credential templates below them, Connect Repo,
// edits and deletes; what RBAC denies is disabled with the reason.

import { useEffect, useState } from "react";
import { api, del } from "../api";
import { denied, useCan } from "../can";
import { ConnectRepo } from "./ConnectRepo";
import { Alert, DeleteButton, useLoad } from "./common";
import type { ConnectionState, List, Project, RepoCreds, Repository } from "./types";

const repoKey = (r: Repository) => `${r.project ?? ""}|${r.repo}`;

function Status({ state }: { state?: ConnectionState }) {
  const status = state?.status ?? "Unknown";
  return (
    <span className={`badge conn-${status}`} data-connection={status} title={state?.message || undefined}>
      {status}
    </span>
  );
}

function RepoRow({
  repo,
  state,
  onEdit,
  onDeleted,
}: {
  repo: Repository;
  state?: ConnectionState;
  onEdit: () => void;
  onDeleted: () => void;
}) {
  const object = repo.project ? `${repo.project}/${repo.repo}` : repo.repo;
  const canDelete = useCan("repositories", "delete", object);
  const canUpdate = useCan("repositories", "update", object);
  const noUpdate = canUpdate === false ? denied("update", object, "repositories") : undefined;
  const query = repo.project ? `?appProject=${encodeURIComponent(repo.project)}` : "";
  return (
    <tr data-testid={`repo-${repo.repo}`}>
      <td>{repo.type ?? "git"}</td>
      <td>{repo.name}</td>
      <td className="wrap">{repo.repo}</td>
      <td>{repo.project}</td>
      <td>
        <Status state={state ?? repo.connectionState} />
        {state?.status === "Failed" && <div className="small error">{state.message}</div>}
      </td>
      <td>
        <div className="row-actions">
          <button
            onClick={onEdit}
            disabled={!!noUpdate}
            title={noUpdate ?? `Edit repository ${repo.repo}`}
            aria-label={`Edit repository ${repo.repo}`}
          >
            Edit
          </button>
          <DeleteButton
            what={`repository ${repo.repo}`}
            reason={canDelete === false ? denied("delete", object, "repositories") : undefined}
            onDelete={async () => {
              await del(`/api/v1/repositories/${encodeURIComponent(repo.repo)}${query}`);
              onDeleted();
            }}
          />
        </div>
      </td>
    </tr>
  );
}

function TemplateRow({ creds, onDeleted }: { creds: RepoCreds; onDeleted: () => void }) {
  const canDelete = useCan("repositories", "delete", creds.url);
  return (
    <tr data-testid={`repocreds-${creds.url}`}>
      <td>{creds.type ?? "git"}</td>
      <td className="wrap">{creds.url}</td>
      <td>{creds.username}</td>
      <td>
        <DeleteButton
          what={`credential template ${creds.url}`}
          reason={canDelete === false ? denied("delete", creds.url, "repositories") : undefined}
          onDelete={async () => {
            await del(`/api/v1/repocreds/${encodeURIComponent(creds.url)}`);
            onDeleted();
          }}
        />
      </td>
    </tr>
  );
}

export function Repositories() {
  const repos = useLoad(() => api<List<Repository>>("/api/v1/repositories"), []);
  const templates = useLoad(() => api<List<RepoCreds>>("/api/v1/repocreds"), []);
  const projects = useLoad(() => api<List<Project>>("/api/v1/projects"), []);
  const [states, setStates] = useState<Map<string, ConnectionState>>(new Map());
  const [checking, setChecking] = useState(false);
  const [checkError, setCheckError] = useState<string>();
  const [connecting, setConnecting] = useState(false);
  const [editing, setEditing] = useState<Repository>();
  const canCreate = useCan("repositories", "create", "*");

  // Argo CD's list without cache: the server tries each repository now.
  const check = () => {
    setChecking(true);
    api<List<Repository>>("/api/v1/repositories?forceRefresh=true")
      .then((list) => {
        setStates(new Map((list.items ?? []).map((r) => [repoKey(r), r.connectionState!])));
        setCheckError(undefined);
      })
      .catch((err) => setCheckError(err.message))
      .finally(() => setChecking(false));
  };
  useEffect(check, [repos.data]);
  const reload = () => {
    repos.reload();
    templates.reload();
  };
  const noCreate = canCreate === false ? denied("create", "*", "repositories") : undefined;

  return (
    <section className="page settings">
      <div className="toolbar">
        <h1>Repositories</h1>
        <div className="actions">
          <button className="primary" onClick={() => setConnecting(true)} disabled={!!noCreate} title={noCreate}>
            Connect repo
          </button>
          <button onClick={check} disabled={checking}>
            {checking ? "Checking…" : "Refresh connections"}
          </button>
        </div>
      </div>
      {noCreate && <p className="denied">{noCreate}</p>}
      <Alert text={repos.error ?? checkError} />
      <table className="table" data-testid="repositories">
        <thead>
          <tr>
            <th>Type</th>
            <th>Name</th>
            <th>Repository</th>
            <th>Project</th>
            <th>Connection</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {repos.data?.items?.map((repo) => (
            <RepoRow
              key={repoKey(repo)}
              repo={repo}
              state={states.get(repoKey(repo))}
              onEdit={() => setEditing(repo)}
              onDeleted={reload}
            />
          ))}
        </tbody>
      </table>
      {repos.data && !repos.data.items?.length && <p className="empty">No repositories connected.</p>}

      <h2>Credential templates</h2>
      <p className="small">Repositories whose URL starts with a template's use its credentials.</p>
      <Alert text={templates.error} />
      <table className="table" data-testid="repocreds">
        <thead>
          <tr>
            <th>Type</th>
            <th>URL prefix</th>
            <th>Username</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {templates.data?.items?.map((creds) => (
            <TemplateRow key={creds.url} creds={creds} onDeleted={reload} />
          ))}
        </tbody>
      </table>
      {(connecting || editing) && (
        <ConnectRepo
          key={editing ? repoKey(editing) : "new"}
          projects={(projects.data?.items ?? []).map((p) => p.metadata.name)}
          existing={editing}
          onClose={() => {
            setConnecting(false);
            setEditing(undefined);
          }}
          onDone={() => {
            setConnecting(false);
            setEditing(undefined);
            reload();
          }}
        />
      )}
    </section>
  );
}
