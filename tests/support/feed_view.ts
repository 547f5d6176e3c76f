/** @module Reads the change feed and the mirror as the feed describes it (test helpers). */
import type { Sql } from "../../src/storage/client.ts";
import { type ChangeRow, readChanges } from "../../src/storage/change_feed.ts";
import { occurrenceKey, type ReplayedMirror } from "../../src/feed/replay.ts";

/** Every committed change after `after`, in order. */
export async function allChanges(sql: Sql, after = 0): Promise<ChangeRow[]> {
  const out: ChangeRow[] = [];
  for (;;) {
    const page = await readChanges(sql, after, 1_000);
    out.push(...page);
    if (page.length < 1_000) return out;
    after = page[page.length - 1].seq;
  }
}

/** The mirror's occurrences exactly as change rows carry them. */
export async function mirrorAsFeed(sql: Sql): Promise<ReplayedMirror> {
  const rows = await sql<
    { connection_id: string; external_event_id: string; data: Record<string, unknown> }[]
  >`
    select e.connection_id, e.external_event_id, change_feed_event_data(e) as data
    from external_calendar_events e`;
  return new Map(
    rows.map((row) => [occurrenceKey(row.connection_id, row.external_event_id), row.data]),
  );
}
