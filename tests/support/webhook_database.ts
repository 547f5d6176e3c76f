/** @module Database pieces the webhook tests share: an active channel, NOTIFYs, a dead pool. */
import { openSql, type Sql } from "../../src/storage/client.ts";
import { SYNC_CHANNEL } from "../../src/storage/connections.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import type { ProviderKind } from "../../src/core/provider_kind.ts";

/** Inserts a channel row already active, as after a successful create, with no work due. */
export async function insertActiveChannel(
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
export type SyncRequests = { received: string[]; [Symbol.asyncDispose](): Promise<void> };

/** LISTENs on the sync channel until disposed. */
export async function listenForSyncRequests(sql: Sql): Promise<SyncRequests> {
  const received: string[] = [];
  const listener = await sql.listen(SYNC_CHANNEL, (payload) => received.push(payload));
  return { received, [Symbol.asyncDispose]: () => listener.unlisten() };
}

/** A pool on a port where nothing listens: every statement fails to connect. */
export type UnreachableDatabase = { sql: Sql; [Symbol.asyncDispose](): Promise<void> };

/** Opens an UnreachableDatabase (connect attempts give up after 500 ms). */
export function unreachableDatabase(): UnreachableDatabase {
  const sql = openSql("postgres://postgres@127.0.0.1:9/nothing", {
    max: 1,
    connectTimeoutMs: 500,
  });
  return { sql, [Symbol.asyncDispose]: () => sql.end({ timeout: 0 }) };
}
