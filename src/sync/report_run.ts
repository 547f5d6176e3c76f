/** @module Reports what a committed chunk did beyond its writes: held deletions, drift, missed push. */
import { logger } from "../log/setup.ts";
import type { ClaimedConnection } from "../storage/connections.ts";
import type { SyncDeps } from "./sync_deps.ts";
import { type Drift, driftCount } from "./sync_run.ts";
import type { SyncRun } from "./sync_run.ts";

const log = logger("sync");

// Enough ids to find the rows; a huge repair is better read from the database than the log.
const IDS_PER_LINE = 100;

/** Logs and counts what the chunk that just committed recorded in `run`, once. */
export function reportCommitted(deps: SyncDeps, connection: ClaimedConnection, run: SyncRun) {
  const provider = connection.providerKind;
  if (run.newlyHeld > 0 && run.held !== null) {
    deps.metrics.deletionsHeld.inc({ provider }, run.newlyHeld);
    if (run.held.count === run.newlyHeld) {
      deps.metrics.terminalTransitions.inc({ provider, state: "deletions_held" });
    }
    log.error(
      "Held {held} deletions of connection {connection_id} ({reason}); it stops syncing until " +
        "`calsync connections release-deletions`",
      {
        connection_id: connection.id,
        provider,
        kind: "deletions_held",
        reason: run.held.reason,
        held: run.newlyHeld,
        held_in_run: run.held.count,
        state: "deletions_held",
      },
    );
    run.newlyHeld = 0;
  }
  if (driftCount(run.drift) > 0) reportDrift(deps, connection, run.drift);
  run.drift = { missing: [], extra: [], changed: [] };
  if (run.pushMissed) {
    deps.metrics.pushMissed.inc({ provider });
    log.warn(
      "The poll of connection {connection_id} found changes its push channel did not announce; " +
        "polling at the short interval until a notification arrives",
      { connection_id: connection.id, provider, changes: run.changes },
    );
    run.pushMissed = false;
  }
}

function reportDrift(deps: SyncDeps, connection: ClaimedConnection, drift: Drift) {
  const provider = connection.providerKind;
  for (const kind of ["missing", "extra", "changed"] as const) {
    if (drift[kind].length > 0) {
      deps.metrics.driftRepairs.inc({ provider, kind }, drift[kind].length);
    }
  }
  log.warn(
    "Reconciliation of connection {connection_id} repaired {repairs} rows the incremental sync " +
      "had missed",
    {
      connection_id: connection.id,
      provider,
      repairs: driftCount(drift),
      missing: drift.missing.slice(0, IDS_PER_LINE),
      extra: drift.extra.slice(0, IDS_PER_LINE),
      changed: drift.changed.slice(0, IDS_PER_LINE),
      missing_count: drift.missing.length,
      extra_count: drift.extra.length,
      changed_count: drift.changed.length,
    },
  );
}
