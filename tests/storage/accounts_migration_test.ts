import { assert, assertEquals } from "../support/assert.ts";
import { openSql } from "../../src/storage/client.ts";
import { migrate, migrationStatements, readMigrations } from "../../src/storage/migrate.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";

Deno.test("a do $$ block stays one statement of a no-transaction migration", () => {
  const text = "set a = 1;\n-- note\ndo $$\nbegin\n  perform 1;\n  commit;\nend\n$$;\nselect 2;\n";
  assertEquals(migrationStatements(text), [
    "set a = 1",
    "do $$\nbegin\n  perform 1;\n  commit;\nend\n$$",
    "select 2",
  ]);
});

Deno.test("migration 007 moves v1 connections into one account per refresh token, keeping their state", async () => {
  const database = await createTestDatabase("accounts_migration");
  const sql = openSql(database.url, { max: 2 });
  try {
    const files = await readMigrations();
    const v6 = files.filter((file) => file.version < 7);
    await migrate(sql, v6);
    const [google] = await sql<{ id: string }[]>`
      insert into calendar_providers (kind, name, allowlisted) values ('google', 'g', true)
      returning id`;
    const [microsoft] = await sql<{ id: string }[]>`
      insert into calendar_providers (kind, name, allowlisted) values ('microsoft', 'm', true)
      returning id`;
    // 2,500 connections over 3 batches: alice's token on 1,201 calendars (spanning batches), bob's
    // on one, and one microsoft connection sharing alice's token text (another provider).
    await sql`
      insert into external_calendar_connections (provider_id, external_calendar_id,
        refresh_token, account_label, sync_cursor, error_count, backoff_until, sync_needed)
      select ${google.id}, 'cal-' || n, case when n % 2 = 0 then 'rt-alice' else 'rt-' || n end,
        case when n = 2 then 'alice@example.com' end, jsonb_build_object('syncToken', 'st-' || n),
        n % 3, case when n % 3 > 0 then now() + interval '1 hour' end, n % 5 = 0
      from generate_series(1, 2498) n`;
    await sql`
      insert into external_calendar_connections (provider_id, external_calendar_id, refresh_token)
      values (${google.id}, 'bob', 'rt-bob'), (${microsoft.id}, 'primary', 'rt-alice')`;
    const [someone] = await sql<{ id: string }[]>`
      select id from external_calendar_connections where external_calendar_id = 'cal-4'`;
    await sql`
      insert into external_calendar_events (connection_id, external_event_id, status, raw)
      values (${someone.id}, 'e1', 'confirmed', '{}')`;
    const before = await sql`
      select id, provider_id, error_count, last_error, backoff_until, sync_needed, sync_cursor
      from external_calendar_connections order by id`;

    const result = await migrate(sql, files);
    assertEquals(result.applied, files.filter((f) => f.version >= 7).map((f) => f.name));

    // The drill's verification query runs unchanged and sees the same state.
    const after = await sql`
      select id, provider_id, error_count, last_error, backoff_until, sync_needed, sync_cursor
      from external_calendar_connections order by id`;
    assertEquals(after, before);
    const [counts] = await sql<{ accounts: number; orphans: number; copies: number }[]>`
      select (select count(*) from calendar_accounts)::int as accounts,
        (select count(*) from external_calendar_connections where account_id is null)::int
          as orphans,
        (select count(*) from external_calendar_connections where refresh_token is not null)::int
          as copies`;
    // rt-alice (google), rt-alice (microsoft), rt-bob, and 1,249 odd-numbered tokens.
    assertEquals(counts, { accounts: 1_252, orphans: 0, copies: 0 });
    const [alice] = await sql<{ calendars: number; label: string; token: string }[]>`
      select count(*)::int as calendars, min(a.label) as label, min(a.refresh_token) as token
      from external_calendar_connections c join calendar_accounts a on a.id = c.account_id
      where a.provider_id = ${google.id} and a.refresh_token = 'rt-alice'`;
    assertEquals(alice, { calendars: 1_249, label: "alice@example.com", token: "rt-alice" });
    const [rows] = await sql`select count(*)::int as n from external_calendar_events`;
    assertEquals(rows.n, 1);

    // Uniqueness is per account now: another account may connect the same calendar id.
    const [bob] = await sql<{ account_id: string }[]>`
      select account_id from external_calendar_connections where external_calendar_id = 'bob'`;
    await sql`
      insert into external_calendar_connections (provider_id, account_id, external_calendar_id)
      values (${google.id}, ${bob.account_id}, 'cal-4')`;
    let duplicate = false;
    await sql`
      insert into external_calendar_connections (provider_id, account_id, external_calendar_id)
      values (${google.id}, ${bob.account_id}, 'cal-4')`.catch((error) => {
      duplicate = error.code === "23505";
    });
    assert(duplicate, "a second connection of one account to one calendar was accepted");
  } finally {
    await sql.end({ timeout: 1 });
    await database.drop();
  }
});
