/** @module The overview's provider breakers: state, since when, and the next probe. */
import type { Sql } from "../storage/client.ts";
import { readProviderHealth } from "../storage/provider_health.ts";
import type { Html } from "./console_layout.ts";
import { genericTable } from "./optional_table.ts";

/** The breakers section, one row per provider as every replica sees it (shared state). */
export async function providerBreakersSection(sql: Sql): Promise<Html | null> {
  const rows = await readProviderHealth(sql);
  return genericTable(
    "Provider breakers",
    rows.map((row) => ({
      provider: row.provider,
      state: row.state,
      since: row.changed_at,
      reason: row.reason,
      next_probe: row.state === "closed" ? null : row.probe_at,
      probe_interval_s: Math.round(row.probe_interval_ms / 1000),
      quota_per_minute: row.quota_per_minute,
      rate_limited_at: row.rate_limited_at,
    })),
  );
}
