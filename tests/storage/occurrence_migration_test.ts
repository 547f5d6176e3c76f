import { openSql, type Sql } from "../../src/storage/client.ts";
import { migrate, type Migration, readMigrations } from "../../src/storage/migrate.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";
import { assert, assertEquals } from "../support/assert.ts";

/** A scratch database at schema 4 (v1, before 005) with one Google provider, dropped after. */
async function atSchema4(
  name: string,
  fn: (sql: Sql, provider: { id: string }, files: Migration[]) => Promise<void>,
): Promise<void> {
  const database = await createTestDatabase(name);
  const sql = openSql(database.url, { max: 2 });
  try {
    const files = await readMigrations();
    await migrate(sql, files.filter((m) => m.version < 5));
    const [provider] = await sql<{ id: string }[]>`
      insert into calendar_providers (kind, name, allowlisted) values ('google', 'google', true)
      returning id`;
    await fn(sql, provider, files);
  } finally {
    await sql.end({ timeout: 1 });
    await database.drop();
  }
}

Deno.test("migration 005 on a v1 database with rows keeps each connection's state and asks for a full sync", async () => {
  await atSchema4("v1_rows", async (sql, provider, files) => {
    // A v1 connection in backoff with a cursor, holding a series master at its first date and
    // an all-day event at a fake UTC midnight; and one without rows.
    const [withRows] = await sql<{ id: string }[]>`
      insert into external_calendar_connections
        (provider_id, external_calendar_id, refresh_token, sync_cursor, sync_needed,
         sync_requested_seq, sync_claimed_seq, error_count, last_error, backoff_until)
      values (${provider.id}, 'primary', 'rt-1', '{"syncToken":"v1-token"}', false, 4, 4, 2,
        '{"kind":"provider_unavailable"}', now() + interval '10 minutes')
      returning id`;
    const [empty] = await sql<{ id: string }[]>`
      insert into external_calendar_connections
        (provider_id, external_calendar_id, refresh_token, sync_needed, sync_requested_seq,
         sync_claimed_seq)
      values (${provider.id}, 'team', 'rt-2', false, 1, 1) returning id`;
    await sql`
      insert into external_calendar_events
        (connection_id, external_event_id, status, title, starts_at, ends_at, all_day, raw)
      values
        (${withRows.id}, 'standup', 'confirmed', 'Stand-up', '2026-01-05T14:30:00Z',
         '2026-01-05T14:45:00Z', false, '{"recurrence":["RRULE:FREQ=WEEKLY"]}'),
        (${withRows.id}, 'holiday', 'confirmed', 'Holiday', '2026-12-25T00:00:00Z',
         '2026-12-26T00:00:00Z', true, '{}')`;

    const result = await migrate(sql, files);
    assert(
      result.notes.includes(
        "005_occurrence_mirror.sql: 1 connections marked for a full sync to rebuild their mirror as occurrences",
      ),
      JSON.stringify(result.notes),
    );
    const rows = await sql<
      {
        id: string;
        sync_needed: boolean;
        full: boolean;
        sync_cursor: unknown;
        error_count: number;
        last_error: unknown;
        in_backoff: boolean;
        due_after_backoff: boolean;
      }[]
    >`
      select id, sync_needed, coalesce(full_sync_requested_seq > sync_claimed_seq, false) as full,
        sync_cursor,
        error_count, last_error, backoff_until > now() as in_backoff,
        due_at >= backoff_until as due_after_backoff
      from external_calendar_connections`;
    const marked = rows.find((r) => r.id === withRows.id)!;
    // The full sync is requested; the cursor, the failure state and the backoff stay.
    assertEquals(
      [marked.sync_needed, marked.full, marked.sync_cursor, marked.error_count, marked.last_error],
      [true, true, { syncToken: "v1-token" }, 2, { kind: "provider_unavailable" }],
    );
    assertEquals([marked.in_backoff, marked.due_after_backoff], [true, true]);
    const untouched = rows.find((r) => r.id === empty.id)!;
    assertEquals([untouched.sync_needed, untouched.full], [false, false]);
    // The rows stay readable until the full sync rewrites them.
    const [events] = await sql<{ n: number }[]>`
      select count(*)::int as n from external_calendar_events where connection_id = ${withRows.id}`;
    assertEquals(events.n, 2);
  });
});

Deno.test("migration 005 marks a table of several batches, every connection with rows once", async () => {
  await atSchema4("v1_batches", async (sql, provider, files) => {
    // 2,500 connections (three batches of the backfill), every other one with a v1 row.
    await sql`
      insert into external_calendar_connections
        (provider_id, external_calendar_id, refresh_token, sync_needed, sync_requested_seq,
         sync_claimed_seq)
      select ${provider.id}, 'calendar-' || g, 'rt', false, 1, 1 from generate_series(1, 2500) g`;
    await sql`
      insert into external_calendar_events
        (connection_id, external_event_id, status, title, starts_at, ends_at, all_day, raw)
      select id, 'e', 'confirmed', 'E', now(), now() + interval '1 hour', false, '{}'
      from external_calendar_connections where substr(external_calendar_id, 10)::int % 2 = 0`;
    const result = await migrate(sql, files);
    assert(
      result.notes.includes(
        "005_occurrence_mirror.sql: 1250 connections marked for a full sync to rebuild their mirror as occurrences",
      ),
      JSON.stringify(result.notes),
    );
    const [counts] = await sql<{ marked: number; wrong: number }[]>`
      select count(*) filter (where sync_needed and sync_requested_seq = 2)::int as marked,
        count(*) filter (where sync_needed <> exists (select 1 from external_calendar_events e
          where e.connection_id = c.id))::int as wrong
      from external_calendar_connections c`;
    assertEquals(counts, { marked: 1250, wrong: 0 });
  });
});
