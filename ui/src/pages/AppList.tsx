// Applications as tiles or a table, narrowed by filters kept in the URL, with counts per status,
// updated live from the event stream.

import { useEffect, useMemo, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useApplications } from "../appStream";
import { FILTER_KEYS, FILTER_TITLES, counts, matches, values, type FilterKey } from "../filters";
import { HealthStatus, OperationPhase, SyncStatus } from "../components/Status";
import { primarySource, type Application } from "../types";

export function AppList() {
  const { apps, error } = useApplications();
  const [params, setParams] = useSearchParams();
  const all = useMemo(
    () => [...(apps?.values() ?? [])].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)),
    [apps],
  );
  const shown = all.filter((app) => matches(app, params));
  const view = params.get("view") === "list" ? "list" : "tiles";

  // From the URL as it is when applied, so quick successive changes (typing) all count.
  const set = (key: string, value: string) =>
    setParams(
      (current) => {
        const next = new URLSearchParams(current);
        if (value) next.set(key, value);
        else next.delete(key);
        return next;
      },
      { replace: true },
    );
  const toggle = (key: FilterKey, value: string) => {
    const current = values(params, key);
    const next = current.includes(value) ? current.filter((v) => v !== value) : [...current, value];
    set(key, next.join(","));
  };

  if (error) return <p role="alert" className="error">{error}</p>;
  if (!apps) return <p className="empty">Loading applications…</p>;
  return (
    <div className="apps-page">
      <aside className="filters" aria-label="Filters">
        <TextFilter name="search" title="Search" placeholder="name" params={params} set={set} />
        <TextFilter
          name="labels"
          title="Labels"
          placeholder="key=value,key"
          params={params}
          set={set}
        />
        {FILTER_KEYS.map((key) => (
          <fieldset key={key} data-testid={`filter-${key}`}>
            <legend>{FILTER_TITLES[key]}</legend>
            {counts(all, key).map(([value, count]) => (
              <label key={value} className="check">
                <input
                  type="checkbox"
                  checked={values(params, key).includes(value)}
                  onChange={() => toggle(key, value)}
                />
                <span className="facet">{value || "(none)"}</span>
                <span className="count">{count}</span>
              </label>
            ))}
          </fieldset>
        ))}
        {[...params.keys()].some((k) => k !== "view") && (
          <button onClick={() => setParams(view === "list" ? { view } : {}, { replace: true })}>
            Clear filters
          </button>
        )}
      </aside>
      <section className="page">
        <div className="toolbar">
          <h1>Applications</h1>
          <Link className="button primary" to="/new-application">
            New app
          </Link>
          <StatusCounts apps={shown} />
          <div role="group" aria-label="View" className="views">
            <button aria-pressed={view === "tiles"} onClick={() => set("view", "")}>
              Tiles
            </button>
            <button aria-pressed={view === "list"} onClick={() => set("view", "list")}>
              List
            </button>
          </div>
        </div>
        {shown.length === 0 ? (
          <p className="empty">
            {all.length === 0 ? "No applications yet." : "No applications match the filters."}
          </p>
        ) : view === "tiles" ? (
          <div className="tiles">
            {shown.map((app) => (
              <Tile key={app.metadata.name} app={app} />
            ))}
          </div>
        ) : (
          <AppTable apps={shown} />
        )}
      </section>
    </div>
  );
}

/** A text field whose value is kept in the URL; typed text is its own until the URL has it. */
function TextFilter(props: {
  name: string;
  title: string;
  placeholder: string;
  params: URLSearchParams;
  set: (key: string, value: string) => void;
}) {
  const inUrl = props.params.get(props.name) ?? "";
  const [text, setText] = useState(inUrl);
  // The URL changed by other means (Clear filters, a link): show what it says.
  useEffect(() => setText(inUrl), [inUrl]);
  return (
    <label>
      {props.title}
      <input
        type={props.name === "search" ? "search" : "text"}
        name={props.name}
        value={text}
        placeholder={props.placeholder}
        onChange={(e) => {
          setText(e.target.value);
          props.set(props.name, e.target.value);
        }}
      />
    </label>
  );
}

function StatusCounts({ apps }: { apps: Application[] }) {
  const by = (key: FilterKey) => counts(apps, key);
  return (
    <p className="counts" data-testid="status-counts">
      <span>{apps.length} apps</span>
      {by("sync").map(([status, n]) => (
        <span key={status} data-count-sync={status}>
          {status} {n}
        </span>
      ))}
      {by("health").map(([status, n]) => (
        <span key={status} data-count-health={status}>
          {status} {n}
        </span>
      ))}
    </p>
  );
}

function destination(app: Application) {
  const { server, name, namespace } = app.spec.destination;
  return `${name || server || ""}${namespace ? ` / ${namespace}` : ""}`;
}

function Tile({ app }: { app: Application }) {
  const source = primarySource(app);
  const name = app.metadata.name;
  return (
    <article className="tile" data-testid={`app-${name}`}>
      <h2>
        <Link to={`/applications/${encodeURIComponent(name)}`}>{name}</Link>
      </h2>
      <p>
        <SyncStatus status={app.status?.sync?.status} />{" "}
        <HealthStatus status={app.status?.health?.status} />{" "}
        <OperationPhase phase={app.status?.operationState?.phase} />
      </p>
      <dl>
        <dt>Project</dt>
        <dd>{app.spec.project || "default"}</dd>
        <dt>Repository</dt>
        <dd className="wrap">{source?.repoURL}</dd>
        <dt>{source?.chart ? "Chart" : "Path"}</dt>
        <dd>{source?.chart ?? source?.path}</dd>
        <dt>Revision</dt>
        <dd>{source?.targetRevision || "HEAD"}</dd>
        <dt>Destination</dt>
        <dd>{destination(app)}</dd>
      </dl>
    </article>
  );
}

function AppTable({ apps }: { apps: Application[] }) {
  return (
    <table className="table">
      <thead>
        <tr>
          <th>Name</th>
          <th>Project</th>
          <th>Sync</th>
          <th>Health</th>
          <th>Repository</th>
          <th>Destination</th>
        </tr>
      </thead>
      <tbody>
        {apps.map((app) => (
          <tr key={app.metadata.name} data-testid={`app-${app.metadata.name}`}>
            <td>
              <Link to={`/applications/${encodeURIComponent(app.metadata.name)}`}>
                {app.metadata.name}
              </Link>
            </td>
            <td>{app.spec.project || "default"}</td>
            <td>
              <SyncStatus status={app.status?.sync?.status} />
            </td>
            <td>
              <HealthStatus status={app.status?.health?.status} />
            </td>
            <td className="wrap">{primarySource(app)?.repoURL}</td>
            <td>{destination(app)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
