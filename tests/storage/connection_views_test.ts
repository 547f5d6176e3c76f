import { assert, assertEquals } from "../support/assert.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import {
  isUuid,
  listConnectionPage,
  providerOverview,
  tableExists,
} from "../../src/storage/connection_views.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";

async function seed(sql: Parameters<typeof listConnectionPage>[0], n: number) {
  const { id } = await insertProvider(sql, { kind: "google", name: "g", allowlisted: true });
  await sql`insert into external_calendar_connections (provider_id, external_calendar_id,
      refresh_token, status, backoff_until, error_count)
    select ${id}, 'cal-' || i, 'rt',
      case when i % 10 = 0 then 'disabled' else 'active' end,
      case when i % 7 = 0 then now() + interval '1 hour' end,
      case when i % 7 = 0 then 2 else 0 end
    from generate_series(1, ${n}) i`;
  await sql`analyze external_calendar_connections`;
  return id;
}

Deno.test("keyset pages walk 10,000 connections once each, in id order, forwards and back", async () => {
  await using db = await createMigratedDatabase("views");
  await seed(db.sql, 10_000);
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const { rows, more } = await listConnectionPage(db.sql, { after, limit: 500 });
    seen.push(...rows.map((r) => r.id));
    if (!more) break;
    after = rows.at(-1)!.id;
  }
  assertEquals(seen.length, 10_000);
  assertEquals(new Set(seen).size, 10_000);
  assertEquals([...seen].sort(), seen);
  const back = await listConnectionPage(db.sql, { before: seen[1_000], limit: 500 });
  assertEquals(back.rows.map((r) => r.id), seen.slice(500, 1_000));
  assert(back.more);
});

Deno.test("a deep page is an index range scan on the primary key, not a sort of the table", async () => {
  await using db = await createMigratedDatabase("views_plan");
  await seed(db.sql, 10_000);
  const [{ id }] = await db.sql<{ id: string }[]>`
    select id from external_calendar_connections order by id offset 9000 limit 1`;
  // The statement listConnectionPage runs, with the console's filters unset.
  const plan = await db.sql<{ "QUERY PLAN": string }[]>`
    explain select c.id from external_calendar_connections c
      join calendar_providers p on p.id = c.provider_id
    where (${id}::uuid is null or c.id > ${id}::uuid)
    order by c.id asc limit 51`;
  const text = plan.map((r) => r["QUERY PLAN"]).join("\n");
  assert(/Index (Only )?Scan using external_calendar_connections_pkey/.test(text), text);
  assert(!/Sort/.test(text), text);
});

Deno.test("filters: state, provider and search by calendar text or exact id", async () => {
  await using db = await createMigratedDatabase("views_filter");
  await seed(db.sql, 100);
  const backingOff = await listConnectionPage(db.sql, { state: "backing_off", limit: 100 });
  // i % 7 == 0 and not i % 10 == 0 (70 is disabled): 14 of 1..100, less 70.
  assertEquals(backingOff.rows.length, 13);
  assert(backingOff.rows.every((r) => r.state === "backing_off" && r.error_count === 2));
  const disabled = await listConnectionPage(db.sql, { state: "disabled", limit: 100 });
  assertEquals(disabled.rows.length, 10);
  const search = await listConnectionPage(db.sql, { search: "cal-4", limit: 100 });
  assertEquals(search.rows.length, 11); // cal-4, cal-40..49
  const wildcard = await listConnectionPage(db.sql, { search: "%", limit: 100 });
  assertEquals(wildcard.rows.length, 0, "a LIKE wildcard in the search is literal");
  const exact = await listConnectionPage(db.sql, { search: search.rows[0].id, limit: 100 });
  assertEquals(exact.rows.map((r) => r.id), [search.rows[0].id]);
  assertEquals((await listConnectionPage(db.sql, { provider: "other", limit: 10 })).rows, []);
  const [overview] = await providerOverview(db.sql);
  assertEquals(overview.total, 100);
  assertEquals(overview.counts.backing_off, 13);
  assertEquals(overview.counts.disabled, 10);
  assertEquals(overview.counts.active, 77);
  assert(isUuid(search.rows[0].id));
  assertEquals(await tableExists(db.sql, "provider_health"), false);
  assertEquals(await tableExists(db.sql, "external_calendar_connections"), true);
});
