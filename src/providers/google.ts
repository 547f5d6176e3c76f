/** @module Google Calendar v3 adapter: events.list full and incremental sync with paging. */
import { z } from "zod";
import { SyncFailure } from "../failures/failure.ts";
import type { ChangePage, EventChange, FetchPageInput, ProviderAdapter } from "./adapter.ts";
import { type FetchFn, fetchProviderJson } from "./provider_fetch.ts";

const EventDateTime = z.object({
  date: z.string().optional(),
  dateTime: z.string().optional(),
  timeZone: z.string().optional(),
}).loose();

const GoogleEvent = z.object({
  id: z.string().min(1),
  status: z.string().optional(),
  etag: z.string().optional(),
  summary: z.string().optional(),
  updated: z.string().optional(),
  start: EventDateTime.optional(),
  end: EventDateTime.optional(),
}).loose();

const EventsPage = z.object({
  items: z.array(z.unknown()).default([]),
  nextPageToken: z.string().min(1).optional(),
  nextSyncToken: z.string().min(1).optional(),
}).loose();

/** Where a Google sync stands: a sync token (incremental) and/or the next page to read. */
export type GooglePosition = { syncToken?: string; pageToken?: string };

const Position = z.object({ syncToken: z.string().optional(), pageToken: z.string().optional() });

/** Options for the Google adapter. */
export type GoogleAdapterOptions = {
  baseUrl: string;
  timeoutMs: number;
  pageSize?: number;
  fetch?: FetchFn;
};

function toInstant(value: z.infer<typeof EventDateTime> | undefined): string | null {
  if (!value) return null;
  if (value.dateTime) return value.dateTime;
  if (value.date) return `${value.date}T00:00:00Z`;
  return null;
}

/** Maps one Google event to a change; cancelled items (tombstones carry only an id) delete. */
export function googleEventChange(item: unknown): EventChange {
  const parsed = GoogleEvent.safeParse(item);
  if (!parsed.success) {
    throw new SyncFailure({
      kind: "malformed_response",
      status: 200,
      message: `Google returned an event that fails validation: ${
        parsed.error.issues[0]?.path.join(".")
      } ${parsed.error.issues[0]?.message}`,
    });
  }
  const event = parsed.data;
  if (event.status === "cancelled") return { op: "delete", externalEventId: event.id };
  return {
    op: "upsert",
    event: {
      externalEventId: event.id,
      etag: event.etag ?? null,
      status: event.status ?? "confirmed",
      title: event.summary ?? null,
      startsAt: toInstant(event.start),
      endsAt: toInstant(event.end),
      allDay: Boolean(event.start?.date && !event.start?.dateTime),
      providerUpdatedAt: event.updated ?? null,
      raw: item,
    },
  };
}

/** Builds the events.list URL; the same parameters on every request, as the sync guide asks. */
export function googleListUrl(
  baseUrl: string,
  calendarId: string,
  position: GooglePosition,
  pageSize: number,
): string {
  const url = new URL(
    `${baseUrl.replace(/\/$/, "")}/calendars/${encodeURIComponent(calendarId)}/events`,
  );
  url.searchParams.set("maxResults", String(pageSize));
  if (position.syncToken) url.searchParams.set("syncToken", position.syncToken);
  if (position.pageToken) url.searchParams.set("pageToken", position.pageToken);
  return url.toString();
}

/** Creates the Google Calendar adapter. */
export function createGoogleAdapter(options: GoogleAdapterOptions): ProviderAdapter {
  const pageSize = options.pageSize ?? 2500;
  return {
    kind: "google",
    async fetchPage(input: FetchPageInput): Promise<ChangePage> {
      const position: GooglePosition = input.position === null
        ? {}
        : Position.parse(input.position);
      const json = await fetchProviderJson(
        googleListUrl(options.baseUrl, input.externalCalendarId, position, pageSize),
        {
          headers: { authorization: `Bearer ${input.accessToken}`, accept: "application/json" },
        },
        {
          provider: "google",
          timeoutMs: options.timeoutMs,
          signal: input.signal,
          fetch: options.fetch,
        },
      );
      const page = EventsPage.safeParse(json);
      if (!page.success) {
        throw new SyncFailure({
          kind: "malformed_response",
          status: 200,
          message: `Google returned an events page that fails validation: ${
            page.error.issues[0]?.path.join(".")
          } ${page.error.issues[0]?.message}`,
        });
      }
      const { items, nextPageToken, nextSyncToken } = page.data;
      if (Boolean(nextPageToken) === Boolean(nextSyncToken)) {
        throw new SyncFailure({
          kind: "malformed_response",
          status: 200,
          message: "Google returned an events page with neither or both of nextPageToken and " +
            "nextSyncToken",
        });
      }
      const changes = items.map(googleEventChange);
      if (nextSyncToken) return { changes, position: { syncToken: nextSyncToken }, done: true };
      // Paging an incremental sync repeats the same syncToken with the page token.
      return {
        changes,
        position: { syncToken: position.syncToken, pageToken: nextPageToken },
        done: false,
      };
    },
  };
}
