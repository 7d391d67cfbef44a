// Settings → Projects: the AppProjects, a new one (name and description, as Argo CD's panel),
// and delete; each opens its details.

import { useState } from "react";
import { Link } from "react-router";
import { api, del, post } from "../api";
import { denied, useCan } from "../can";
import { Alert, DeleteButton, Dialog, TextField, useLoad } from "./common";
import type { List, Project } from "./types";

function ProjectRow({ project, onDeleted }: { project: Project; onDeleted: () => void }) {
  const name = project.metadata.name;
  const canDelete = useCan("projects", "delete", name);
  return (
    <tr data-testid={`project-${name}`}>
      <td>
        <Link to={`/settings/projects/${encodeURIComponent(name)}`}>{name}</Link>
      </td>
      <td>{project.spec.description}</td>
      <td>
        <DeleteButton
          what={`project ${name}`}
          reason={canDelete === false ? denied("delete", name, "projects") : undefined}
          onDelete={async () => {
            await del(`/api/v1/projects/${encodeURIComponent(name)}`);
            onDeleted();
          }}
        />
      </td>
    </tr>
  );
}

export function Projects() {
  const { data, error, reload } = useLoad(() => api<List<Project>>("/api/v1/projects"), []);
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const canCreate = useCan("projects", "create", "*");
  const noCreate = canCreate === false ? denied("create", "*", "projects") : undefined;
  return (
    <section className="page settings">
      <div className="toolbar">
        <h1>Projects</h1>
        <div className="actions">
          <button className="primary" onClick={() => setCreating(true)} disabled={!!noCreate} title={noCreate}>
            New project
          </button>
        </div>
      </div>
      {noCreate && <p className="denied">{noCreate}</p>}
      <Alert text={error} />
      <table className="table" data-testid="projects">
        <thead>
          <tr>
            <th>Name</th>
            <th>Description</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {data?.items?.map((p) => (
            <ProjectRow key={p.metadata.name} project={p} onDeleted={reload} />
          ))}
        </tbody>
      </table>
      {creating && (
        <Dialog
          title="New project"
          submit="Create"
          onClose={() => setCreating(false)}
          onSubmit={async () => {
            await post("/api/v1/projects", {
              project: { metadata: { name: name.trim() }, spec: { description: description || undefined } },
            });
            reload();
          }}
        >
          <TextField label="Name" name="name" value={name} onChange={setName} required />
          <TextField label="Description" name="description" value={description} onChange={setDescription} />
        </Dialog>
      )}
    </section>
  );
}
