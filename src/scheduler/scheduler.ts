/** @module The claim loop: wakes on NOTIFY or a timer, claims due connections, runs them bounded. */
import { delay } from "../core/delay.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import {
  claimDueConnections,
  type ClaimedConnection,
  SYNC_CHANNEL,
} from "../storage/connections.ts";
import { logger } from "../log/setup.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { backoffDelayMs } from "../failures/backoff.ts";

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
  let wakeUp: (() => void) | null = null;
  let woken = false;

  function wake() {
    woken = true;
    wakeUp?.();
  }

  function waitForWake(ms: number): Promise<void> {
    if (woken || stopping.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        stopping.signal.removeEventListener("abort", done);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
      stopping.signal.addEventListener("abort", done, { once: true });
    });
  }

  const listening = listenLoop(deps, listenRetry, stopping.signal, wake);

  async function claimLoop() {
    let failures = 0;
    while (!stopping.signal.aborted) {
      woken = false;
      const free = deps.concurrency - running.size;
      if (free > 0) {
        let claimed: ClaimedConnection[];
        try {
          claimed = await withDeadline(
            claimDueConnections(deps.sql, {
              limit: free,
              leaseMs: deps.leaseMs,
              ownerPrefix: `${deps.replicaId}/${crypto.randomUUID().slice(0, 8)}`,
              allowlist: deps.allowlist,
            }),
            deps.dbDeadlineMs,
            "Claim query",
          );
          if (failures > 0) {
            log.info("Claiming works again after {failures} failures", { failures });
          }
          failures = 0;
        } catch (error) {
          failures++;
          deps.metrics.schedulerErrors.inc({ operation: "claim" });
          // No sync can start while claiming fails: that is a sync failure of every provider,
          // and the drill document requires calendar_sync_failures_total to show it.
          deps.metrics.syncFailures.inc({ provider: "all", reason: "database" });
          const wait = backoffDelayMs({ attempt: Math.min(failures, 20), ...claimRetry });
          log.error("Cannot claim due connections; retrying in {retry_in_ms} ms", {
            error,
            kind: "database",
            attempt: failures,
            retry_in_ms: wait,
          });
          await delay(wait, stopping.signal);
          continue;
        }
        for (const connection of claimed) {
          const run = deps.runSync(connection, cancelRuns.signal).catch((error) => {
            log.error("Sync run threw unexpectedly", { connection_id: connection.id, error });
          }).finally(() => {
            running.delete(run);
            wake();
          });
          running.add(run);
        }
        // A full batch means more may be due right now.
        if (claimed.length === free) continue;
      }
      await waitForWake(deps.pollIntervalMs);
    }
  }

  const loop = claimLoop();
  const housekeeping = deps.maintenance
    ? maintenanceLoop(deps, stopping.signal)
    : Promise.resolve();

  return {
    wake,
    async stop(graceMs: number) {
      stopping.abort();
      await loop;
      if (running.size > 0) {
        log.info("Waiting up to {grace_ms} ms for {running} running syncs", {
          grace_ms: graceMs,
          running: running.size,
        });
        // Syncs that finish within the grace must not leave its timer running.
        const graceOver = new AbortController();
        const timer = delay(graceMs, graceOver.signal);
        await Promise.race([Promise.allSettled([...running]), timer]);
        graceOver.abort();
        cancelRuns.abort();
        await Promise.allSettled([...running]);
      }
      await Promise.allSettled([listening, housekeeping]);
    },
  };
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
