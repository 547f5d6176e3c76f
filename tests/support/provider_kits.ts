/** @module Test helpers that speak both fake providers: add/delete events, faults, clock moves. */
import type { ProviderKind } from "../../src/core/provider_kind.ts";
import type { Sql } from "../../src/storage/client.ts";
import type { Fault } from "../../testkit/fake_faults.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { type ProviderFixture, providerFixture } from "./sync_harness.ts";

type AnyFake = ReturnType<typeof startFakeGoogle> | ReturnType<typeof startFakeMicrosoft>;

/** A fixture plus the provider-neutral operations the tests need. */
export type KitFixture = ProviderFixture<AnyFake> & {
  kind: ProviderKind;
  put(title: string, id?: string): string;
  remove(id: string): void;
  /** A 200 answer listing no events (a provider fault), ending the round with a bogus cursor. */
  emptyListing(): Fault;
  /** The provider's answer for a deleted or unshared calendar. */
  calendarGone(): Fault;
};

const soon = (hours: number) => new Date(Date.now() + hours * 3_600_000).toISOString();

/** Starts the fake of `kind` with one connection (refresh token "rt-1"). */
export async function kitFixture(
  kind: ProviderKind,
  env: Record<string, string> = {},
): Promise<KitFixture> {
  if (kind === "google") {
    const fixture = await providerFixture("google", () => startFakeGoogle(), { env });
    const google = fixture.fake;
    return Object.assign(fixture, {
      kind,
      put: (title: string, id?: string) =>
        google.putEvent(fixture.calendar, { id, summary: title }).id,
      remove: (id: string) => void google.deleteEvent(fixture.calendar, id),
      emptyListing: (): Fault => ({
        kind: "status",
        status: 200,
        body: { kind: "calendar#events", items: [], nextSyncToken: "bogus-sync-token" },
      }),
      calendarGone: (): Fault => ({ kind: "status", status: 404, reason: "notFound" }),
    });
  }
  const fixture = await providerFixture("microsoft", () => startFakeMicrosoft(), {
    env,
    calendar: `AAMk${crypto.randomUUID().slice(0, 8)}`,
  });
  const graph = fixture.fake;
  let n = 0;
  return Object.assign(fixture, {
    kind,
    put: (title: string, id?: string) => {
      n++;
      return graph.putEvent(fixture.calendar, {
        id,
        subject: title,
        start: soon(n),
        end: soon(n + 1),
      })
        .id;
    },
    remove: (id: string) => void graph.deleteEvent(fixture.calendar, id),
    emptyListing: (): Fault => ({
      kind: "status",
      status: 200,
      body: {
        value: [],
        "@odata.deltaLink": `${graph.baseUrl}/me/calendarView/delta?$deltatoken=bogus`,
      },
    }),
    calendarGone: (): Fault => ({ kind: "status", status: 404 }),
  });
}

/** The clock reaches the connection's next poll: its due time is now. */
export async function pollComesDue(sql: Sql, id: string): Promise<void> {
  await sql`update external_calendar_connections set due_at = now() where id = ${id}`;
}

/** The clock reaches the connection's reconciliation (and with it its due time). */
export async function reconciliationComesDue(sql: Sql, id: string): Promise<void> {
  await sql`update external_calendar_connections
    set due_at = now(), reconcile_due_at = now() - interval '1 second' where id = ${id}`;
}

/**
 * Sets the next reconciliation a month away and requests a sync, so the completion that follows
 * shows the poll interval alone (a first reconciliation lands at random within its interval).
 */
export async function reconciliationFarAway(sql: Sql, id: string): Promise<void> {
  await sql`update external_calendar_connections
    set reconcile_due_at = now() + interval '30 days', sync_needed = true, due_at = now(),
      sync_requested_seq = sync_requested_seq + 1
    where id = ${id}`;
}

/** A backoff has run out (the clock passed backoff_until). */
export async function backoffRunsOut(sql: Sql, id: string): Promise<void> {
  await sql`update external_calendar_connections
    set due_at = now(), backoff_until = now() - interval '1 millisecond' where id = ${id}`;
}

/** Gives the connection a confirmed, unexpired push channel. */
export async function addLiveChannel(
  sql: Sql,
  id: string,
  provider: ProviderKind,
): Promise<string> {
  const channelId = crypto.randomUUID();
  await sql`insert into webhook_channels (connection_id, provider, channel_id, secret, status,
      expires_at)
    values (${id}, ${provider}, ${channelId}, ${"s".repeat(40)}, 'active',
      now() + interval '1 day')`;
  return channelId;
}

/** The scheduling columns of a connection. */
export async function scheduleRow(sql: Sql, id: string) {
  const [row] = await sql<{
    due_in_ms: number;
    reconcile_in_ms: number | null;
    sync_needed: boolean;
    status: string;
    last_verified_at: Date | null;
    last_notification_at: Date | null;
    push_missed_at: Date | null;
    sync_cursor: unknown;
    events: number;
    held: number;
  }[]>`
    select extract(epoch from c.due_at - now())::float8 * 1000 as due_in_ms,
      extract(epoch from c.reconcile_due_at - now())::float8 * 1000 as reconcile_in_ms,
      c.sync_needed, c.status, c.last_verified_at, c.last_notification_at, c.push_missed_at,
      c.sync_cursor,
      (select count(*) from external_calendar_events e where e.connection_id = c.id)::int as events,
      (select count(*) from held_event_deletions h where h.connection_id = c.id)::int as held
    from external_calendar_connections c where c.id = ${id}`;
  return row;
}
