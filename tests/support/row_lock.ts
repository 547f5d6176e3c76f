/** @module Holds a connection's row lock in a transaction of its own, as a sync's write does. */
import type { Sql } from "../../src/storage/client.ts";

/** Resolves once the row is locked; `release()` commits and resolves when the lock is gone. */
export async function holdConnectionLock(
  sql: Sql,
  connectionId: string,
): Promise<{ release(): Promise<void> }> {
  const locked = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const holder = sql.begin(async (tx) => {
    await tx`select 1 from external_calendar_connections where id = ${connectionId} for update`;
    locked.resolve();
    await release.promise;
  });
  await Promise.race([locked.promise, holder]);
  return {
    async release() {
      release.resolve();
      await holder;
    },
  };
}
