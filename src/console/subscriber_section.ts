/**
 * @module The overview's change-feed subscribers and their lag, shown only where
 * `change_subscribers` exists (#14); subscriber actions are not available in the console yet.
 */
import { html } from "hono/html";
import type { Sql } from "../storage/client.ts";
import { sampleRows, tableExists } from "../storage/connection_views.ts";
import type { Html } from "./console_layout.ts";
import { genericTable } from "./optional_table.ts";

/**
 * The subscribers section, or null when the change feed is not deployed. MERGER: replace the
 * generic rows with the feed's own lag query (head sequence minus each subscriber's position).
 */
export async function subscriberLagSection(sql: Sql): Promise<Html | null> {
  if (!(await tableExists(sql, "change_subscribers"))) return null;
  return html`${
    genericTable("Change-feed subscribers", await sampleRows(sql, "change_subscribers", 50))
  }
    <p class="muted">Pausing, resuming and replaying subscribers is not available in the console
      yet.</p>`;
}

/** The page every subscriber action answers with until the feed's actions are wired in. */
export function subscriberActionsUnavailable(): Html {
  return html`<p class="alert">Subscriber actions (pause, resume, replay from a sequence) are not
    available in this console yet; use the admin API.</p>`;
}
