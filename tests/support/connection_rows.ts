/** @module Connection rows for storage tests: a provider and its calendars, nothing synced. */
import type { ProviderKind } from "../../src/core/provider_kind.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import type { Sql } from "../../src/storage/client.ts";
import { insertConnection } from "../../src/storage/connections.ts";

/** Inserts an allowlisted provider of `kind` with `count` connections `<kind>-0`, `<kind>-1`... */
export async function insertConnections(
  sql: Sql,
  kind: ProviderKind,
  count: number,
): Promise<{ providerId: string }> {
  const provider = await insertProvider(sql, { kind, name: kind, allowlisted: true });
  for (let i = 0; i < count; i++) {
    await insertConnection(sql, {
      providerId: provider.id,
      externalCalendarId: `${kind}-${i}`,
      refreshToken: "rt",
      accountLabel: null,
    });
  }
  return { providerId: provider.id };
}
