// Creating and editing an app, as Argo CD's create panel and its app edit: a form (general,
// sync policy and options, source with its Helm, Kustomize or directory settings, destination)
// and a YAML editor of the whole Application, switched back and forth without losing anything.
// Creates POST the Application, edits PUT it back (Argo CD's Create and UpdateApplication).

import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router";
import { stringify } from "yaml";
import { api, post, put } from "../api";
import { denied, useCan } from "../can";
import { Alert, Check, TextArea, TextField, message, useLoad } from "../settings/common";
import type { Cluster, List, Project, Repository } from "../settings/types";
import "../settings/settings.css";
import {
  RESOURCES_FINALIZER,
  SYNC_OPTIONS,
  editable,
  fromYaml,
  newApp,
  sourceType,
  type AppObject,
  type AppSource,
  type HelmParameter,
  type SourceType,
} from "./model";

/** Rows of name/value pairs or single values, with add and remove. */
function Rows<T>({
  legend,
  rows,
  empty,
  render,
  onChange,
}: {
  legend: string;
  rows: T[];
  empty: T;
  render: (row: T, set: (row: T) => void, index: number) => React.ReactNode;
  onChange: (rows: T[]) => void;
}) {
  return (
    <fieldset data-testid={legend.toLowerCase().replace(/ /g, "-")}>
      <legend>{legend}</legend>
      {rows.map((row, i) => (
        <div className="row" key={i}>
          {render(row, (next) => onChange(rows.map((r, j) => (j === i ? next : r))), i)}
          <button type="button" aria-label={`Remove ${legend} ${i + 1}`} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
            ×
          </button>
        </div>
      ))}
      <button type="button" onClick={() => onChange([...rows, empty])}>
        Add
      </button>
    </fieldset>
  );
}

function SourceForm({
  source,
  repos,
  onChange,
}: {
  source: AppSource;
  repos: Repository[];
  onChange: (source: AppSource) => void;
}) {
  const type = sourceType(source);
  const helmRepo = repos.find((r) => r.repo === source.repoURL)?.type === "helm";
  const set = (patch: Partial<AppSource>) => onChange({ ...source, ...patch });
  const setType = (next: SourceType) => {
    const { helm: _h, kustomize: _k, directory: _d, ...rest } = source;
    onChange({
      ...rest,
      ...(next === "helm" && { helm: source.helm ?? {} }),
      ...(next === "kustomize" && { kustomize: source.kustomize ?? {} }),
      ...(next === "directory" && { directory: source.directory ?? {} }),
    });
  };
  const helm = source.helm ?? {};
  const setHelm = (patch: Partial<NonNullable<AppSource["helm"]>>) => set({ helm: { ...helm, ...patch } });
  const kustomize = source.kustomize ?? {};
  return (
    <fieldset>
      <legend>Source</legend>
      <label>
        Repository URL
        <input
          name="repoURL"
          list="known-repos"
          value={source.repoURL}
          required
          onChange={(e) => set({ repoURL: e.target.value })}
        />
        <datalist id="known-repos">
          {repos.map((r) => (
            <option key={`${r.project}|${r.repo}`} value={r.repo} />
          ))}
        </datalist>
      </label>
      <TextField
        label={helmRepo || source.chart !== undefined ? "Chart version" : "Revision"}
        name="targetRevision"
        value={source.targetRevision ?? ""}
        placeholder="HEAD"
        onChange={(v) => set({ targetRevision: v || undefined })}
      />
      {helmRepo || source.chart !== undefined ? (
        <TextField label="Chart" name="chart" value={source.chart ?? ""} onChange={(v) => set({ chart: v })} />
      ) : (
        <TextField label="Path" name="path" value={source.path ?? ""} placeholder="." onChange={(v) => set({ path: v })} />
      )}
      <label>
        Tool
        <select name="sourceType" value={type} onChange={(e) => setType(e.target.value as SourceType)}>
          <option value="">Detected from the files</option>
          <option value="directory">Directory</option>
          <option value="helm">Helm</option>
          <option value="kustomize">Kustomize</option>
        </select>
      </label>
      {type === "directory" && (
        <Check
          label="Directory recurse"
          name="recurse"
          checked={!!source.directory?.recurse}
          onChange={(recurse) => set({ directory: { ...source.directory, recurse: recurse || undefined } })}
        />
      )}
      {type === "helm" && (
        <>
          <TextField
            label="Release name"
            name="releaseName"
            value={helm.releaseName ?? ""}
            onChange={(v) => setHelm({ releaseName: v || undefined })}
          />
          <TextField
            label="Values files (comma-separated)"
            name="valueFiles"
            value={(helm.valueFiles ?? []).join(", ")}
            onChange={(v) => {
              const files = v.split(",").map((f) => f.trim()).filter(Boolean);
              setHelm({ valueFiles: files.length ? files : undefined });
            }}
          />
          <TextArea label="Values (YAML)" name="values" value={helm.values ?? ""} rows={6} onChange={(v) => setHelm({ values: v || undefined })} />
          <Rows<HelmParameter>
            legend="Helm parameters"
            rows={helm.parameters ?? []}
            empty={{ name: "", value: "" }}
            onChange={(parameters) => setHelm({ parameters: parameters.length ? parameters : undefined })}
            render={(p, setP, i) => (
              <>
                <input aria-label={`Parameter ${i + 1} name`} name={`param-name-${i}`} value={p.name} placeholder="image.tag" onChange={(e) => setP({ ...p, name: e.target.value })} />
                <input aria-label={`Parameter ${i + 1} value`} name={`param-value-${i}`} value={p.value} onChange={(e) => setP({ ...p, value: e.target.value })} />
              </>
            )}
          />
        </>
      )}
      {type === "kustomize" && (
        <>
          <TextField label="Name prefix" name="namePrefix" value={kustomize.namePrefix ?? ""} onChange={(v) => set({ kustomize: { ...kustomize, namePrefix: v || undefined } })} />
          <TextField label="Name suffix" name="nameSuffix" value={kustomize.nameSuffix ?? ""} onChange={(v) => set({ kustomize: { ...kustomize, nameSuffix: v || undefined } })} />
          <Rows<string>
            legend="Kustomize images"
            rows={kustomize.images ?? []}
            empty=""
            onChange={(images) => set({ kustomize: { ...kustomize, images: images.length ? images : undefined } })}
            render={(image, setImage, i) => (
              <input aria-label={`Image ${i + 1}`} name={`image-${i}`} value={image} placeholder="nginx=nginx:1.27" onChange={(e) => setImage(e.target.value)} />
            )}
          />
        </>
      )}
    </fieldset>
  );
}

function AppForm({
  app,
  creating,
  onChange,
}: {
  app: AppObject;
  creating: boolean;
  onChange: (app: AppObject) => void;
}) {
  const projects = useLoad(() => api<List<Project>>("/api/v1/projects"), []);
  const repos = useLoad(() => api<List<Repository>>("/api/v1/repositories"), []);
  const clusters = useLoad(() => api<List<Cluster>>("/api/v1/clusters"), []);
  const spec = app.spec;
  const setSpec = (patch: Partial<AppObject["spec"]>) => onChange({ ...app, spec: { ...spec, ...patch } });
  const policy = spec.syncPolicy ?? {};
  const options = policy.syncOptions ?? [];
  const setPolicy = (patch: Partial<NonNullable<AppObject["spec"]["syncPolicy"]>>) => {
    const next = { ...policy, ...patch };
    for (const key of Object.keys(next) as (keyof typeof next)[]) if (next[key] === undefined) delete next[key];
    setSpec({ syncPolicy: Object.keys(next).length ? next : undefined });
  };
  const toggleOption = (option: string, on: boolean) => {
    const next = options.filter((o) => o !== option);
    if (on) next.push(option);
    setPolicy({ syncOptions: next.length ? next : undefined });
  };
  const finalizers = app.metadata.finalizers ?? [];
  const destination = spec.destination;
  const byName = destination.name !== undefined && destination.server === undefined;

  return (
    <>
      <fieldset>
        <legend>General</legend>
        <label>
          Application name
          <input
            name="appName"
            value={app.metadata.name}
            required
            readOnly={!creating}
            onChange={(e) => onChange({ ...app, metadata: { ...app.metadata, name: e.target.value.trim() } })}
          />
        </label>
        <label>
          Project
          <select name="project" value={spec.project} onChange={(e) => setSpec({ project: e.target.value })}>
            {[...new Set([spec.project, ...(projects.data?.items ?? []).map((p) => p.metadata.name)])].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          Sync policy
          <select
            name="syncPolicy"
            value={policy.automated ? "automatic" : "manual"}
            onChange={(e) => setPolicy({ automated: e.target.value === "automatic" ? {} : undefined })}
          >
            <option value="manual">Manual</option>
            <option value="automatic">Automatic</option>
          </select>
        </label>
        {policy.automated && (
          <>
            <Check label="Prune resources" name="prune" checked={!!policy.automated.prune} onChange={(prune) => setPolicy({ automated: { ...policy.automated, prune: prune || undefined } })} />
            <Check label="Self heal" name="selfHeal" checked={!!policy.automated.selfHeal} onChange={(selfHeal) => setPolicy({ automated: { ...policy.automated, selfHeal: selfHeal || undefined } })} />
          </>
        )}
        <Check
          label="Delete the resources with the app (finalizer)"
          name="finalizer"
          checked={finalizers.includes(RESOURCES_FINALIZER)}
          onChange={(on) => {
            const next = finalizers.filter((f) => f !== RESOURCES_FINALIZER);
            if (on) next.push(RESOURCES_FINALIZER);
            onChange({ ...app, metadata: { ...app.metadata, finalizers: next.length ? next : undefined } });
          }}
        />
      </fieldset>
      <fieldset>
        <legend>Sync options</legend>
        {SYNC_OPTIONS.map(([option, label]) => (
          <Check key={option} label={label} name={option} checked={options.includes(option)} onChange={(on) => toggleOption(option, on)} />
        ))}
        <label>
          Prune propagation policy
          <select
            name="prunePropagationPolicy"
            value={options.find((o) => o.startsWith("PrunePropagationPolicy="))?.split("=")[1] ?? ""}
            onChange={(e) => {
              const next = options.filter((o) => !o.startsWith("PrunePropagationPolicy="));
              if (e.target.value) next.push(`PrunePropagationPolicy=${e.target.value}`);
              setPolicy({ syncOptions: next.length ? next : undefined });
            }}
          >
            <option value="">Default (foreground)</option>
            <option value="foreground">foreground</option>
            <option value="background">background</option>
            <option value="orphan">orphan</option>
          </select>
        </label>
      </fieldset>
      {spec.source ? (
        <SourceForm source={spec.source} repos={repos.data?.items ?? []} onChange={(source) => setSpec({ source })} />
      ) : (
        <p className="denied">This app has several sources: edit them in YAML.</p>
      )}
      <fieldset>
        <legend>Destination</legend>
        <label>
          Cluster
          <select
            name="cluster"
            value={byName ? `name:${destination.name}` : `server:${destination.server ?? ""}`}
            onChange={(e) => {
              const [kind, ...value] = e.target.value.split(":");
              const id = value.join(":");
              setSpec({ destination: { namespace: destination.namespace, ...(kind === "name" ? { name: id } : { server: id }) } });
            }}
          >
            {(clusters.data?.items ?? []).flatMap((c) => [
              <option key={`s${c.server}`} value={`server:${c.server}`}>
                {c.server}
              </option>,
              <option key={`n${c.name}`} value={`name:${c.name}`}>
                {c.name} (by name)
              </option>,
            ])}
            {!clusters.data && <option value={byName ? `name:${destination.name}` : `server:${destination.server ?? ""}`}>{destination.name ?? destination.server}</option>}
          </select>
        </label>
        <TextField
          label="Namespace"
          name="namespace"
          value={destination.namespace ?? ""}
          onChange={(v) => setSpec({ destination: { ...destination, namespace: v || undefined } })}
        />
      </fieldset>
    </>
  );
}

export function AppEditor() {
  const editing = useParams().name;
  const navigate = useNavigate();
  const [app, setApp] = useState<AppObject>();
  const [yaml, setYaml] = useState<string>();
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!editing) {
      setApp(newApp());
      return;
    }
    api<Record<string, unknown>>(`/api/v1/applications/${encodeURIComponent(editing)}`)
      .then((found) => {
        const loaded = editable(found);
        setApp(loaded);
        if (!loaded.spec.source) setYaml(stringify(loaded));
      })
      .catch((err) => setError(message(err)));
  }, [editing]);

  const object = app && `${app.spec.project || "default"}/${app.metadata.name || "*"}`;
  const allowed = useCan("applications", editing ? "update" : "create", object);
  const reason = allowed === false ? denied(editing ? "update" : "create", object!) : undefined;

  /** The app the YAML editor holds, or the form's. */
  const current = (): AppObject => (yaml !== undefined ? fromYaml(yaml) : app!);

  function toggleYaml() {
    setError(undefined);
    if (yaml === undefined) {
      setYaml(stringify(app));
      return;
    }
    try {
      setApp(fromYaml(yaml));
      setYaml(undefined);
    } catch (err) {
      setError(message(err));
    }
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      const next = current();
      if (editing) {
        if (next.metadata.name !== editing) throw new Error("The name of an app cannot change");
        await put(`/api/v1/applications/${encodeURIComponent(editing)}?validate=true`, next);
        navigate(`/applications/${encodeURIComponent(editing)}`);
      } else {
        await post("/api/v1/applications?validate=true", next);
        navigate("/applications");
      }
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  if (!app) return error ? <Alert text={error} /> : <p className="empty">Loading…</p>;
  return (
    <section className="page settings app-editor">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/applications">Applications</Link>
        {editing && (
          <>
            {" / "}
            <Link to={`/applications/${encodeURIComponent(editing)}`}>{editing}</Link>
          </>
        )}{" "}
        / {editing ? "Edit" : "New app"}
      </nav>
      <form onSubmit={submit} aria-label={editing ? `Edit ${editing}` : "New app"}>
        <div className="toolbar">
          <h1>{editing ? `Edit ${editing}` : "New app"}</h1>
          <div className="actions">
            <button type="submit" className="primary" disabled={busy || !!reason} title={reason}>
              {editing ? "Save" : "Create"}
            </button>
            <button type="button" aria-pressed={yaml !== undefined} onClick={toggleYaml}>
              Edit as YAML
            </button>
            <button type="button" onClick={() => navigate(-1)}>
              Cancel
            </button>
          </div>
        </div>
        {reason && (
          <p className="denied" data-testid="denied">
            {reason}
          </p>
        )}
        <Alert text={error} />
        {yaml !== undefined ? (
          <TextArea label="Application (YAML)" name="yaml" value={yaml} rows={30} onChange={setYaml} />
        ) : (
          <AppForm app={app} creating={!editing} onChange={setApp} />
        )}
      </form>
    </section>
  );
}

export default AppEditor;
