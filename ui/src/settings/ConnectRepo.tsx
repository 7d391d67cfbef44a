// Argo CD's "Connect Repo": over SSH or HTTPS, a git, Helm or OCI repository with the settings
// Argo CD offers. A git repository's access is tested first (ValidateAccess), so one that cannot
// be reached is not saved; the same form saves a credential template instead. Credentials go in
// and are never shown again. With `existing`, the same form edits a saved repository (Argo CD's
// UpdateRepository, which replaces the saved settings: credentials must be entered again).

import { useState, type FormEvent } from "react";
import { post, put } from "../api";
import { Alert, Check, TextArea, TextField, useAction } from "./common";
import type { Repository } from "./types";

type Method = "https" | "ssh";

const EMPTY = {
  type: "git",
  name: "",
  project: "",
  url: "",
  username: "",
  password: "",
  bearerToken: "",
  sshPrivateKey: "",
  tlsClientCertData: "",
  tlsClientCertKey: "",
  insecure: false,
  forceHttpBasicAuth: false,
  enableLfs: false,
  enableOCI: false,
  insecureOCIForceHttp: false,
  proxy: "",
  noProxy: "",
};
type Fields = typeof EMPTY;

/** The form filled with what the server shows of a saved repository (no credentials). */
function fieldsOf(repo: Repository): Fields {
  return {
    ...EMPTY,
    type: repo.type ?? "git",
    name: repo.name ?? "",
    project: repo.project ?? "",
    url: repo.repo,
    username: repo.username ?? "",
    insecure: !!repo.insecure,
    forceHttpBasicAuth: !!repo.forceHttpBasicAuth,
    enableLfs: !!repo.enableLfs,
    enableOCI: !!repo.enableOCI,
    insecureOCIForceHttp: !!repo.insecureOCIForceHttp,
    proxy: repo.proxy ?? "",
    noProxy: repo.noProxy ?? "",
  };
}

/** SSH URLs: `ssh://...` or scp-like `user@host:path`. */
const isSsh = (url: string) => url.startsWith("ssh://") || /^[^/:]+@[^/:]+:/.test(url);

/** Argo CD's request body for `method`: only the fields that method and type have. */
function body(method: Method, f: Fields, urlField: "repo" | "url"): Record<string, unknown> {
  const common = {
    [urlField]: f.url.trim(),
    type: method === "ssh" ? "git" : f.type,
    name: f.name || undefined,
    project: f.project || undefined,
    insecure: f.insecure || undefined,
    proxy: f.proxy || undefined,
    noProxy: f.noProxy || undefined,
  };
  if (method === "ssh") {
    return { ...common, sshPrivateKey: f.sshPrivateKey || undefined, enableLfs: f.enableLfs || undefined };
  }
  return {
    ...common,
    username: f.username || undefined,
    password: f.password || undefined,
    bearerToken: (f.type === "git" && f.bearerToken) || undefined,
    tlsClientCertData: f.tlsClientCertData || undefined,
    tlsClientCertKey: f.tlsClientCertKey || undefined,
    forceHttpBasicAuth: f.forceHttpBasicAuth || undefined,
    enableLfs: (f.type === "git" && f.enableLfs) || undefined,
    enableOCI: (f.type === "helm" && f.enableOCI) || undefined,
    insecureOCIForceHttp: (f.type === "oci" && f.insecureOCIForceHttp) || undefined,
  };
}

export function ConnectRepo({
  projects,
  existing,
  onDone,
  onClose,
}: {
  projects: string[];
  existing?: Repository;
  onDone: () => void;
  onClose: () => void;
}) {
  const [method, setMethod] = useState<Method>(existing && isSsh(existing.repo) ? "ssh" : "https");
  const [f, setFields] = useState<Fields>(existing ? fieldsOf(existing) : EMPTY);
  const { run, error, busy } = useAction();
  const set =
    <K extends keyof Fields>(key: K) =>
    (value: Fields[K]) =>
      setFields((current) => ({ ...current, [key]: value }));
  const git = method === "ssh" || f.type === "git";

  async function connect(event: FormEvent) {
    event.preventDefault();
    const repo = body(method, f, "repo");
    const path = `/api/v1/repositories/${encodeURIComponent(f.url.trim())}`;
    const ok = await run(async () => {
      if (git) await post(`${path}/validate`, repo);
      if (existing) await put(path, repo);
      else await post("/api/v1/repositories", repo);
    });
    if (ok) onDone();
  }

  async function saveTemplate() {
    if (await run(() => post("/api/v1/repocreds", body(method, f, "url")))) onDone();
  }

  return (
    <div className="modal-backdrop">
      <form
        className="modal wide"
        role="dialog"
        aria-label={existing ? "Edit repository" : "Connect repository"}
        onSubmit={connect}
      >
        <h2>{existing ? `Edit repository ${existing.repo}` : "Connect repository"}</h2>
        {existing && (
          <p className="small" data-testid="credentials-note">
            Saved credentials are not shown: enter them again, or the repository is saved without
            them.
          </p>
        )}
        <fieldset disabled={!!existing}>
          <legend>Connection method</legend>
          {(["https", "ssh"] as Method[]).map((m) => (
            <label key={m} className="check">
              <input type="radio" name="method" value={m} checked={method === m} onChange={() => setMethod(m)} />
              {m === "https" ? "Via HTTP/HTTPS" : "Via SSH"}
            </label>
          ))}
        </fieldset>
        {method === "https" && (
          <label>
            Type
            <select
              name="type"
              value={f.type}
              disabled={!!existing}
              onChange={(e) => set("type")(e.target.value)}
            >
              <option value="git">git</option>
              <option value="helm">helm</option>
              <option value="oci">oci</option>
            </select>
          </label>
        )}
        <TextField label="Name (optional for git)" name="name" value={f.name} onChange={set("name")} />
        <label>
          Project (any project when empty)
          <select
            name="project"
            value={f.project}
            disabled={!!existing}
            title={existing ? "A repository is saved per project: connect it again for another" : undefined}
            onChange={(e) => set("project")(e.target.value)}
          >
            <option value="">—</option>
            {projects.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <TextField
          label="Repository URL"
          name="url"
          value={f.url}
          onChange={set("url")}
          readOnly={!!existing}
          required
          placeholder={method === "ssh" ? "git@github.com:org/repo.git" : "https://github.com/org/repo.git"}
        />
        {method === "ssh" ? (
          <TextArea label="SSH private key" name="sshPrivateKey" value={f.sshPrivateKey} onChange={set("sshPrivateKey")} />
        ) : (
          <>
            <TextField label="Username" name="username" value={f.username} onChange={set("username")} />
            <TextField
              label="Password"
              name="password"
              type="password"
              value={f.password}
              onChange={set("password")}
              required={!!existing && !!f.username}
            />
            {f.type === "git" && (
              <TextField
                label="Bearer token (Bitbucket Data Center)"
                name="bearerToken"
                type="password"
                value={f.bearerToken}
                onChange={set("bearerToken")}
              />
            )}
            <TextArea
              label="TLS client certificate (PEM)"
              name="tlsClientCertData"
              value={f.tlsClientCertData}
              onChange={set("tlsClientCertData")}
            />
            <TextArea
              label="TLS client certificate key (PEM)"
              name="tlsClientCertKey"
              value={f.tlsClientCertKey}
              onChange={set("tlsClientCertKey")}
            />
          </>
        )}
        <Check
          label={method === "ssh" ? "Skip host key verification" : "Skip server verification"}
          name="insecure"
          checked={f.insecure}
          onChange={set("insecure")}
        />
        {method === "https" && (
          <Check
            label="Force HTTP basic auth"
            name="forceHttpBasicAuth"
            checked={f.forceHttpBasicAuth}
            onChange={set("forceHttpBasicAuth")}
          />
        )}
        {git && <Check label="Enable LFS support" name="enableLfs" checked={f.enableLfs} onChange={set("enableLfs")} />}
        {method === "https" && f.type === "helm" && (
          <Check label="Enable OCI" name="enableOCI" checked={f.enableOCI} onChange={set("enableOCI")} />
        )}
        {method === "https" && f.type === "oci" && (
          <Check
            label="Insecure: force plain HTTP"
            name="insecureOCIForceHttp"
            checked={f.insecureOCIForceHttp}
            onChange={set("insecureOCIForceHttp")}
          />
        )}
        <TextField label="Proxy" name="proxy" value={f.proxy} onChange={set("proxy")} placeholder="http://proxy:3128" />
        <TextField label="No proxy" name="noProxy" value={f.noProxy} onChange={set("noProxy")} />
        <Alert text={error} />
        <footer>
          <button type="submit" className="primary" disabled={busy}>
            {existing ? (busy ? "Saving…" : "Save") : busy ? "Connecting…" : "Connect"}
          </button>
          {!existing && (
            <button type="button" onClick={saveTemplate} disabled={busy || !f.url}>
              Save as credential template
            </button>
          )}
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        </footer>
      </form>
    </div>
  );
}
