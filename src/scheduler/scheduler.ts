/** @module The claim loop: wakes on NOTIFY or a timer, claims due connections, runs them bounded. */
import { delay } from "../core/delay.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import {
  claimDueConnections,
  claimDueForProvider,
  type ClaimedConnection,
  type LeaseClaim,
  SYNC_CHANNEL,
} from "../storage/connections.ts";
import type { ProviderKind } from "../core/provider_kind.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { backoffDelayMs } from "../failures/backoff.ts";
import { createWakeSignal } from "../core/wake_signal.ts";

/** What the scheduler needs; `runSync` never throws (it records its own outcome). */
export type SchedulerDeps = {
  sql: Sql;
  metrics: Metrics;
  replicaId: string;
  concurrency: number;
  pollIntervalMs: number;
  leaseMs: number;
  allowlist: readonly string[] | null;
  dbDeadlineMs: number;
  runSync: (connection: ClaimedConnection, signal: AbortSignal) => Promise<unknown>;
  /**
   * Backoff between database retries of the claim and the LISTEN loops. Omitted, each keeps
   * its own: claims retry after 100 ms up to 10 s, LISTEN after 200 ms up to 15 s.
   */
  dbRetryBaseMs?: number;
  dbRetryMaxMs?: number;
  /** Periodic housekeeping (gauges, pruning); failures are logged and counted, never fatal. */
  maintenance?: { intervalMs: number; run: (signal: AbortSignal) => Promise<void> };
  /**
   * Per-provider lanes: each kind claims on its own up to its size, so a full lane (a provider
   * that hangs) never blocks another's claims. Omitted: one lane of `concurrency` for all.
   */
  lanes?: readonly { kind: ProviderKind; size: number; perAccount?: number }[];
  /** Breaker, drain and quota per provider (src/lanes/provider_gate.ts); only with `lanes`. */
  gate?: LaneGate;
};

/** What the scheduler asks a provider's gate before claiming for its lane. */
export type LaneGate = {
  admit(
    kind: ProviderKind,
    lane: { running: number; size: number },
  ): Promise<{ limit: number; probe: boolean; retryInMs: number | null }>;
  claimedProbe(kind: ProviderKind, connectionId: string | null): Promise<void>;
};

/** One lane: a provider kind (null: every provider) and the runs it holds. */
type Lane = {
  kind: ProviderKind | null;
  size: number;
  /** At most this many of one account's connections leased at once (Graph's mailboxes). */
  perAccount?: number;
  running: Set<Promise<unknown>>;
  /** Wakes so far (NOTIFYs, its own runs ending, poll sweeps). */
  wakes: number;
  /**
   * `wakes` when its last short claim began: the lane is idle while no wake came since, so a wake
   * that lands during that claim (for a row its snapshot may not have seen) is never lost.
   */
  idleAt: number | null;
};

/** A running scheduler. */
export type Scheduler = {
  /** Claims at once instead of waiting for the next poll. */
  wake(): void;
  /** Stops claiming, waits up to `graceMs` for running syncs, then cancels the rest. */
  stop(graceMs: number): Promise<void>;
};

const log = logger("scheduler");

/** Starts the scheduler loop; it survives database outages of any length. */
export function startScheduler(deps: SchedulerDeps): Scheduler {
  // Checked here, not at the first outage, so a bad setting fails at start.
  const claimRetry = retryRange(deps, { baseMs: 100, maxMs: 10_000 });
  const listenRetry = retryRange(deps, { baseMs: 200, maxMs: 15_000 });
  const stopping = new AbortController();
  const cancelRuns = new AbortController();
  const running = new Set<Promise<unknown>>();
  const wakeSignal = createWakeSignal(stopping.signal);
  const lanes: Lane[] = deps.lanes
    ? deps.lanes.map((lane) => ({ ...lane, running: new Set(), wakes: 0, idleAt: null }))
    : [{ kind: null, size: deps.concurrency, running: new Set(), wakes: 0, idleAt: null }];
  const rouse = (lane: Lane) => void lane.wakes++;
  // A NOTIFY or an operator's wake may be for any provider: every lane looks again.
  const wake = () => {
    lanes.forEach(rouse);
    wakeSignal.wake();
  };

  function startRun(lane: Lane, connection: ClaimedConnection) {
    const run = deps.runSync(connection, cancelRuns.signal).catch((error) => {
      log.error("Sync run threw unexpectedly", { connection_id: connection.id, error });
    }).finally(() => {
      running.delete(run);
      lane.running.delete(run);
      // A finished run frees a slot of its own lane (and may have left its connection due).
      rouse(lane);
      wakeSignal.wake();
    });
    running.add(run);
    lane.running.add(run);
  }

  async function claimLoop() {
    const claims = { failures: 0 };
    let sweepAt = 0;
    while (!stopping.signal.aborted) {
      wakeSignal.reset();
      // Polls and reconciliations become due without a NOTIFY: every poll interval each lane
      // looks again even if its last claim found nothing.
      if (performance.now() >= sweepAt) {
        lanes.forEach(rouse);
        sweepAt = performance.now() + deps.pollIntervalMs;
      }
      let again = false;
      let waitMs = Math.max(1, sweepAt - performance.now());
      for (const lane of lanes) {
        if (stopping.signal.aborted) break;
        const free = lane.size - lane.running.size;
        if (free <= 0 || lane.idleAt === lane.wakes) continue;
        const wakes = lane.wakes;
        const admitted = await admit(deps, lane, free);
        if (admitted.retryInMs !== null) waitMs = Math.min(waitMs, admitted.retryInMs);
        if (admitted.limit <= 0) continue;
        const claimed = await claimBatch(deps, lane, admitted, claims, claimRetry, stopping.signal);
        if (claimed === null) {
          again = true;
          break;
        }
        claimed.forEach((connection) => startRun(lane, connection));
        // A full batch means more may be due right now; a short one that nothing is left, so
        // this lane's claim waits for a wake (a NOTIFY, its own run ending) or the next sweep
        // instead of running at every other lane's completion.
        if (claimed.length === admitted.limit && !admitted.probe) again = true;
        else if (!admitted.probe) lane.idleAt = wakes;
      }
      if (again) continue;
      await wakeSignal.wait(Math.max(10, waitMs));
    }
  }

  const listening = listenLoop(deps, listenRetry, stopping.signal, wake);
  const loop = claimLoop();
  const housekeeping = deps.maintenance
    ? maintenanceLoop(deps, stopping.signal)
    : Promise.resolve();

  return {
    wake,
    async stop(graceMs: number) {
      stopping.abort();
      await loop;
      await drainRuns(running, graceMs, cancelRuns);
      await Promise.allSettled([listening, housekeeping]);
    },
  };
}

type Admitted = { limit: number; probe: boolean; retryInMs: number | null };

/** What the lane's gate allows; without a gate, the free slots. */
async function admit(deps: SchedulerDeps, lane: Lane, free: number): Promise<Admitted> {
  if (!deps.gate || lane.kind === null) return { limit: free, probe: false, retryInMs: null };
  return await deps.gate.admit(lane.kind, { running: lane.running.size, size: lane.size });
}

/** The claim of one lane: its provider's connections, or any provider's for the single lane. */
async function claimLane(
  deps: SchedulerDeps,
  lane: Lane,
  admitted: Admitted,
): Promise<ClaimedConnection[]> {
  const claim: LeaseClaim = {
    limit: admitted.limit,
    leaseMs: deps.leaseMs,
    ownerPrefix: `${deps.replicaId}/${crypto.randomUUID().slice(0, 8)}`,
    allowlist: deps.allowlist,
  };
  if (lane.kind === null) return await claimDueConnections(deps.sql, claim);
  return await claimDueForProvider(deps.sql, {
    ...claim,
    kind: lane.kind,
    probe: admitted.probe,
    perAccount: lane.perAccount,
  });
}

/**
 * Claims up to the admitted number of a lane's due connections. On a database error it logs,
 * counts, waits its backoff and returns null, so the loop tries again.
 */
async function claimBatch(
  deps: SchedulerDeps,
  lane: Lane,
  admitted: Admitted,
  claims: { failures: number },
  retry: RetryRange,
  signal: AbortSignal,
): Promise<ClaimedConnection[] | null> {
  try {
    const claimed = await withDeadline(
      claimLane(deps, lane, admitted),
      deps.dbDeadlineMs,
      "Claim query",
    );
    if (admitted.probe && lane.kind !== null) {
      await deps.gate?.claimedProbe(lane.kind, claimed[0]?.id ?? null);
    }
    if (claims.failures > 0) {
      log.info("Claiming works again after {failures} failures", { failures: claims.failures });
    }
    claims.failures = 0;
    return claimed;
  } catch (error) {
    claims.failures++;
    // The probe was not claimed: give the slot back so this or another replica tries again.
    if (admitted.probe && lane.kind !== null) {
      await deps.gate?.claimedProbe(lane.kind, null).catch(() => {});
    }
    deps.metrics.schedulerErrors.inc({ operation: "claim" });
    // No sync can start while claiming fails: that is a sync failure of every provider, and
    // the drill document requires calendar_sync_failures_total to show it.
    deps.metrics.syncFailures.inc({ provider: "all", reason: "database" });
    const wait = backoffDelayMs({ attempt: Math.min(claims.failures, 20), ...retry });
    log.error("Cannot claim due connections; retrying in {retry_in_ms} ms", {
      error,
      kind: "database",
      attempt: claims.failures,
      retry_in_ms: wait,
      lane: lane.kind ?? "all",
    });
    await delay(wait, signal);
    return null;
  }
}

/** Waits up to `graceMs` for running syncs, then cancels the rest and waits for them. */
async function drainRuns(
  running: Set<Promise<unknown>>,
  graceMs: number,
  cancelRuns: AbortController,
): Promise<void> {
  if (running.size === 0) return;
  log.info("Waiting up to {grace_ms} ms for {running} running syncs", {
    grace_ms: graceMs,
    running: running.size,
  });
  // Syncs that finish within the grace must not leave its timer running.
  const graceOver = new AbortController();
  await Promise.race([Promise.allSettled([...running]), delay(graceMs, graceOver.signal)]);
  graceOver.abort();
  cancelRuns.abort();
  await Promise.allSettled([...running]);
}

type RetryRange = { baseMs: number; maxMs: number };

function retryRange(deps: SchedulerDeps, defaults: RetryRange): RetryRange {
  const range = {
    baseMs: deps.dbRetryBaseMs ?? defaults.baseMs,
    maxMs: deps.dbRetryMaxMs ?? defaults.maxMs,
  };
  if (!(range.baseMs > 0) || !(range.maxMs >= range.baseMs)) {
    throw new RangeError(
      `Cannot start the scheduler as 'dbRetryBaseMs' (${range.baseMs}) must be positive and at most 'dbRetryMaxMs' (${range.maxMs})`,
    );
  }
  return range;
}

async function listenLoop(
  deps: SchedulerDeps,
  retry: RetryRange,
  signal: AbortSignal,
  wake: () => void,
) {
  let failures = 0;
  while (!signal.aborted) {
    try {
      // postgres.js re-establishes LISTEN after a reconnect and calls onlisten again; we poll
      // then, because notifications sent while disconnected are gone.
      let listens = 0;
      const subscription = await deps.sql.listen(SYNC_CHANNEL, () => wake(), () => {
        listens++;
        if (listens === 1) log.debug("Listening for sync requests");
        else log.info("LISTEN re-established after a reconnect; polling to catch up");
        wake();
      });
      failures = 0;
      await new Promise<void>((resolve) => {
        if (signal.aborted) return resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      await subscription.unlisten().catch(() => {});
      return;
    } catch (error) {
      failures++;
      deps.metrics.schedulerErrors.inc({ operation: "listen" });
      const wait = backoffDelayMs({ attempt: Math.min(failures, 20), ...retry });
      log.error(
        "Cannot LISTEN for sync requests; polling meanwhile, retrying in {retry_in_ms} ms",
        {
          error,
          kind: "database",
          attempt: failures,
          retry_in_ms: wait,
        },
      );
      await delay(wait, signal);
    }
  }
}

async function maintenanceLoop(deps: SchedulerDeps, signal: AbortSignal) {
  const maintenance = deps.maintenance!;
  while (!signal.aborted) {
    // No overall deadline: a pass includes provider calls (channels), each with its own
    // timeout, and its database statements carry theirs. A deadline here would start the next
    // pass while this one still runs, and blame the database for a slow provider.
    try {
      await maintenance.run(signal);
    } catch (error) {
      deps.metrics.schedulerErrors.inc({ operation: "maintenance" });
      log.error("Maintenance failed; retrying next interval", { error });
    }
    await delay(maintenance.intervalMs, signal);
  }
}
