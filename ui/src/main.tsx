import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter, Navigate, Route, Routes } from "react-router";
import { SessionProvider } from "./session";
import { Layout } from "./components/Layout";
import { Login } from "./pages/Login";
import { AppList } from "./pages/AppList";
import { AppDetails } from "./pages/AppDetails";
import { UserInfoPage } from "./pages/UserInfo";
import "./styles.css";

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
            <Route path="/user-info" element={<UserInfoPage />} />
            <Route path="*" element={<p className="empty">No such page.</p>} />
          </Route>
        </Routes>
      </SessionProvider>
    </BrowserRouter>
  </StrictMode>,
);
