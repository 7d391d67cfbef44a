// Sync and health as badges: a symbol and the word, never colour alone.

const SYNC_SYMBOL: Record<string, string> = { Synced: "✔", OutOfSync: "↻", Unknown: "?" };
const HEALTH_SYMBOL: Record<string, string> = {
  Healthy: "♥",
  Progressing: "◌",
  Degraded: "✖",
  Suspended: "⏸",
  Missing: "⚠",
  Unknown: "?",
};

export function SyncStatus({ status }: { status?: string }) {
  const value = status || "Unknown";
  return (
    <span className={`badge sync-${value}`} data-sync={value}>
      {SYNC_SYMBOL[value] ?? "?"} {value}
    </span>
  );
}

export function HealthStatus({ status }: { status?: string }) {
  if (!status) return null;
  return (
    <span className={`badge health-${status}`} data-health={status}>
      {HEALTH_SYMBOL[status] ?? "?"} {status}
    </span>
  );
}

export function OperationPhase({ phase }: { phase?: string }) {
  if (!phase) return null;
  return (
    <span className={`badge phase-${phase}`} data-phase={phase}>
      {phase}
    </span>
  );
}
