/** @module Wires the real sync engine to a migrated database and fake providers for tests. */
import { loadConfig } from "../../src/config/config.ts";
import type { Sql } from "../../src/storage/client.ts";
import {
  claimDueConnections,
  type ClaimedConnection,
  insertConnection,
} from "../../src/storage/connections.ts";
import { listEvents } from "../../src/storage/calendar_events.ts";
import type { ProviderKind } from "../../src/core/provider_kind.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { createMetrics, type Metrics } from "../../src/metrics/metrics.ts";
import type { FetchFn } from "../../src/providers/provider_fetch.ts";
import { createSyncDeps } from "../../src/daemon/wiring.ts";
import { runSync, type SyncDeps, type SyncOutcome } from "../../src/sync/run_sync.ts";
import { createMigratedDatabase, type MigratedDatabase } from "../../testkit/scratch_database.ts";

/** Settings that make failures fast and deterministic in tests. */
export const TEST_ENV: Record<string, string> = {
  SYNC_BACKOFF_BASE_MS: "60000",
  SYNC_BACKOFF_MAX_MS: "600000",
  SYNC_HTTP_TIMEOUT_MS: "2000",
  SYNC_LEASE_MS: "30000",
};

/** A sync engine under test. */
export type Harness = {
  deps: SyncDeps;
  metrics: Metrics;
  /** Claims this connection (if due) and runs one sync; null when it was not claimable. */
  syncOnce(connectionId: string): Promise<SyncOutcome | null>;
  addConnection(
    input: { kind: ProviderKind; calendar: string; refreshToken: string },
  ): Promise<string>;
};

/** A migrated database, one fake provider with refresh token "rt-1", and one connection. */
export type ProviderFixture<F> = {
  db: MigratedDatabase;
  fake: F;
  harness: Harness;
  calendar: string;
  id: string;
  [Symbol.asyncDispose](): Promise<void>;
};

/** Builds a ProviderFixture for Google (`startFakeGoogle`) or Microsoft (`startFakeMicrosoft`). */
export async function providerFixture<F extends FakeProvider>(
  kind: ProviderKind,
  startFake: () => F,
  options: {
    env?: Record<string, string>;
    calendar?: string;
    fetch?: FetchFn;
    now?: () => number;
  } = {},
): Promise<ProviderFixture<F>> {
  const db = await createMigratedDatabase(`sync_${kind}`);
  const fake = startFake();
  fake.addRefreshToken("rt-1");
  const urls: Record<string, string> = kind === "google"
    ? { GOOGLE_API_BASE_URL: fake.baseUrl, GOOGLE_TOKEN_URL: fake.tokenUrl }
    : { MICROSOFT_GRAPH_BASE_URL: fake.baseUrl, MICROSOFT_TOKEN_URL: fake.tokenUrl };
  const harness = createHarness(db.sql, { ...urls, ...options.env }, {
    fetch: options.fetch,
    now: options.now,
  });
  const calendar = options.calendar ?? `cal-${crypto.randomUUID().slice(0, 8)}`;
  fake.addCalendar(calendar);
  const id = await harness.addConnection({ kind, calendar, refreshToken: "rt-1" });
  return {
    db,
    fake,
    harness,
    calendar,
    id,
    async [Symbol.asyncDispose]() {
      await fake.close();
      await db.close();
    },
  };
}

/** What the fixture needs of a fake provider. */
export type FakeProvider = {
  baseUrl: string;
  tokenUrl: string;
  addRefreshToken(token: string): void;
  addCalendar(calendarId: string): void;
  close(): Promise<void>;
};

/** Builds the engine from env overrides (provider URLs etc.) on an existing database. */
export function createHarness(
  sql: Sql,
  env: Record<string, string>,
  options: { fetch?: FetchFn; now?: () => number } = {},
): Harness {
  const config = loadConfig({ ...TEST_ENV, ...env });
  const metrics = createMetrics();
  const deps = createSyncDeps(config, sql, metrics, options);
  const providers = new Map<ProviderKind, string>();
  return {
    deps,
    metrics,
    async syncOnce(connectionId) {
      const claimed = await claimOne(sql, connectionId);
      if (!claimed) return null;
      return await runSync(deps, claimed, new AbortController().signal);
    },
    async addConnection(input) {
      let providerId = providers.get(input.kind);
      if (!providerId) {
        providerId = (await insertProvider(sql, {
          kind: input.kind,
          name: `${input.kind}-${crypto.randomUUID().slice(0, 6)}`,
          allowlisted: true,
        })).id;
        providers.set(input.kind, providerId);
      }
      const { id } = await insertConnection(sql, {
        providerId,
        externalCalendarId: input.calendar,
        refreshToken: input.refreshToken,
        accountLabel: null,
      });
      return id;
    },
  };
}

/** Claims due connections until this one is among them; releases nothing else (tests own the db). */
export async function claimOne(sql: Sql, connectionId: string): Promise<ClaimedConnection | null> {
  const rows = await sql<{ id: string; due_at: Date }[]>`
    select id, due_at from external_calendar_connections where id = ${connectionId}
      and (sync_needed or reconcile_due_at is not null) and status = 'active'
      and due_at <= now()`;
  if (rows.length === 0) return null;
  // Make only this connection due-first so a plain claim of 1 picks it; the claim leaves the
  // due time alone, so it goes back afterwards.
  await sql`update external_calendar_connections set due_at = '-infinity' where id = ${connectionId}`;
  const [claimed] = await claimDueConnections(sql, {
    limit: 1,
    leaseMs: 30_000,
    ownerPrefix: "test",
    allowlist: null,
  });
  await sql`update external_calendar_connections set due_at = ${rows[0].due_at}
    where id = ${connectionId} and due_at = '-infinity'`;
  return claimed?.id === connectionId ? claimed : null;
}

/** The connection row's drill columns. */
export async function connectionRow(sql: Sql, id: string) {
  const [row] = await sql<{
    error_count: number;
    last_error: Record<string, unknown> | null;
    backoff_until: Date | null;
    sync_needed: boolean;
    status: string;
    sync_cursor: unknown;
    lease_owner: string | null;
    last_success_at: Date | null;
  }[]>`
    select error_count, last_error, backoff_until, sync_needed, status, sync_cursor, lease_owner,
      last_success_at
    from external_calendar_connections where id = ${id}`;
  return row;
}

/** The mirror as comparable tuples: id, title, etag. */
export async function mirror(sql: Sql, connectionId: string): Promise<string[]> {
  const rows = await listEvents(sql, connectionId);
  return rows.map((row) => `${row.external_event_id}|${row.title ?? ""}|${row.etag ?? ""}`);
}

/** The same tuples from a provider's live events. */
export function expected(
  events: readonly {
    id: string;
    summary?: string;
    subject?: string;
    etag?: string;
    "@odata.etag"?: string;
  }[],
): string[] {
  return events
    .map((e) => `${e.id}|${e.summary ?? e.subject ?? ""}|${e.etag ?? e["@odata.etag"] ?? ""}`)
    .sort((a, b) => (a.split("|")[0] < b.split("|")[0] ? -1 : 1));
}

/** Reads a counter's current value from a registry. */
export async function counterValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  const value = metric?.values.find((v) =>
    Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l)
  );
  return value?.value ?? 0;
}

/** A fetch that can hold the next matching provider request until released. */
export type FetchGate = {
  fetch: typeof fetch;
  /** Holds the next request whose URL includes `match`; resolves when one is held. */
  close(): Promise<void>;
  /** Lets the held request (and all later ones) through. */
  open(): void;
};

/** Creates a FetchGate for URLs containing `match` (e.g. "/events"). */
export function createFetchGate(match: string): FetchGate {
  let gate: Promise<void> | null = null;
  let release: () => void = () => {};
  let entered: () => void = () => {};
  return {
    async fetch(input, init) {
      if (gate && String(input).includes(match)) {
        const held = gate;
        entered();
        await held;
      }
      return await fetch(input, init);
    },
    close() {
      gate = new Promise((resolve) => (release = resolve));
      return new Promise((resolve) => (entered = resolve));
    },
    open() {
      gate = null;
      release();
    },
  };
}
