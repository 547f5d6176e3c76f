/**
 * @module Bulk setup of benchmark state: providers, thousands of connections with stored cursors,
 * and webhook channels. Plain SQL on the scratch database; calsync's own modules do the rest.
 */
import type { Sql } from "../src/storage/client.ts";
import { SYNC_CHANNEL } from "../src/storage/connections.ts";
import { insertProvider } from "../src/storage/calendar_providers.ts";
import { loadConfig } from "../src/config/config.ts";
import { windowAt } from "../src/core/sync_window.ts";
import { encodeOpaque } from "../testkit/fake_tokens.ts";

/** One seeded connection: its id and the provider calendar it mirrors. */
export type SeededConnection = { id: string; calendarId: string };

/** A seeded webhook channel: what a Google push delivery for it carries. */
export type SeededChannel = {
  connectionId: string;
  channelId: string;
  token: string;
  resourceId: string;
  calendarId: string;
};

/** Inserts an allowlisted Google provider named `bench-<label>` (an allowlist entry); its id. */
export async function insertBenchProvider(sql: Sql, label: string): Promise<string> {
  const row = await insertProvider(sql, {
    kind: "google",
    name: `bench-${label}`,
    allowlisted: true,
  });
  return row.id;
}

/**
 * A stored cursor after which the next sync of `calendarId` is one incremental request to the
 * fake Google ("nothing since clock 0", the fake's own token format), in the window a daemon
 * with the default SYNC_WINDOW_* settings mirrors today. Without the window the daemon starts
 * a new full round instead (a cursor from before windows), which is not a no-op sync.
 */
export function incrementalCursor(calendarId: string, now = Date.now()): unknown {
  defaults ??= loadConfig({});
  return {
    position: { syncToken: fakeSyncToken(calendarId) },
    fullSyncGeneration: null,
    window: windowAt(now, defaults.SYNC_WINDOW_PAST_DAYS, defaults.SYNC_WINDOW_FUTURE_DAYS),
  };
}

// Read once: seeding calls incrementalCursor per connection, up to a million times.
let defaults: ReturnType<typeof loadConfig> | undefined;

/** A fake Google sync token the fake accepts for an empty calendar: "nothing since clock 0". */
export function fakeSyncToken(calendarId: string): string {
  // The fake's own token format (fake_google_calendar.ts), so no full sync is needed first.
  return encodeOpaque("C", { k: "s", c: calendarId, e: 0, n: 0 });
}

/**
 * Inserts `count` idle connections (nothing due) whose stored cursor is `cursorFor(calendarId)`,
 * so that the next sync of each is one incremental request.
 */
export async function seedIdleConnections(
  sql: Sql,
  input: {
    providerId: string;
    count: number;
    calendarPrefix: string;
    refreshToken: string;
    cursorFor: (calendarId: string) => unknown;
    /**
     * As if each had synced before: a first success recorded (so the next one appends no
     * `connection.first_synced` change) and its reconciliation scheduled a day ahead, as a
     * completion leaves it. Default: never synced.
     */
    syncedBefore?: boolean;
  },
): Promise<SeededConnection[]> {
  const calendars = Array.from({ length: input.count }, (_, i) => `${input.calendarPrefix}${i}`);
  const cursors = calendars.map((calendarId) => JSON.stringify(input.cursorFor(calendarId)));
  const synced = input.syncedBefore ?? false;
  const rows = await sql<{ id: string; external_calendar_id: string }[]>`
    insert into external_calendar_connections
      (provider_id, external_calendar_id, refresh_token, sync_cursor, sync_needed,
       sync_requested_seq, sync_claimed_seq, last_success_at, last_synced_at, reconcile_due_at)
    select ${input.providerId}::uuid, t.calendar, ${input.refreshToken}, t.cursor::jsonb, false,
      1, 1, case when ${synced} then now() end, case when ${synced} then now() end,
      case when ${synced} then now() + interval '1 day' end
    from unnest(${calendars}::text[], ${cursors}::text[]) as t(calendar, cursor)
    returning id, external_calendar_id`;
  return rows.map((row) => ({ id: row.id, calendarId: row.external_calendar_id }));
}

/**
 * Makes every connection of a provider due at once, exactly as `requestSync` would one by one,
 * and wakes the schedulers; resolves to how many became due.
 */
export async function requestAllSyncs(sql: Sql, providerId: string): Promise<number> {
  const result = await sql`
    update external_calendar_connections set
      sync_requested_seq = sync_requested_seq + 1, sync_needed = true, due_at = now(),
      updated_at = now()
    where provider_id = ${providerId} and status = 'active'`;
  await sql`select pg_notify(${SYNC_CHANNEL}, '')`;
  return result.count;
}

/** Counts a provider's connections that still wait for (or are in) a sync. */
export async function countPending(sql: Sql, providerId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from external_calendar_connections
    where provider_id = ${providerId} and sync_needed and status = 'active'`;
  return row.n;
}

/** Counts a provider's connections whose last sync failed (they would never drain). */
export async function countFailing(sql: Sql, providerId: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from external_calendar_connections
    where provider_id = ${providerId} and error_count > 0`;
  return row.n;
}

/**
 * Gives every connection an active Google channel `<prefix><i>` (i from 1, so pgbench can pick
 * one with `random(1, n)`) with a random token; returns them.
 */
export async function seedGoogleChannels(
  sql: Sql,
  connections: readonly SeededConnection[],
  channelPrefix: string,
): Promise<SeededChannel[]> {
  const channels = connections.map((connection, i) => ({
    connectionId: connection.id,
    calendarId: connection.calendarId,
    channelId: `${channelPrefix}${i + 1}`,
    token: crypto.randomUUID().replaceAll("-", "") + crypto.randomUUID().replaceAll("-", ""),
    resourceId: `res-${crypto.randomUUID().slice(0, 18)}`,
  }));
  await sql`
    insert into webhook_channels
      (connection_id, provider, channel_id, secret, resource_id, expires_at, status)
    select t.connection_id, 'google', t.channel_id, t.secret, t.resource_id,
      now() + interval '7 days', 'active'
    from unnest(
      ${channels.map((c) => c.connectionId)}::uuid[], ${channels.map((c) => c.channelId)}::text[],
      ${channels.map((c) => c.token)}::text[], ${channels.map((c) => c.resourceId)}::text[]
    ) as t(connection_id, channel_id, secret, resource_id)`;
  return channels;
}

/** Takes a provider off the allowlist, so no later section's daemon syncs its connections. */
export async function retireProvider(sql: Sql, providerId: string): Promise<void> {
  await sql`update calendar_providers set allowlisted = false where id = ${providerId}`;
}
