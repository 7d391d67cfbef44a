// Who is logged in and the server's public settings, for every page.

import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { api } from "./api";
import type { Settings, UserInfo } from "./types";

interface Session {
  user?: UserInfo;
  settings?: Settings;
  reload: () => Promise<void>;
}

const SessionContext = createContext<Session>({ reload: async () => {} });

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<UserInfo>();
  const [settings, setSettings] = useState<Settings>();
  const reload = useCallback(async () => {
    const [info, found] = await Promise.all([
      api<UserInfo>("/api/v1/session/userinfo"),
      api<Settings>("/api/v1/settings"),
    ]);
    setUser(info);
    setSettings(found);
  }, []);
  useEffect(() => {
    reload().catch(() => setUser({ loggedIn: false }));
  }, [reload]);
  // argocd-cm's `ui.cssurl`: the operator's own styles on top of the UI's.
  useEffect(() => {
    if (!settings?.uiCssURL) return;
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = settings.uiCssURL;
    document.head.appendChild(link);
    return () => link.remove();
  }, [settings?.uiCssURL]);
  return (
    <SessionContext.Provider value={{ user, settings, reload }}>{children}</SessionContext.Provider>
  );
}

export const useSession = () => useContext(SessionContext);
