/**
 * @module Google Calendar v3 adapter: events.list with `singleEvents=true` (every occurrence is
 * its own item), full and incremental sync with paging, series masters fetched once per run.
 */
import { z } from "zod";
import type { SyncWindow } from "../core/sync_window.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { ChangePage, FetchPageInput, ProviderAdapter } from "./adapter.ts";
import { googleEventChange } from "./google_event.ts";
import { type FetchFn, fetchProviderJson } from "./provider_fetch.ts";
import { fetchSeriesOnce } from "./series_masters.ts";

export { googleEventChange } from "./google_event.ts";

const EventsPage = z.object({
  items: z.array(z.unknown()).default([]),
  timeZone: z.string().optional(),
  nextPageToken: z.string().min(1).optional(),
  nextSyncToken: z.string().min(1).optional(),
}).loose();

const Master = z.object({ id: z.string(), etag: z.string().optional() }).loose();

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

function calendarUrl(baseUrl: string, calendarId: string): string {
  return `${baseUrl.replace(/\/$/, "")}/calendars/${encodeURIComponent(calendarId)}/events`;
}

/**
 * Builds the events.list URL. `singleEvents=true` expands series into their instances (the
 * sync guide's own incremental example uses it with syncToken). A full sync bounds the
 * expansion to the window with timeMin/timeMax; an incremental one may not send them (400),
 * so its items are filtered against the window instead. Every page repeats the same query.
 */
export function googleListUrl(
  baseUrl: string,
  calendarId: string,
  position: GooglePosition,
  options: { pageSize: number; window: SyncWindow },
): string {
  const url = new URL(calendarUrl(baseUrl, calendarId));
  url.searchParams.set("maxResults", String(options.pageSize));
  url.searchParams.set("singleEvents", "true");
  if (position.syncToken) {
    url.searchParams.set("syncToken", position.syncToken);
  } else {
    url.searchParams.set("timeMin", options.window.start);
    url.searchParams.set("timeMax", options.window.end);
  }
  if (position.pageToken) url.searchParams.set("pageToken", position.pageToken);
  return url.toString();
}

function malformed(message: string): SyncFailure {
  return new SyncFailure({ kind: "malformed_response", status: 200, message });
}

/** Creates the Google Calendar adapter. */
export function createGoogleAdapter(options: GoogleAdapterOptions): ProviderAdapter {
  const pageSize = options.pageSize ?? 2500;

  function get(url: string, input: FetchPageInput): Promise<unknown> {
    return fetchProviderJson(
      url,
      { headers: { authorization: `Bearer ${input.accessToken}`, accept: "application/json" } },
      {
        provider: "google",
        timeoutMs: options.timeoutMs,
        signal: input.signal,
        fetch: options.fetch,
      },
    );
  }

  return {
    kind: "google",
    async fetchPage(input: FetchPageInput): Promise<ChangePage> {
      const position: GooglePosition = input.position === null
        ? {}
        : Position.parse(input.position);
      const json = await get(
        googleListUrl(options.baseUrl, input.externalCalendarId, position, {
          pageSize,
          window: input.window,
        }),
        input,
      );
      const page = EventsPage.safeParse(json);
      if (!page.success) {
        throw malformed(
          `Google returned an events page that fails validation: ${
            page.error.issues[0]?.path.join(".")
          } ${page.error.issues[0]?.message}`,
        );
      }
      const { items, nextPageToken, nextSyncToken } = page.data;
      if (Boolean(nextPageToken) === Boolean(nextSyncToken)) {
        throw malformed(
          "Google returned an events page with neither or both of nextPageToken and nextSyncToken",
        );
      }
      const context = { window: input.window, calendarZone: page.data.timeZone ?? null };
      const changes = items.map((item) => googleEventChange(item, context));
      const masters = new Set<string>();
      for (const change of changes) {
        if (change.op === "upsert" && change.event.seriesId) masters.add(change.event.seriesId);
      }
      const base = calendarUrl(options.baseUrl, input.externalCalendarId);
      const series = await fetchSeriesOnce(
        masters,
        input.seriesSeen,
        (id) => get(`${base}/${encodeURIComponent(id)}`, input),
        (raw) => Master.safeParse(raw).data?.etag ?? null,
      );
      if (nextSyncToken) {
        return { changes, series, position: { syncToken: nextSyncToken }, done: true };
      }
      // Paging an incremental sync repeats the same syncToken with the page token.
      return {
        changes,
        series,
        position: { syncToken: position.syncToken, pageToken: nextPageToken },
        done: false,
      };
    },
  };
}
