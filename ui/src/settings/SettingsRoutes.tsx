// Settings: Argo CD's overview of its settings pages, and their routes (loaded on demand, so
// the applications pages do not carry them).

import { Link, Route, Routes } from "react-router";
import { AccountDetails, Accounts } from "./Accounts";
import { ClusterDetails, Clusters } from "./Clusters";
import { ProjectDetails } from "./ProjectDetails";
import { Projects } from "./Projects";
import { Repositories } from "./Repositories";
import "./settings.css";

const PAGES: [string, string, string][] = [
  ["repos", "Repositories", "Git, Helm and OCI repositories, and credential templates"],
  ["clusters", "Clusters", "The clusters apps are deployed to"],
  ["projects", "Projects", "Sources, destinations, resources, roles and their tokens, sync windows"],
  ["accounts", "Accounts", "Local accounts and their API tokens"],
];

function Overview() {
  return (
    <section className="page settings">
      <h1>Settings</h1>
      <ul className="overview">
        {PAGES.map(([path, title, what]) => (
          <li key={path}>
            <Link to={`/settings/${path}`}>{title}</Link>
            <span>{what}</span>
          </li>
        ))}
        <li>
          <Link to="/user-info">User info</Link>
          <span>Who you are logged in as</span>
        </li>
      </ul>
    </section>
  );
}

export default function SettingsRoutes() {
  return (
    <Routes>
      <Route index element={<Overview />} />
      <Route path="repos" element={<Repositories />} />
      <Route path="clusters" element={<Clusters />} />
      <Route path="clusters/:server" element={<ClusterDetails />} />
      <Route path="projects" element={<Projects />} />
      <Route path="projects/:name" element={<ProjectDetails />} />
      <Route path="accounts" element={<Accounts />} />
      <Route path="accounts/:name" element={<AccountDetails />} />
    </Routes>
  );
}
