// The frame of every page after login: navigation, the user, logout. Pages load only once the
// session is known; without one the user goes to the login page and comes back here after.

import { useEffect } from "react";
import { NavLink, Outlet } from "react-router";
import { toLogin } from "../api";
import { useSession } from "../session";

export function Layout() {
  const { user } = useSession();
  useEffect(() => {
    if (user && !user.loggedIn) toLogin();
  }, [user]);
  if (!user?.loggedIn) return <p className="empty">Loading…</p>;
  return (
    <div className="layout">
      <header className="topbar">
        <span className="brand">ferry</span>
        <nav aria-label="Main">
          <NavLink to="/applications">Applications</NavLink>
          <NavLink to="/settings">Settings</NavLink>
          <NavLink to="/user-info">User info</NavLink>
        </nav>
        <span className="user" data-testid="current-user">
          {user.username}
        </span>
        {/* Argo CD's logout: revokes the token, clears the cookie, ends an SSO session too. */}
        <a className="button" href="/auth/logout">
          Log out
        </a>
      </header>
      <main>
        <Outlet />
      </main>
    </div>
  );
}
