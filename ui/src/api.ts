// The one way the UI talks to ferry-server: same-origin requests carrying the session cookie,
// JSON bodies (the server refuses cookie-authenticated writes of any other type, against
// cross-site forms), the server's own message on failure, and back to the login page when the
// session has ended.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Where the user is now, to come back to after logging in. */
export function currentLocation(): string {
  return window.location.pathname + window.location.search;
}

/** A return path that stays on this server (`/x`, never `//host` or a full URL). */
export function safeReturnPath(path: string | null): string {
  if (!path || !path.startsWith("/") || path.startsWith("//") || path.includes("\\")) {
    return "/applications";
  }
  return path;
}

/** The login page, remembering where the user was. */
export function toLogin(): void {
  if (window.location.pathname === "/login") return;
  window.location.assign(`/login?return_url=${encodeURIComponent(currentLocation())}`);
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  // Writes without a body (DELETE) too: the server refuses cookie-authenticated writes of any
  // other type, so that no cross-site form can make them.
  headers.set("Content-Type", "application/json");
  const response = await fetch(path, { credentials: "same-origin", ...init, headers });
  const text = await response.text();
  let body: unknown = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { message: text };
  }
  if (!response.ok) {
    const { message, error } = (body ?? {}) as { message?: string; error?: string };
    if (response.status === 401 && !path.startsWith("/api/v1/session")) toLogin();
    throw new ApiError(response.status, message || error || response.statusText);
  }
  return body as T;
}

export const post = <T>(path: string, body: unknown) =>
  api<T>(path, { method: "POST", body: JSON.stringify(body) });
export const put = <T>(path: string, body: unknown) =>
  api<T>(path, { method: "PUT", body: JSON.stringify(body) });
export const del = <T>(path: string) => api<T>(path, { method: "DELETE" });
