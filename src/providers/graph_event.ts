/** @module Maps one Graph calendarView delta item (with its series master) to a change; pure. */
import { z } from "zod";
import {
  blocksTime,
  type BusyStatus,
  type MirroredEvent,
  type OccurrenceKind,
  type ResponseStatus,
} from "../core/mirrored_event.ts";
import { localToInstant, offsetToInstant } from "../core/event_time.ts";
import { overlapsWindow, type SyncWindow } from "../core/sync_window.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { EventChange } from "./adapter.ts";

const GraphDateTime = z.object({ dateTime: z.string(), timeZone: z.string().optional() }).loose();

const GraphEvent = z.object({
  id: z.string().min(1),
  "@removed": z.object({ reason: z.string().optional() }).loose().optional(),
  "@odata.etag": z.string().optional(),
  type: z.string().nullable().optional(),
  seriesMasterId: z.string().nullable().optional(),
  subject: z.string().nullable().optional(),
  isAllDay: z.boolean().optional(),
  isCancelled: z.boolean().optional(),
  lastModifiedDateTime: z.string().optional(),
  start: GraphDateTime.optional(),
  end: GraphDateTime.optional(),
  originalStart: z.string().nullable().optional(),
  originalStartTimeZone: z.string().nullable().optional(),
  location: z.object({ displayName: z.string().nullable().optional() }).loose().nullable()
    .optional(),
  organizer: z.object({
    emailAddress: z.object({ address: z.string().nullable().optional() }).loose().optional(),
  }).loose().nullable().optional(),
  responseStatus: z.object({ response: z.string().nullable().optional() }).loose().nullable()
    .optional(),
  showAs: z.string().nullable().optional(),
  sensitivity: z.string().nullable().optional(),
  webLink: z.string().nullable().optional(),
  iCalUId: z.string().nullable().optional(),
}).loose();

/** A parsed Graph event (delta item or series master). */
export type GraphEventFields = z.infer<typeof GraphEvent>;

const RESPONSES: Readonly<Record<string, ResponseStatus>> = {
  accepted: "accepted",
  declined: "declined",
  tentativelyAccepted: "tentative",
  notResponded: "needs_action",
  organizer: "organizer",
};

const SHOW_AS: Readonly<Record<string, BusyStatus>> = {
  free: "free",
  tentative: "tentative",
  busy: "busy",
  oof: "out_of_office",
  workingElsewhere: "working_elsewhere",
};

const SENSITIVITY: Readonly<Record<string, string>> = {
  normal: "default",
  personal: "personal",
  private: "private",
  confidential: "confidential",
};

function malformed(message: string): SyncFailure {
  return new SyncFailure({ kind: "malformed_response", status: 200, message });
}

/** Parses a Graph event or refuses it as a classified `malformed_response`. */
export function parseGraphEvent(item: unknown): GraphEventFields {
  const parsed = GraphEvent.safeParse(item);
  if (!parsed.success) {
    throw malformed(
      `Microsoft Graph returned an event that fails validation: ${
        parsed.error.issues[0]?.path.join(".")
      } ${parsed.error.issues[0]?.message}`,
    );
  }
  return parsed.data;
}

/**
 * The instant of a Graph `dateTimeTimeZone`. We ask for UTC (`Prefer: outlook.timezone`), but
 * convert whatever zone the answer names, and refuse one we cannot convert rather than let
 * PostgreSQL read an offset-less time in its session zone.
 */
export function graphInstant(value: z.infer<typeof GraphDateTime>, context: string): string {
  const zone = value.timeZone ?? "UTC";
  const instant = offsetToInstant(value.dateTime) ?? localToInstant(value.dateTime, zone);
  if (instant === null) {
    throw malformed(
      `Microsoft Graph returned ${context} in a time zone that cannot be converted: "${value.dateTime}" in "${zone}"`,
    );
  }
  return instant;
}

function graphDate(value: z.infer<typeof GraphDateTime>, context: string): string {
  // All-day events ignore Prefer: their dateTime is midnight of the day the user sees.
  const date = value.dateTime.slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    throw malformed(`Microsoft Graph returned ${context} with date "${value.dateTime}"`);
  }
  return date;
}

function kindOf(type: string | null | undefined): OccurrenceKind {
  return type === "occurrence" ? "occurrence" : type === "exception" ? "exception" : "single";
}

/**
 * Maps one delta item to a change. An occurrence carries only its id, type, series and times
 * (microsoft-graph-docs#7632), so its other fields come from `master`. `@removed`, cancelled
 * and out-of-window items delete (delta reports changes outside the window too).
 */
export function graphEventChange(
  item: unknown,
  context: { window: SyncWindow; master?: GraphEventFields | null },
): EventChange {
  const event = parseGraphEvent(item);
  if (event["@removed"] || event.isCancelled) return { op: "delete", externalEventId: event.id };
  if (!event.start || !event.end) {
    throw malformed(`Microsoft Graph returned event "${event.id}" without start or end`);
  }
  const kind = kindOf(event.type);
  // Occurrences inherit from the master; exceptions and single events carry their own fields.
  const fields: GraphEventFields = kind === "occurrence" && context.master
    ? { ...context.master, ...event }
    : event;
  const allDay = fields.isAllDay ?? false;
  const what = `event "${event.id}"`;
  const startsAt = allDay ? null : graphInstant(event.start, `${what} start`);
  const startDate = allDay ? graphDate(event.start, `${what} start`) : null;
  const status = "confirmed";
  const responseStatus = RESPONSES[fields.responseStatus?.response ?? ""] ?? null;
  const busy = SHOW_AS[fields.showAs ?? ""] ?? null;
  const originalStart = kind === "single"
    ? null
    : event.originalStart
    ? (offsetToInstant(event.originalStart) ??
      graphInstant({ dateTime: event.originalStart }, what))
    : startsAt ?? startDate;
  const mirrored: MirroredEvent = {
    externalEventId: event.id,
    etag: event["@odata.etag"] ?? null,
    status,
    kind,
    seriesId: event.seriesMasterId ?? null,
    originalStart: allDay && originalStart ? originalStart.slice(0, 10) : originalStart,
    title: fields.subject ?? null,
    startsAt,
    endsAt: allDay ? null : graphInstant(event.end, `${what} end`),
    startDate,
    endDate: allDay ? graphDate(event.end, `${what} end`) : null,
    allDay,
    timeZone: fields.originalStartTimeZone ?? null,
    location: fields.location?.displayName || null,
    organizerEmail: fields.organizer?.emailAddress?.address ?? null,
    responseStatus,
    busyStatus: busy,
    blocksTime: blocksTime(busy, responseStatus, status),
    visibility: SENSITIVITY[fields.sensitivity ?? ""] ?? null,
    eventType: fields.showAs === "oof" ? "out_of_office" : "default",
    webLink: fields.webLink ?? null,
    iCalUid: fields.iCalUId ?? null,
    providerUpdatedAt: fields.lastModifiedDateTime ?? null,
    raw: item,
  };
  if (!overlapsWindow(mirrored, context.window)) {
    return { op: "delete", externalEventId: event.id };
  }
  return { op: "upsert", event: mirrored };
}
