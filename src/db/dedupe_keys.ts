/** @module SQL for `webhook_dedupe_keys`. */
import type { Sql } from "./client.ts";

/** Deletes up to `batchSize` keys older than `ttlMs`; small batches keep locks short. */
export async function pruneDedupeKeys(sql: Sql, ttlMs: number, batchSize = 1_000): Promise<number> {
  const result = await sql`
    delete from webhook_dedupe_keys where key in (
      select key from webhook_dedupe_keys
      where received_at < now() - make_interval(secs => ${ttlMs / 1000})
      order by received_at
      limit ${batchSize}
    )`;
  return result.count;
}
