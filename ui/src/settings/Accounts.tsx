// Settings → Accounts: the local accounts, and an account's API tokens, which the account itself
// may always generate and delete (Argo CD's rule) and others only with `accounts, update`.

import { useState } from "react";
import { Link, useParams } from "react-router";
import { api, del, post } from "../api";
import { denied, useCan } from "../can";
import { useSession } from "../session";
import { Alert, DeleteButton, Dialog, TextField, useLoad, when } from "./common";
import type { Account, List } from "./types";

export function Accounts() {
  const { data, error } = useLoad(() => api<List<Account>>("/api/v1/account"), []);
  return (
    <section className="page settings">
      <h1>Accounts</h1>
      <Alert text={error} />
      <table className="table" data-testid="accounts">
        <thead>
          <tr>
            <th>Name</th>
            <th>Enabled</th>
            <th>Capabilities</th>
          </tr>
        </thead>
        <tbody>
          {data?.items?.map((a) => (
            <tr key={a.name} data-testid={`account-${a.name}`}>
              <td>
                <Link to={`/settings/accounts/${encodeURIComponent(a.name)}`}>{a.name}</Link>
              </td>
              <td>{a.enabled ? "yes" : "no"}</td>
              <td>{a.capabilities?.join(", ")}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function AccountDetails() {
  const name = useParams().name!;
  const { user } = useSession();
  const path = `/api/v1/account/${encodeURIComponent(name)}`;
  const { data: account, error, reload } = useLoad(() => api<Account>(path), [path]);
  // The server reads accounts from argocd-secret through a watch, so a change shows a moment
  // after it is made: read again now and a little later.
  const reloadSoon = () => [0, 1000, 3000].forEach((ms) => window.setTimeout(reload, ms));
  const own = user?.username === name;
  const canUpdate = useCan("accounts", "update", own ? undefined : name);
  const [creating, setCreating] = useState(false);
  const [expiresIn, setExpiresIn] = useState("");
  const [issued, setIssued] = useState<string>();
  const noUpdate = !own && canUpdate === false ? denied("update", name, "accounts") : undefined;
  const noApiKey =
    account && !account.capabilities?.includes("apiKey")
      ? `Account ${name} does not have the apiKey capability`
      : undefined;
  const reason = noUpdate ?? noApiKey;

  return (
    <section className="page settings">
      <nav className="crumbs" aria-label="Breadcrumb">
        <Link to="/settings/accounts">Accounts</Link> / {name}
      </nav>
      <h1>{name}</h1>
      <Alert text={error} />
      {account && (
        <>
          <dl className="summary">
            <dt>Enabled</dt>
            <dd>{account.enabled ? "yes" : "no"}</dd>
            <dt>Capabilities</dt>
            <dd>{account.capabilities?.join(", ") || "none"}</dd>
          </dl>
          <h2>Tokens</h2>
          {reason && <p className="denied">{reason}</p>}
          <table className="table" data-testid="account-tokens">
            <thead>
              <tr>
                <th>ID</th>
                <th>Issued</th>
                <th>Expires</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {account.tokens?.map((t) => (
                <tr key={t.id}>
                  <td>{t.id}</td>
                  <td>{when(t.issuedAt)}</td>
                  <td>{when(t.expiresAt)}</td>
                  <td>
                    <DeleteButton
                      what={`token ${t.id}`}
                      reason={noUpdate}
                      onDelete={async () => {
                        await del(`${path}/token/${encodeURIComponent(t.id)}`);
                        reloadSoon();
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <button className="primary" onClick={() => setCreating(true)} disabled={!!reason} title={reason}>
            Generate token
          </button>
          {issued && (
            <div className="issued" data-testid="issued-token">
              <p>The new token, shown only now:</p>
              <textarea readOnly value={issued} rows={3} aria-label="New token" />
              <button onClick={() => setIssued(undefined)}>Done</button>
            </div>
          )}
        </>
      )}
      {creating && (
        <Dialog
          title={`Generate a token for ${name}`}
          submit="Generate"
          onClose={() => setCreating(false)}
          onSubmit={async () => {
            const seconds = expiresIn ? Number(expiresIn) : 0;
            if (!Number.isInteger(seconds) || seconds < 0) throw new Error("Expires in: a number of seconds");
            const answer = await post<{ token: string }>(`${path}/token`, { expiresIn: seconds });
            setIssued(answer.token);
            reloadSoon();
          }}
        >
          <TextField label="Expires in (seconds, empty: never)" name="expiresIn" value={expiresIn} onChange={setExpiresIn} />
        </Dialog>
      )}
    </section>
  );
}
