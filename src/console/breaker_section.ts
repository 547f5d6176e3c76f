/** @module The overview's provider breakers, shown only where `provider_health` exists (#15). */
import type { Sql } from "../storage/client.ts";
import { sampleRows, tableExists } from "../storage/connection_views.ts";
import type { Html } from "./console_layout.ts";
import { genericTable } from "./optional_table.ts";

/**
 * The breakers section, or null when the breaker feature is not deployed. MERGER: replace the
 * generic rows with the breaker module's own read (state, opened_at, next probe) once #15 lands.
 */
export async function providerBreakersSection(sql: Sql): Promise<Html | null> {
  if (!(await tableExists(sql, "provider_health"))) return null;
  return genericTable("Provider breakers", await sampleRows(sql, "provider_health", 50));
}
