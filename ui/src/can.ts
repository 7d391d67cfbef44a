// What RBAC lets the user do, asked of the server (`/api/v1/account/can-i`), so the UI can
// disable what would be refused and say why.

import { useEffect, useState } from "react";
import { api } from "./api";

/** Whether the user may `action` on `resource` `object`; undefined while unknown. */
export function useCan(resource: string, action: string, object?: string): boolean | undefined {
  const [allowed, setAllowed] = useState<boolean>();
  useEffect(() => {
    if (!object) return;
    const path = `/api/v1/account/can-i/${resource}/${action}/${object
      .split("/")
      .map(encodeURIComponent)
      .join("/")}`;
    api<{ value: string }>(path)
      .then((answer) => setAllowed(answer.value === "yes"))
      .catch(() => setAllowed(undefined));
  }, [resource, action, object]);
  return allowed;
}

/** The reason shown on a control RBAC denies. */
export function denied(action: string, object: string, resource = "applications"): string {
  return `Permission denied: your account may not ${action} ${resource} ${object}`;
}
