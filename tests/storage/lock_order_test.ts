/**
 * Statements that lock several connections lock them in id order, so they wait for each other
 * instead of deadlocking: a batch of completions against a Graph batch, with a third
 * transaction holding a connection between them.
 */
import { completeSyncs, NO_POLL } from "../../src/storage/connections.ts";
import { holdConnectionLock } from "../support/row_lock.ts";
import { recordGraphNotifications } from "../../src/storage/webhook_dedupe_keys.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { insertConnections } from "../support/connection_rows.ts";
import { addLiveChannel } from "../support/provider_kits.ts";
import { assertEquals, waitFor } from "../support/assert.ts";
import type { Sql } from "../../src/storage/client.ts";

type Row = { id: string; heap: number };

/** Rows a, b, c with id(b) < id(c) < id(a) where a lies before b in the heap, if any. */
function inversion(rows: Row[]): { a: Row; b: Row; c: Row } | null {
  for (const a of rows) {
    for (const b of rows) {
      if (!(a.heap < b.heap && b.id < a.id)) continue;
      const c = rows.find((row) => b.id < row.id && row.id < a.id);
      if (c) return { a, b, c };
    }
  }
  return null;
}

async function waitingOnLocks(sql: Sql, database: string, count: number): Promise<void> {
  await waitFor(async () => {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = ${database} and wait_event_type = 'Lock'`;
    return row.n >= count;
  }, { what: `${count} statements waiting on row locks` });
}

Deno.test("completions and a Graph batch over the same connections wait for each other, never deadlock", async () => {
  await using db = await createMigratedDatabase("lock_order");
  await insertConnections(db.sql, "microsoft", 12);
  // The completion batch is small against a small table: its plan is a hash join, which would
  // update (and lock) in heap order. ids are random: pick a heap order that contradicts theirs.
  const rows = await db.sql<Row[]>`
    select id::text as id, row_number() over (order by ctid)::int as heap
    from external_calendar_connections`;
  const found = inversion(rows);
  if (!found) throw new Error("no heap order against the id order among 12 random ids");
  const { a, b, c } = found;
  const channel = new Map<string, string>();
  for (const row of [a, b, c]) {
    channel.set(row.id, await addLiveChannel(db.sql, row.id, "microsoft"));
  }
  await db.sql`update external_calendar_connections
    set lease_owner = 'run', lease_expires_at = now() + interval '1 hour'
    where id in (${a.id}, ${b.id})`;
  const database = new URL(db.url).pathname.slice(1);

  const lock = await holdConnectionLock(db.sql, c.id);
  // Graph's batch locks b, then waits for c.
  const graph = recordGraphNotifications(
    db.sql,
    [a, b, c].map((row, i) => ({
      key: `microsoft:k${i}`,
      subscriptionId: channel.get(row.id)!,
      action: "sync" as const,
    })),
  );
  await waitingOnLocks(db.sql, database, 1);
  const completion = completeSyncs(db.sql, [
    { connection: { id: a.id, leaseOwner: "run" }, cursor: { n: 1 }, schedule: NO_POLL },
    { connection: { id: b.id, leaseOwner: "run" }, cursor: { n: 2 }, schedule: NO_POLL },
  ]);
  await waitingOnLocks(db.sql, database, 2);
  await lock.release();
  const [recorded, completed] = await Promise.all([graph, completion]);
  assertEquals(recorded.fresh.size, 3);
  assertEquals(completed.map((result) => result !== null), [true, true]);
});
