/** @module Calendar discovery: Google `calendarList.list`, Graph `/me/calendars`, every page. */
import { z } from "zod";
import type { ProviderKind } from "../core/provider_kind.ts";
import { SyncFailure } from "../failures/failure.ts";
import { type FetchFn, fetchProviderJson } from "../providers/provider_fetch.ts";

/** One calendar an account can see. */
export type DiscoveredCalendar = {
  id: string;
  name: string;
  primary: boolean;
  /** Google `accessRole`; Graph: owner, writer (canEdit) or reader. */
  accessRole: string;
};

/** Where the provider APIs are, and how to call them. */
export type DiscoveryOptions = {
  googleBaseUrl: string;
  graphBaseUrl: string;
  timeoutMs: number;
  signal: AbortSignal;
  fetch?: FetchFn;
};

const GooglePage = z.object({
  items: z.array(z.object({
    id: z.string().min(1),
    summary: z.string().optional(),
    summaryOverride: z.string().optional(),
    primary: z.boolean().optional(),
    accessRole: z.string().optional(),
  })).default([]),
  nextPageToken: z.string().optional(),
});

const GraphPage = z.object({
  value: z.array(z.object({
    id: z.string().min(1),
    name: z.string().optional(),
    isDefaultCalendar: z.boolean().optional(),
    canEdit: z.boolean().optional(),
    canShare: z.boolean().optional(),
  })),
  "@odata.nextLink": z.string().optional(),
});

// A user with more calendars than this is not a user; stop rather than loop on a broken cursor.
const MAX_PAGES = 50;

/** Lists every calendar of the account behind `accessToken`. */
export async function discoverCalendars(
  kind: ProviderKind,
  accessToken: string,
  options: DiscoveryOptions,
): Promise<DiscoveredCalendar[]> {
  const headers = { authorization: `Bearer ${accessToken}`, accept: "application/json" };
  const request = { provider: kind, ...options };
  const found: DiscoveredCalendar[] = [];
  let next: string | null = kind === "google"
    ? `${options.googleBaseUrl}/users/me/calendarList?maxResults=250`
    : `${options.graphBaseUrl}/me/calendars?$top=50`;
  for (let page = 0; next !== null; page++) {
    if (page === MAX_PAGES) {
      throw new SyncFailure({
        kind: "malformed_response",
        message: `${kind} listed more than ${MAX_PAGES} pages of calendars`,
      });
    }
    const json = await fetchProviderJson(next, { headers }, request);
    if (kind === "google") {
      const body = parse(GooglePage, json, kind);
      for (const item of body.items) {
        found.push({
          id: item.id,
          name: item.summaryOverride ?? item.summary ?? item.id,
          primary: item.primary === true,
          accessRole: item.accessRole ?? "reader",
        });
      }
      next = body.nextPageToken === undefined ? null : `${options.googleBaseUrl}/users/me/` +
        `calendarList?maxResults=250&pageToken=${encodeURIComponent(body.nextPageToken)}`;
    } else {
      const body = parse(GraphPage, json, kind);
      for (const item of body.value) {
        found.push({
          id: item.id,
          name: item.name ?? item.id,
          primary: item.isDefaultCalendar === true,
          accessRole: item.canShare ? "owner" : item.canEdit ? "writer" : "reader",
        });
      }
      next = body["@odata.nextLink"] ?? null;
      // The bearer token goes wherever the link points: only ever to Graph itself.
      if (next !== null && new URL(next).origin !== new URL(options.graphBaseUrl).origin) {
        throw new SyncFailure({
          kind: "malformed_response",
          message: "Graph's calendar list linked to another origin; not followed",
        });
      }
    }
  }
  return found;
}

function parse<T extends z.ZodType>(schema: T, json: unknown, kind: ProviderKind): z.infer<T> {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new SyncFailure({
      kind: "malformed_response",
      status: 200,
      message: `${kind} answered an unexpected calendar list: ${
        parsed.error.issues[0]?.message ?? "invalid"
      }`,
    });
  }
  return parsed.data;
}

/** The calendars a connect mode picks: all of them, the primary one, or none. */
export function pickCalendars(
  calendars: DiscoveredCalendar[],
  mode: "all" | "primary" | "none",
): DiscoveredCalendar[] {
  if (mode === "none") return [];
  if (mode === "all") return calendars;
  return calendars.filter((calendar) => calendar.primary).slice(0, 1);
}
