/** @module Compares the mirror with a fake's calendar view as "id|title|start" tuples. */
import type { Sql } from "../../src/storage/client.ts";
import { listEvents } from "../../src/storage/calendar_events.ts";

type Time = { date?: string; dateTime?: string; timeZone?: string };

function startOf(start: Time | undefined): string {
  if (!start) return "<none>";
  if (start.date) return start.date;
  const text = start.dateTime ?? "";
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(text);
  return new Date(Date.parse(hasZone ? text : `${text}Z`)).toISOString();
}

/** The mirror's rows of a connection as sorted tuples. */
export async function mirrorView(sql: Sql, connectionId: string): Promise<string[]> {
  const rows = await listEvents(sql, connectionId);
  return rows.map((row) =>
    `${row.external_event_id}|${row.title ?? ""}|${
      row.start_date ?? row.starts_at?.toISOString() ?? "<none>"
    }`
  ).sort();
}

/** A fake's calendar view as the same tuples; Graph all-day starts become dates. */
export function expectedView(
  events: readonly {
    id: string;
    summary?: string;
    subject?: string;
    isAllDay?: boolean;
    start?: Time;
  }[],
): string[] {
  return events.map((event) => {
    const start = event.isAllDay ? event.start?.dateTime?.slice(0, 10) : startOf(event.start);
    return `${event.id}|${event.summary ?? event.subject ?? ""}|${start}`;
  }).sort();
}
