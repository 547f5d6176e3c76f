/** @module `calsync events`: the occurrences of one connection in a time range. */
import { UsageError } from "../core/errors.ts";
import { resolveZone } from "../core/event_time.ts";
import { listOccurrences } from "../storage/calendar_events.ts";
import { type CommandHandler, connectionOption, required } from "./command_context.ts";
import { formatTable } from "./format.ts";

function instant(options: Record<string, unknown>, name: string): string {
  const value = required(options as Record<string, string>, name);
  // A bare date means its midnight in the chosen zone; that needs the zone, so it is refused.
  if (!/[T ]\d{2}:\d{2}/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new UsageError(
      `Cannot read --${name} "${value}": give an ISO 8601 instant with an offset, e.g. 2026-12-25T00:00:00-08:00`,
    );
  }
  if (!/(Z|[+-]\d{2}:?\d{2})$/i.test(value)) {
    throw new UsageError(`Cannot read --${name} "${value}": the instant needs an offset or Z`);
  }
  return new Date(Date.parse(value)).toISOString();
}

/**
 * Prints the occurrences overlapping [--from, --to), ordered by start; all-day events are listed
 * by date, on the dates the range covers in `--zone` (UTC unless given: an offset names no zone).
 */
export const eventsCommand: CommandHandler = async ({ sql, options, emit }) => {
  const id = connectionOption(options);
  const from = instant(options, "from");
  const to = instant(options, "to");
  if (Date.parse(from) >= Date.parse(to)) {
    throw new UsageError(`Cannot list events: --from ${from} is not before --to ${to}`);
  }
  const zoneName = typeof options.zone === "string" ? options.zone : "UTC";
  const zone = resolveZone(zoneName);
  if (!zone) throw new UsageError(`Cannot list events: unknown time zone "${zoneName}"`);
  const rows = await listOccurrences(sql, id, { from, to, zone });
  const printed = rows.map((row) => ({
    id: row.external_event_id,
    kind: row.occurrence_kind,
    series_id: row.series_id,
    title: row.title,
    start: row.all_day ? row.start_date : row.starts_at?.toISOString() ?? null,
    end: row.all_day ? row.end_date : row.ends_at?.toISOString() ?? null,
    all_day: row.all_day,
    time_zone: row.time_zone,
    location: row.location,
    response_status: row.response_status,
    busy_status: row.busy_status,
    blocks_time: row.blocks_time,
  }));
  emit(printed, formatTable(printed, ["start", "end", "title", "kind", "response_status", "id"]));
};
