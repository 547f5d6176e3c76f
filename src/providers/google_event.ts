/** @module Maps one Google Calendar event (singleEvents=true) to a mirror change; pure. */
import { z } from "zod";
import {
  blocksTime,
  type BusyStatus,
  type MirroredEvent,
  type ResponseStatus,
} from "../core/mirrored_event.ts";
import { isDate, localToInstant, offsetToInstant } from "../core/event_time.ts";
import { overlapsWindow, type SyncWindow } from "../core/sync_window.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { EventChange } from "./adapter.ts";

const EventDateTime = z.object({
  date: z.string().optional(),
  dateTime: z.string().optional(),
  timeZone: z.string().optional(),
}).loose();

const Person = z.object({
  email: z.string().optional(),
  self: z.boolean().optional(),
  responseStatus: z.string().optional(),
}).loose();

const GoogleEvent = z.object({
  id: z.string().min(1),
  status: z.string().optional(),
  etag: z.string().optional(),
  summary: z.string().optional(),
  updated: z.string().optional(),
  start: EventDateTime.optional(),
  end: EventDateTime.optional(),
  recurringEventId: z.string().optional(),
  originalStartTime: EventDateTime.optional(),
  location: z.string().optional(),
  organizer: Person.optional(),
  attendees: z.array(Person).optional(),
  transparency: z.string().optional(),
  visibility: z.string().optional(),
  eventType: z.string().optional(),
  htmlLink: z.string().optional(),
  iCalUID: z.string().optional(),
}).loose();

type EventDateTimeValue = z.infer<typeof EventDateTime>;

const RESPONSES: Readonly<Record<string, ResponseStatus>> = {
  accepted: "accepted",
  declined: "declined",
  tentative: "tentative",
  needsAction: "needs_action",
};

/** A time of a Google event: an instant for timed events, a date for all-day ones. */
export type GoogleTime = { instant: string | null; date: string | null };

function malformed(message: string): SyncFailure {
  return new SyncFailure({ kind: "malformed_response", status: 200, message });
}

/**
 * Reads an `EventDateTime`: `date` is all-day; `dateTime` carries an offset, or else is wall
 * time in its `timeZone` (or the calendar's zone). Unreadable values are refused.
 */
export function googleTime(
  value: EventDateTimeValue,
  calendarZone: string | null,
  context: string,
): GoogleTime {
  if (value.date !== undefined && value.dateTime === undefined) {
    if (!isDate(value.date)) {
      throw malformed(`Google returned ${context} with date "${value.date}"`);
    }
    return { instant: null, date: value.date };
  }
  const text = value.dateTime ?? "";
  const zone = value.timeZone ?? calendarZone;
  const instant = offsetToInstant(text) ?? (zone ? localToInstant(text, zone) : null);
  if (instant === null) {
    throw malformed(
      `Google returned ${context} with a time that cannot be converted: "${text}" in zone ${
        zone ?? "<none>"
      }`,
    );
  }
  return { instant, date: null };
}

function ownResponse(event: z.infer<typeof GoogleEvent>): ResponseStatus | null {
  const self = event.attendees?.find((attendee) => attendee.self);
  if (event.organizer?.self) return "organizer";
  if (self?.responseStatus) return RESPONSES[self.responseStatus] ?? null;
  // No attendee list: an event on the user's own calendar, which the user made.
  return event.attendees === undefined ? "organizer" : null;
}

function busyStatus(event: z.infer<typeof GoogleEvent>): BusyStatus {
  if (event.eventType === "outOfOffice") return "out_of_office";
  return event.transparency === "transparent" ? "free" : "busy";
}

function snakeCase(value: string): string {
  return value.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/**
 * Maps one `events.list` item to a change. Cancelled items (tombstones, cancelled instances)
 * and events wholly outside the round's window delete: the mirror holds only what the
 * calendar shows in the window.
 */
export function googleEventChange(
  item: unknown,
  context: { window: SyncWindow; calendarZone: string | null },
): EventChange {
  const parsed = GoogleEvent.safeParse(item);
  if (!parsed.success) {
    throw malformed(
      `Google returned an event that fails validation: ${parsed.error.issues[0]?.path.join(".")} ${
        parsed.error.issues[0]?.message
      }`,
    );
  }
  const event = parsed.data;
  if (event.status === "cancelled") return { op: "delete", externalEventId: event.id };
  if (!event.start || !event.end) {
    throw malformed(`Google returned event "${event.id}" without start or end`);
  }
  const zone = context.calendarZone;
  const start = googleTime(event.start, zone, `event "${event.id}" start`);
  const end = googleTime(event.end, zone, `event "${event.id}" end`);
  const original = event.originalStartTime
    ? googleTime(event.originalStartTime, zone, `event "${event.id}" originalStartTime`)
    : null;
  const allDay = start.date !== null;
  const originalStart = original ? original.instant ?? original.date : null;
  const startValue = start.instant ?? start.date;
  // Google flags no exceptions: an instance counts as one when it moved from its rule's slot.
  const kind = event.recurringEventId === undefined
    ? "single"
    : originalStart !== null && originalStart !== startValue
    ? "exception"
    : "occurrence";
  const status = event.status ?? "confirmed";
  const responseStatus = ownResponse(event);
  const busy = busyStatus(event);
  const mirrored: MirroredEvent = {
    externalEventId: event.id,
    etag: event.etag ?? null,
    status,
    kind,
    seriesId: event.recurringEventId ?? null,
    originalStart,
    title: event.summary ?? null,
    startsAt: start.instant,
    endsAt: end.instant,
    startDate: start.date,
    endDate: allDay ? end.date : null,
    allDay,
    timeZone: event.start.timeZone ?? (allDay ? null : zone),
    location: event.location ?? null,
    organizerEmail: event.organizer?.email ?? null,
    responseStatus,
    busyStatus: busy,
    blocksTime: blocksTime(busy, responseStatus, status),
    visibility: event.visibility ?? "default",
    eventType: event.eventType ? snakeCase(event.eventType) : "default",
    webLink: event.htmlLink ?? null,
    iCalUid: event.iCalUID ?? null,
    providerUpdatedAt: event.updated ?? null,
    raw: item,
  };
  if (!overlapsWindow(mirrored, context.window)) {
    return { op: "delete", externalEventId: event.id };
  }
  return { op: "upsert", event: mirrored };
}
