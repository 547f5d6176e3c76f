/**
 * @module The overview's change-feed subscribers and their lag; subscriber actions are the admin
 * API's and the CLI's (`calsync subscribers pause|resume|replay`), not the console's yet.
 */
import { html } from "hono/html";
import type { Sql } from "../storage/client.ts";
import { feedBounds } from "../storage/change_feed.ts";
import { listSubscribers } from "../storage/subscribers.ts";
import type { Html } from "./console_layout.ts";
import { genericTable } from "./optional_table.ts";

/** The subscribers section: each subscriber's position and how far behind the feed's head. */
export async function subscriberLagSection(sql: Sql): Promise<Html | null> {
  const [{ head }, subscribers] = await Promise.all([feedBounds(sql), listSubscribers(sql)]);
  const rows = subscribers.map((s) => ({
    id: s.id,
    url: s.url,
    status: s.status,
    paused_reason: s.paused_reason,
    acked_seq: s.acked_seq,
    lag_changes: Math.max(0, head - s.acked_seq),
    failing_since: s.failing_since,
    delivered: s.delivered_total,
  }));
  return html`${genericTable(`Change-feed subscribers (feed head ${head})`, rows)}
    <p class="muted">Pause, resume and replay subscribers with the admin API or
      <code>calsync subscribers</code>.</p>`;
}

/** The page every subscriber action answers with until the feed's actions are wired in. */
export function subscriberActionsUnavailable(): Html {
  return html`<p class="alert">Subscriber actions (pause, resume, replay from a sequence) are not
    available in this console yet; use the admin API.</p>`;
}
