/**
 * @module Microsoft Graph adapter: calendarView delta over the round's window (occurrences and
 * exceptions, not masters), paged by opaque links; series masters fetched once per run.
 */
import { z } from "zod";
import type { SyncWindow } from "../core/sync_window.ts";
import { SyncFailure } from "../failures/failure.ts";
import type { ChangePage, FetchPageInput, ProviderAdapter } from "./adapter.ts";
import { graphEventChange, parseGraphEvent } from "./graph_event.ts";
import { type FetchFn, fetchProviderJson } from "./provider_fetch.ts";
import { fetchSeriesOnce } from "./series_masters.ts";

export { graphEventChange } from "./graph_event.ts";

// Every answer in UTC; all-day events ignore it and are read as dates.
const PREFER_UTC = 'outlook.timezone="UTC"';

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
  pageSize?: number;
  fetch?: FetchFn;
};

/** Builds the first delta request of a full sync over the configured window. */
export function graphInitialDeltaUrl(
  baseUrl: string,
  calendarId: string,
  window: SyncWindow,
): string {
  const base = baseUrl.replace(/\/$/, "");
  const path = calendarId === "primary"
    ? "/me/calendarView/delta"
    : `/me/calendars/${encodeURIComponent(calendarId)}/calendarView/delta`;
  const url = new URL(base + path);
  url.searchParams.set("startDateTime", window.start);
  url.searchParams.set("endDateTime", window.end);
  return url.toString();
}

/** Creates the Microsoft Graph adapter. */
export function createMicrosoftAdapter(options: MicrosoftAdapterOptions): ProviderAdapter {
  const pageSize = options.pageSize ?? 1000;
  const origin = new URL(options.baseUrl).origin;

  function get(url: string, input: FetchPageInput, prefer: string): Promise<unknown> {
    const headers = {
      authorization: `Bearer ${input.accessToken}`,
      accept: "application/json",
      prefer,
    };
    return fetchProviderJson(url, { headers }, {
      provider: "microsoft",
      timeoutMs: options.timeoutMs,
      signal: input.signal,
      fetch: options.fetch,
    });
  }

  return {
    kind: "microsoft",
    async fetchPage(input: FetchPageInput): Promise<ChangePage> {
      const url = input.position === null
        ? graphInitialDeltaUrl(options.baseUrl, input.externalCalendarId, input.window)
        : Position.parse(input.position).link;
      const json = await get(url, input, `odata.maxpagesize=${pageSize}, ${PREFER_UTC}`);
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
      const items = page.data.value.map(parseGraphEvent);
      const masterIds = items.flatMap((item) =>
        !item["@removed"] && item.seriesMasterId ? [item.seriesMasterId] : []
      );
      const base = options.baseUrl.replace(/\/$/, "");
      const series = await fetchSeriesOnce(
        masterIds,
        input.seriesSeen,
        (id) => get(`${base}/me/events/${encodeURIComponent(id)}`, input, PREFER_UTC),
        (raw) => parseGraphEvent(raw)["@odata.etag"] ?? null,
      );
      const changes = page.data.value.map((item, index) => {
        const masterId = items[index].seriesMasterId;
        const master = masterId ? input.seriesSeen.get(masterId) : undefined;
        return graphEventChange(item, {
          window: input.window,
          master: master ? parseGraphEvent(master) : null,
        });
      });
      return { changes, series, position: { link }, done: Boolean(delta) };
    },
  };
}
