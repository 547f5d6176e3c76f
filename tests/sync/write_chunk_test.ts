import { assert, assertEquals, waitFor } from "../support/assert.ts";
import type { Sql } from "../../src/storage/client.ts";
import { requestSync } from "../../src/storage/connections.ts";
import { cutFixture } from "../support/cut_fixture.ts";
import { connectionRow, mirror } from "../support/sync_harness.ts";

// A sequence advances whether or not the transaction that advanced it commits: the trigger
// proves the upsert ran on the server even though its rows must roll back.
const PROBE = `
create sequence upsert_probe;
create function upsert_probe() returns trigger language plpgsql as $$
begin perform nextval('upsert_probe'); return new; end $$;
create trigger upsert_probe before insert or update on external_calendar_events
for each row execute function upsert_probe();`;

async function probeCount(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select case when is_called then last_value else 0 end::int as n from upsert_probe`;
  return row.n;
}

async function openTransactions(sql: Sql, applicationName: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where application_name = ${applicationName} and xact_start is not null`;
  return row.n;
}

Deno.test("a connection cut after the event upsert ran on the server and before COMMIT leaves nothing of it visible", async () => {
  await using t = await cutFixture("cut_before_commit");
  const { db, google, proxy, harness, id, applicationName } = t;
  await db.sql.unsafe(PROBE);
  const eventsBefore = await mirror(db.sql, id);
  const rowBefore = await connectionRow(db.sql, id);

  const marker = `CUT-${crypto.randomUUID()}`;
  for (let i = 0; i < 3; i++) google.putEvent("primary", { summary: `${marker}-${i}` });
  await requestSync(db.sql, id);
  // The marker travels in the upsert's parameters. The proxy forwards them, waits until the
  // server has answered the statement, and cuts instead of passing the answer on: the client
  // never learns the upsert ran, so its COMMIT is never sent.
  const cut = proxy.cutWhen(marker, { after: "reply" });
  const outcome = await harness.syncOnce(id);
  await cut;
  assertEquals(outcome?.outcome === "failure" && outcome.kind, "database");
  assert((await probeCount(db.sql)) >= 3, "the upsert never ran on the server");
  // The server rolls back once it sees the socket go; only then is "nothing visible" final.
  await waitFor(async () => (await openTransactions(db.sql, applicationName)) === 0, {
    what: "the cut transaction to end",
  });
  assertEquals(await mirror(db.sql, id), eventsBefore, "rows of the cut upsert are visible");
  const rowAfter = await connectionRow(db.sql, id);
  assertEquals(
    [rowAfter.sync_cursor, rowAfter.error_count, rowAfter.last_success_at],
    [rowBefore.sync_cursor, rowBefore.error_count, rowBefore.last_success_at],
  );
});
