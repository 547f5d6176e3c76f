/** @module Microsoft Graph adapter: calendarView delta over a window, paged by opaque links. */
import { z } from "zod";
import { SyncFailure } from "../failures/failure.ts";
import type { ChangePage, EventChange, FetchPageInput, ProviderAdapter } from "./adapter.ts";
import { type FetchFn, fetchProviderJson } from "./provider_fetch.ts";

const GraphDateTime = z.object({ dateTime: z.string(), timeZone: z.string().optional() }).loose();

const GraphEvent = z.object({
  id: z.string().min(1),
  "@removed": z.object({ reason: z.string().optional() }).loose().optional(),
  "@odata.etag": z.string().optional(),
  subject: z.string().nullable().optional(),
  isAllDay: z.boolean().optional(),
  isCancelled: z.boolean().optional(),
  lastModifiedDateTime: z.string().optional(),
  start: GraphDateTime.optional(),
  end: GraphDateTime.optional(),
}).loose();

const DeltaPage = z.object({
  value: z.array(z.unknown()),
  "@odata.nextLink": z.string().optional(),
  "@odata.deltaLink": z.string().optional(),
}).loose();

const Position = z.object({ link: z.string() });

/** Options for the Graph adapter. */
export type MicrosoftAdapterOptions = {
  baseUrl: string;
  timeoutMs: number;
  windowPastDays: number;
  windowFutureDays: number;
  pageSize?: number;
  fetch?: FetchFn;
  now?: () => number;
};

/** Graph gives `2024-01-02T09:00:00.0000000` plus a zone; we ask for UTC and mark it as such. */
function toInstant(value: z.infer<typeof GraphDateTime> | undefined): string | null {
  if (!value) return null;
  const zone = value.timeZone ?? "UTC";
  if (/[zZ]|[+-]\d\d:?\d\d$/.test(value.dateTime)) return value.dateTime;
  return zone.toUpperCase() === "UTC" ? `${value.dateTime}Z` : value.dateTime;
}

/** Maps one delta item to a change; `@removed` items delete. */
export function graphEventChange(item: unknown): EventChange {
  const parsed = GraphEvent.safeParse(item);
  if (!parsed.success) {
    throw new SyncFailure({
      kind: "malformed_response",
      status: 200,
      message: `Microsoft Graph returned an event that fails validation: ${
        parsed.error.issues[0]?.path.join(".")
      } ${parsed.error.issues[0]?.message}`,
    });
  }
  const event = parsed.data;
  if (event["@removed"]) return { op: "delete", externalEventId: event.id };
  return {
    op: "upsert",
    event: {
      externalEventId: event.id,
      etag: event["@odata.etag"] ?? null,
      status: event.isCancelled ? "cancelled" : "confirmed",
      title: event.subject ?? null,
      startsAt: toInstant(event.start),
      endsAt: toInstant(event.end),
      allDay: event.isAllDay ?? false,
      providerUpdatedAt: event.lastModifiedDateTime ?? null,
      raw: item,
    },
  };
}

/** Builds the first delta request of a full sync over the configured window. */
export function graphInitialDeltaUrl(
  baseUrl: string,
  calendarId: string,
  window: { start: Date; end: Date },
): string {
  const base = baseUrl.replace(/\/$/, "");
  const path = calendarId === "primary"
    ? "/me/calendarView/delta"
    : `/me/calendars/${encodeURIComponent(calendarId)}/calendarView/delta`;
  const url = new URL(base + path);
  url.searchParams.set("startDateTime", window.start.toISOString());
  url.searchParams.set("endDateTime", window.end.toISOString());
  return url.toString();
}

/** Creates the Microsoft Graph adapter. */
export function createMicrosoftAdapter(options: MicrosoftAdapterOptions): ProviderAdapter {
  const pageSize = options.pageSize ?? 1000;
  const origin = new URL(options.baseUrl).origin;
  return {
    kind: "microsoft",
    async fetchPage(input: FetchPageInput): Promise<ChangePage> {
      let url: string;
      if (input.position === null) {
        const now = options.now?.() ?? Date.now();
        url = graphInitialDeltaUrl(options.baseUrl, input.externalCalendarId, {
          start: new Date(now - options.windowPastDays * 86_400_000),
          end: new Date(now + options.windowFutureDays * 86_400_000),
        });
      } else {
        url = Position.parse(input.position).link;
      }
      const json = await fetchProviderJson(url, {
        headers: {
          authorization: `Bearer ${input.accessToken}`,
          accept: "application/json",
          prefer: `odata.maxpagesize=${pageSize}, outlook.timezone="UTC"`,
        },
      }, {
        provider: "microsoft",
        timeoutMs: options.timeoutMs,
        signal: input.signal,
        fetch: options.fetch,
      });
      const page = DeltaPage.safeParse(json);
      if (!page.success) {
        throw new SyncFailure({
          kind: "malformed_response",
          status: 200,
          message: `Microsoft Graph returned a delta page that fails validation: ${
            page.error.issues[0]?.path.join(".")
          } ${page.error.issues[0]?.message}`,
        });
      }
      const next = page.data["@odata.nextLink"];
      const delta = page.data["@odata.deltaLink"];
      if (Boolean(next) === Boolean(delta)) {
        throw new SyncFailure({
          kind: "malformed_response",
          status: 200,
          message: "Microsoft Graph returned a delta page with neither or both of nextLink and " +
            "deltaLink",
        });
      }
      const link = (next ?? delta) as string;
      // The links are opaque, but we send our bearer token to them: never to another origin.
      if (!URL.canParse(link) || new URL(link).origin !== origin) {
        throw new SyncFailure({
          kind: "malformed_response",
          status: 200,
          message: `Microsoft Graph returned a paging link outside ${origin}`,
        });
      }
      const changes = page.data.value.map(graphEventChange);
      return { changes, position: { link }, done: Boolean(delta) };
    },
  };
}
