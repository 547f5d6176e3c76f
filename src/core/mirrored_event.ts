/** @module One event as calsync mirrors it: what adapters produce and storage writes. */

/** What a mirrored row is: a one-off event, an occurrence of a series, or a moved occurrence. */
export type OccurrenceKind = "single" | "occurrence" | "exception";

/** The connected user's own answer, one vocabulary for both providers. */
export type ResponseStatus = "accepted" | "declined" | "tentative" | "needs_action" | "organizer";

/** How the event shows on a free/busy view (Google `transparency`, Graph `showAs`). */
export type BusyStatus = "busy" | "free" | "tentative" | "out_of_office" | "working_elsewhere";

/**
 * One occurrence as the calendar shows it, independent of the provider. Timed events carry
 * instants (`startsAt`/`endsAt`, ISO 8601 with offset) and all-day events carry dates
 * (`startDate`/`endDate`, end exclusive), never both: an all-day holiday is a date everywhere.
 */
export type MirroredEvent = {
  externalEventId: string;
  etag: string | null;
  status: string;
  kind: OccurrenceKind;
  /** Google `recurringEventId`, Graph `seriesMasterId`; null for single events. */
  seriesId: string | null;
  /** The start the series rule gave this occurrence (an instant, or a date when all-day). */
  originalStart: string | null;
  title: string | null;
  startsAt: string | null;
  endsAt: string | null;
  startDate: string | null;
  endDate: string | null;
  allDay: boolean;
  /** The event's own time zone name as the provider gave it (IANA or Windows). */
  timeZone: string | null;
  location: string | null;
  organizerEmail: string | null;
  responseStatus: ResponseStatus | null;
  busyStatus: BusyStatus | null;
  /** Whether the event blocks time: busy-ish and not declined by the user. */
  blocksTime: boolean;
  visibility: string | null;
  eventType: string | null;
  webLink: string | null;
  iCalUid: string | null;
  providerUpdatedAt: string | null;
  raw: unknown;
};

/** A recurring series' master resource (rule, exceptions), kept for consumers to read. */
export type MirroredSeries = { seriesId: string; etag: string | null; raw: unknown };

/** Whether a busy status and response mean the time is taken. */
export function blocksTime(
  busy: BusyStatus | null,
  response: ResponseStatus | null,
  status: string,
): boolean {
  if (status === "cancelled" || response === "declined") return false;
  return busy !== "free";
}
