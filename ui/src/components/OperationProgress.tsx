// The running or last operation, live: who started it, its phase, and its resources grouped by
// sync phase and wave in the order they are applied, each group with its progress.

import { OperationPhase } from "./Status";
import { resourceKey, type Application, type SyncResultResource } from "../types";

const PHASE_ORDER = ["PreSync", "Sync", "PostSync", "SyncFail"];

interface Step {
  phase: string;
  wave: number;
  resources: SyncResultResource[];
}

/** A resource's result as done, failed or still running. */
function outcome(r: SyncResultResource): "done" | "failed" | "running" {
  if (r.hookPhase) {
    if (r.hookPhase === "Succeeded") return "done";
    if (r.hookPhase === "Failed" || r.hookPhase === "Error") return "failed";
    return "running";
  }
  if (r.status === "SyncFailed") return "failed";
  return r.status ? "done" : "running";
}

/** The operation's resources in steps of (phase, wave), in the order they are applied. */
export function steps(app: Application): Step[] {
  const waves = new Map(
    (app.status?.resources ?? []).map((r) => [resourceKey(r), r.syncWave ?? 0] as const),
  );
  const byStep = new Map<string, Step>();
  for (const resource of app.status?.operationState?.syncResult?.resources ?? []) {
    const phase = resource.syncPhase ?? "Sync";
    const wave = waves.get(resourceKey(resource)) ?? 0;
    const id = `${phase}/${wave}`;
    if (!byStep.has(id)) byStep.set(id, { phase, wave, resources: [] });
    byStep.get(id)!.resources.push(resource);
  }
  const rank = (phase: string) => {
    const index = PHASE_ORDER.indexOf(phase);
    return index < 0 ? PHASE_ORDER.length : index;
  };
  return [...byStep.values()].sort((a, b) => rank(a.phase) - rank(b.phase) || a.wave - b.wave);
}

export function OperationProgress({ app }: { app: Application }) {
  const state = app.status?.operationState;
  if (!state) return null;
  const by = state.operation?.initiatedBy;
  const running = state.phase === "Running";
  const list = steps(app);
  return (
    <section aria-label="Operation" data-testid="operation">
      <h2>
        {running ? "Sync in progress" : "Last sync"} <OperationPhase phase={state.phase} />
      </h2>
      <p>
        {state.message}
        {by && ` — by ${by.automated ? "automated sync" : by.username}`}
        {state.startedAt && `, started ${state.startedAt}`}
        {state.finishedAt && `, finished ${state.finishedAt}`}
      </p>
      {list.length > 0 && (
        <ol className="steps" data-testid="operation-steps">
          {list.map((step) => {
            const outcomes = step.resources.map(outcome);
            const done = outcomes.filter((o) => o === "done").length;
            const failed = outcomes.filter((o) => o === "failed").length;
            const status = failed ? "failed" : done === outcomes.length ? "done" : "running";
            return (
              <li
                key={`${step.phase}/${step.wave}`}
                className={`step step-${status}`}
                data-phase={step.phase}
                data-wave={step.wave}
                data-status={status}
              >
                <h3>
                  {step.phase} · wave {step.wave}{" "}
                  <span className="muted">
                    {done} of {outcomes.length} done{failed ? `, ${failed} failed` : ""}
                  </span>
                </h3>
                <table className="table">
                  <tbody>
                    {step.resources.map((r, i) => (
                      <tr key={i} data-outcome={outcomes[i]}>
                        <td>{r.kind}</td>
                        <td>{r.name}</td>
                        <td>{r.hookPhase ?? r.status ?? "Pending"}</td>
                        <td className="wrap">{r.message}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </li>
            );
          })}
        </ol>
      )}
    </section>
  );
}
