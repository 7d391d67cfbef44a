// The diff between two deployments of an app: its manifests rendered at each one's revision
// (`GET /api/v1/applications/{name}/manifests?revision=`), all in one text, in a stable order.

import { useEffect, useState } from "react";
import { stringify } from "yaml";
import { api } from "../api";
import type { HistoryEntry } from "../types";
import { ManifestDiff } from "./ManifestDiff";

/** All manifests of the app at a revision as one YAML text, in a stable order. */
async function manifestsAt(appName: string, revision: string): Promise<string> {
  const answer = await api<{ manifests?: string[] }>(
    `/api/v1/applications/${encodeURIComponent(appName)}/manifests?revision=${encodeURIComponent(revision)}`,
  );
  const objects = (answer.manifests ?? []).map(
    (json) => JSON.parse(json) as { kind?: string; metadata?: { namespace?: string; name?: string } },
  );
  const id = (o: (typeof objects)[number]) =>
    `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
  objects.sort((a, b) => id(a).localeCompare(id(b)));
  return objects.map((object) => stringify(object)).join("---\n");
}

export default function RevisionDiff({
  appName: name,
  older,
  newer,
}: {
  appName: string;
  older: HistoryEntry;
  newer: HistoryEntry;
}) {
  const [texts, setTexts] = useState<[string, string]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    setTexts(undefined);
    setError(undefined);
    Promise.all([manifestsAt(name, older.revision ?? ""), manifestsAt(name, newer.revision ?? "")])
      .then(([before, after]) => setTexts([before, after]))
      .catch((err) => setError(err.message));
  }, [name, older.revision, newer.revision]);
  return (
    <section aria-label="Revision diff" data-testid="revision-diff">
      <h3>
        Deployment {older.id} → {newer.id}
      </h3>
      {error && (
        <p role="alert" className="error">
          Manifests: {error}
        </p>
      )}
      {!texts && !error && <p>Loading…</p>}
      {texts && texts[0] === texts[1] && (
        <p data-testid="no-revision-diff">Both revisions render the same manifests.</p>
      )}
      {texts && texts[0] !== texts[1] && (
        <ManifestDiff
          before={texts[0]}
          after={texts[1]}
          beforeTitle={`${older.id} (${older.revision?.slice(0, 7)})`}
          afterTitle={`${newer.id} (${newer.revision?.slice(0, 7)})`}
        />
      )}
    </section>
  );
}
