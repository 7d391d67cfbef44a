import { StrictMode, Suspense, lazy } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter, Navigate, Route, Routes } from "react-router";
import { SessionProvider } from "./session";
import { Layout } from "./components/Layout";
import { Login } from "./pages/Login";
import { AppList } from "./pages/AppList";
import { AppDetails } from "./pages/AppDetails";
import { UserInfoPage } from "./pages/UserInfo";
import "./styles.css";

// Loaded when first opened: the applications pages do not carry them.
const SettingsRoutes = lazy(() => import("./settings/SettingsRoutes"));
const AppEditor = lazy(() => import("./appEdit/AppEditor"));
const loading = <p className="empty">Loading…</p>;

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <BrowserRouter>
      <SessionProvider>
        <Routes>
          <Route path="/login" element={<Login />} />
          <Route element={<Layout />}>
            <Route path="/" element={<Navigate to="/applications" replace />} />
            <Route path="/applications" element={<AppList />} />
            <Route path="/applications/:name" element={<AppDetails />} />
            <Route path="/new-application" element={<Suspense fallback={loading}><AppEditor /></Suspense>} />
            <Route path="/applications/:name/edit" element={<Suspense fallback={loading}><AppEditor /></Suspense>} />
            <Route path="/settings/*" element={<Suspense fallback={loading}><SettingsRoutes /></Suspense>} />
            <Route path="/user-info" element={<UserInfoPage />} />
            <Route path="*" element={<p className="empty">No such page.</p>} />
          </Route>
        </Routes>
      </SessionProvider>
    </BrowserRouter>
  </StrictMode>,
);
