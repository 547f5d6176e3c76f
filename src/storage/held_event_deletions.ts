/** @module SQL for `held_event_deletions`: deletions the mass-deletion guard held back. */
import type { Sql, Tx } from "./client.ts";

/** Stores held deletions of a connection (in the sync's write transaction); repeats are kept once. */
export async function holdDeletions(
  tx: Tx,
  connectionId: string,
  externalEventIds: readonly string[],
): Promise<number> {
  if (externalEventIds.length === 0) return 0;
  const result = await tx`
    insert into held_event_deletions (connection_id, external_event_id)
    select ${connectionId}::uuid, unnest(${externalEventIds as string[]}::text[])
    on conflict do nothing`;
  return result.count;
}

/** Removes and returns every held deletion of a connection (in the release transaction). */
export async function takeHeldDeletions(tx: Tx, connectionId: string): Promise<string[]> {
  const rows = await tx<{ external_event_id: string }[]>`
    delete from held_event_deletions where connection_id = ${connectionId}
    returning external_event_id`;
  return rows.map((row) => row.external_event_id);
}

/** The held deletions of a connection, oldest first. */
export async function listHeldDeletions(sql: Sql | Tx, connectionId: string): Promise<string[]> {
  const rows = await sql<{ external_event_id: string }[]>`
    select external_event_id from held_event_deletions where connection_id = ${connectionId}
    order by held_at, external_event_id`;
  return rows.map((row) => row.external_event_id);
}
