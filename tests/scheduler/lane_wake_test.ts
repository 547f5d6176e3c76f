/**
 * A wake (a NOTIFY) that lands while a lane claims is not lost: the claim's snapshot may predate
 * the row it announces, so a short claim must not leave the lane idle until the next poll sweep
 * (found by the webhook-to-sync bench: p99 ~5 s, the poll interval, instead of ~3 ms).
 */
import type { LaneGate, Scheduler } from "../../src/scheduler/scheduler.ts";
import { startScheduler } from "../../src/scheduler/scheduler.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { insertConnections } from "../support/connection_rows.ts";
import { assertEquals, waitFor } from "../support/assert.ts";
import { SYNC_CHANNEL } from "../../src/storage/connections.ts";

Deno.test("a wake during a lane's short claim makes it claim again before the poll sweep", async () => {
  await using db = await createMigratedDatabase("lane_wake");
  await insertConnections(db.sql, "google", 1);
  await db.sql`update external_calendar_connections
    set sync_needed = false, due_at = now() + interval '1 day'`;
  const [{ id }] = await db.sql<{ id: string }[]>`select id from external_calendar_connections`;
  let ran: string | null = null;
  let admits = 0;
  let scheduler: Scheduler | null = null;
  const gate: LaneGate = {
    async admit(_kind, lane) {
      admits++;
      if (admits === 1) {
        // Once the scheduler LISTENs (its catch-up wake done), a NOTIFY arrives mid-claim...
        await waitFor(async () => {
          const [listening] = await db.sql<{ n: number }[]>`
            select count(*)::int as n from pg_stat_activity
            where datname = current_database() and query ilike ${`listen%${SYNC_CHANNEL}%`}`;
          return listening.n > 0;
        }, { what: "the scheduler's LISTEN" });
        scheduler!.wake();
      } else if (admits === 2) {
        // ...for a row that its claim's snapshot did not see yet.
        await db.sql`update external_calendar_connections set due_at = now(), sync_needed = true`;
      }
      return { limit: lane.size - lane.running, probe: false, retryInMs: null };
    },
    claimedProbe: () => Promise.resolve(),
  };
  scheduler = startScheduler({
    sql: db.sql,
    metrics: createMetrics(),
    replicaId: "wake-test",
    concurrency: 4,
    // Far beyond the test: only a wake can start the second claim.
    pollIntervalMs: 600_000,
    leaseMs: 60_000,
    allowlist: null,
    dbDeadlineMs: 5_000,
    lanes: [{ kind: "google", size: 4 }],
    gate,
    runSync: (connection) => {
      ran = connection.id;
      return Promise.resolve();
    },
  });
  try {
    assertEquals(
      await waitFor(() => ran, { what: "a claim after the wake", timeoutMs: 30_000 }),
      id,
    );
  } finally {
    await scheduler.stop(1_000);
  }
});
