/** Runs that finish together complete in one statement, each row fenced by its own lease. */
import { insertConnections } from "../support/connection_rows.ts";
import {
  claimDueForProvider,
  completeSyncs,
  type CompletionSchedule,
  NO_POLL,
} from "../../src/storage/connections.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { assert, assertEquals } from "../support/assert.ts";

Deno.test("completeSyncs() completes each run with its own cursor and schedule, and fences each lease", async () => {
  await using db = await createMigratedDatabase("complete_syncs");
  await insertConnections(db.sql, "google", 3);
  const claimed = await claimDueForProvider(db.sql, {
    kind: "google",
    limit: 3,
    leaseMs: 60_000,
    ownerPrefix: "batch",
    allowlist: null,
  });
  assertEquals(claimed.length, 3);
  const [verified, polled, lost] = claimed.sort((a, b) => a.id.localeCompare(b.id));
  const minute: CompletionSchedule = { ...NO_POLL, shortPollMs: 60_000, verified: true };
  const hour: CompletionSchedule = { ...NO_POLL, shortPollMs: 3_600_000 };
  const results = await completeSyncs(db.sql, [
    { connection: verified, cursor: { n: 1 }, schedule: minute },
    { connection: { id: lost.id, leaseOwner: "someone else" }, cursor: { n: 3 }, schedule: hour },
    { connection: polled, cursor: { n: 2 }, schedule: hour },
  ]);
  assertEquals(results, [{ syncNeeded: false }, null, { syncNeeded: false }]);
  const rows = await db.sql<{
    id: string;
    sync_cursor: unknown;
    lease_owner: string | null;
    verified: boolean;
    due_in_s: number;
  }[]>`
    select id, sync_cursor, lease_owner, last_verified_at is not null as verified,
      extract(epoch from due_at - now())::float8 as due_in_s
    from external_calendar_connections order by id`;
  const byId = new Map(rows.map((row) => [row.id, row]));
  const one = byId.get(verified.id)!;
  const two = byId.get(polled.id)!;
  const three = byId.get(lost.id)!;
  assertEquals([one.sync_cursor, one.lease_owner, one.verified], [{ n: 1 }, null, true]);
  assertEquals([two.sync_cursor, two.lease_owner, two.verified], [{ n: 2 }, null, false]);
  assert(one.due_in_s > 50 && one.due_in_s <= 60, `next poll in a minute: ${one.due_in_s}`);
  assert(two.due_in_s > 3_500 && two.due_in_s <= 3_600, `next poll in an hour: ${two.due_in_s}`);
  // The run that lost its lease wrote nothing: the row still belongs to its claim.
  assertEquals(three.lease_owner, lost.leaseOwner);
  assertEquals(three.sync_cursor, null);
});
