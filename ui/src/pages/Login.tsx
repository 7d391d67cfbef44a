// Local accounts log in with a password (POST /api/v1/session sets the session cookie); with
// `oidc.config` an SSO button starts the provider's login. Either way the user comes back to
// where they were (`return_url`).

import { useState, type FormEvent } from "react";
import { useNavigate, useSearchParams } from "react-router";
import { ApiError, post, safeReturnPath } from "../api";
import { useSession } from "../session";

export function Login() {
  const { settings, reload } = useSession();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const returnPath = safeReturnPath(params.get("return_url"));
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await post("/api/v1/session", { username, password });
      await reload();
      navigate(returnPath, { replace: true });
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  const sso = settings?.oidcConfig;
  return (
    <main className="login">
      <h1>ferry</h1>
      {!settings?.userLoginsDisabled && (
        <form onSubmit={submit} aria-label="Log in">
          <label>
            Username
            <input
              name="username"
              autoComplete="username"
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              required
            />
          </label>
          <label>
            Password
            <input
              name="password"
              type="password"
              autoComplete="current-password"
              value={password}
              onChange={(e) => setPassword(e.target.value)}
              required
            />
          </label>
          {error && (
            <p role="alert" className="error">
              {error}
            </p>
          )}
          <button type="submit" className="primary" disabled={busy}>
            Sign in
          </button>
        </form>
      )}
      {sso && (
        <a
          className="button sso"
          href={`/auth/login?return_url=${encodeURIComponent(returnPath)}`}
          data-testid="sso-login"
        >
          Log in via {sso.name || "SSO"}
        </a>
      )}
    </main>
  );
}
