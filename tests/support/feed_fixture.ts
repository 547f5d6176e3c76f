/** @module A migrated database with one connection whose events tests write directly. */
import type { Sql } from "../../src/storage/client.ts";

/** Adds a provider and a connection by SQL; returns the connection id. */
export async function addBareConnection(sql: Sql): Promise<string> {
  const [provider] = await sql<{ id: string }[]>`
    insert into calendar_providers (kind, name, allowlisted)
    values ('google', ${`g-${crypto.randomUUID().slice(0, 8)}`}, true) returning id`;
  const [connection] = await sql<{ id: string }[]>`
    insert into external_calendar_connections (provider_id, external_calendar_id, refresh_token)
    values (${provider.id}, ${`cal-${crypto.randomUUID().slice(0, 8)}`}, 'rt') returning id`;
  return connection.id;
}

/** Inserts `n` occurrence rows (each its own transaction: one change each). */
export async function insertEvents(sql: Sql, connectionId: string, n: number, prefix = "e") {
  for (let i = 0; i < n; i++) {
    await sql`
      insert into external_calendar_events (connection_id, external_event_id, status, title, raw)
      values (${connectionId}, ${`${prefix}${i}`}, 'confirmed', ${`title ${i}`}, '{}'::jsonb)`;
  }
}
