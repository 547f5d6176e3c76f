/**
 * @module The webhook endpoints over a scratch database with one provider, with the sync NOTIFYs
 * and log lines they cause, for the Google and Graph webhook tests.
 */
import type { ProviderKind } from "../../src/core/provider_kind.ts";
import type { Sql } from "../../src/storage/client.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection, SYNC_CHANNEL } from "../../src/storage/connections.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import { createMigratedDatabase, type MigratedDatabase } from "../../testkit/scratch_database.ts";
import { captureLogs } from "./log_capture.ts";
import { serveWebhooks, type WebhookServer } from "./webhook_server.ts";
import type { WorkGate } from "../../src/storage/work_gate.ts";

/** A connection whose channel is active. */
export type ListeningConnection = { id: string; channelId: string; rowId: string };

/** Served webhook endpoints and what they did; disposing it stops and drops everything. */
export type WebhookFixture = {
  db: MigratedDatabase;
  server: WebhookServer;
  /** Connection ids NOTIFYed for a sync. */
  syncs: string[];
  /** Lines logged at debug and above. */
  logLines: string[];
  /** What the endpoints use as their database from now on (null: not open). */
  useDatabase(sql: Sql | null): void;
  /** Adds a connection to `calendar` with an active channel (a new random id), no work due. */
  listeningConnection(input: {
    calendar: string;
    refreshToken: string;
    secret: string;
    resourceId?: string;
  }): Promise<ListeningConnection>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** Builds a WebhookFixture with one allowlisted provider of `kind`. */
export async function webhookFixture(
  kind: ProviderKind,
  options: { gate?: WorkGate } = {},
): Promise<WebhookFixture> {
  await using stack = new AsyncDisposableStack();
  const logs = stack.use(await captureLogs("debug"));
  const db = stack.use(await createMigratedDatabase(`webhook_${kind}`));
  const provider = await insertProvider(db.sql, { kind, name: kind, allowlisted: true });
  const syncs = stack.use(await listenForSyncRequests(db.sql));
  let current: Sql | null = db.sql;
  const server = stack.use(await serveWebhooks(() => current, { gate: options.gate }));
  const owned = stack.move();
  return {
    db,
    server,
    syncs: syncs.received,
    logLines: logs.lines,
    useDatabase: (sql) => void (current = sql),
    async listeningConnection({ calendar, refreshToken, secret, resourceId }) {
      const { id } = await insertConnection(db.sql, {
        providerId: provider.id,
        externalCalendarId: calendar,
        refreshToken,
        accountLabel: null,
      });
      const channelId = crypto.randomUUID();
      const rowId = await insertActiveChannel(db.sql, {
        connectionId: id,
        provider: kind,
        channelId,
        secret,
        resourceId,
      });
      return { id, channelId, rowId };
    },
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}

/** Inserts a channel row already active, as after a successful create, with no work due. */
async function insertActiveChannel(
  sql: Sql,
  input: {
    connectionId: string;
    provider: ProviderKind;
    channelId: string;
    secret: string;
    resourceId?: string;
  },
): Promise<string> {
  const { resourceId, ...channel } = input;
  const row = await insertChannel(sql, channel);
  await sql`update webhook_channels
    set status = 'active', resource_id = ${resourceId ?? null}, next_work_at = null
    where id = ${row.id}`;
  return row.id;
}

/** The connection ids NOTIFYed on the sync channel since `listenForSyncRequests()`. */
type SyncRequests = { received: string[]; [Symbol.asyncDispose](): Promise<void> };

/** LISTENs on the sync channel until disposed. */
async function listenForSyncRequests(sql: Sql): Promise<SyncRequests> {
  const received: string[] = [];
  const listener = await sql.listen(SYNC_CHANNEL, (payload) => received.push(payload));
  return { received, [Symbol.asyncDispose]: () => listener.unlisten() };
}
