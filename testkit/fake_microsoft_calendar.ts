/**
 * @module Calendar state of the fake Microsoft Graph provider and `calendarView/delta` with
 * nextLink/deltaLink rounds, `@removed` tombstones and the documented quirks (wire formats §3.1-3.3).
 */
import { z } from "zod";
import { decodeOpaque, encodeOpaque, randomToken } from "./fake_tokens.ts";
import { resolveZone } from "../src/core/event_time.ts";
import { expandRecurrence, instanceSuffix, zonedDateTime } from "./fake_recurrence.ts";

/** Graph `dateTimeTimeZone`; the fake always answers in UTC. */
export type GraphDateTimeTimeZone = { dateTime: string; timeZone: string };

/** A Graph event resource as calendarView delta returns it. */
export type GraphEvent = {
  "@odata.etag": string;
  id: string;
  subject?: string;
  start: GraphDateTimeTimeZone;
  end: GraphDateTimeTimeZone;
  isAllDay: boolean;
  isCancelled: boolean;
  lastModifiedDateTime: string;
  changeKey: string;
  type: string;
  bodyPreview: string;
  [field: string]: unknown;
};

/** Fields a test may set with `putEvent`; times are ISO strings (UTC if no offset) or Graph pairs. */
export type GraphEventInput = {
  id?: string;
  subject?: string;
  start?: string | GraphDateTimeTimeZone;
  end?: string | GraphDateTimeTimeZone;
  isAllDay?: boolean;
  isCancelled?: boolean;
  body?: string;
  [field: string]: unknown;
};

/** A calendarView window in epoch milliseconds. */
export type GraphWindow = { start: number; end: number };

type StoredEvent = {
  event: GraphEvent;
  ord: number;
  changeSeq: number;
  deleted: boolean;
  startMs: number;
  endMs: number;
};

/** One calendar of the fake: events plus the change clock and delta token epoch. */
export type GraphCalendar = {
  id: string;
  clock: number;
  epoch: number;
  goneCode: "syncStateNotFound" | "resyncRequired";
  nextOrd: number;
  events: Map<string, StoredEvent>;
};

/** Quirks Graph documents for event delta, off unless a test asks (§3.2, §5 #14). */
export type GraphDeltaQuirks = { duplicateAcrossPages?: boolean; emptyFirstPage?: boolean };

/** A refused delta request: status, Graph error code and, for 410, the Location to restart from. */
export type GraphDeltaError = { status: number; code: string; message: string; location?: string };

const DAY = 86_400_000;
const deltaCursor = z.object({
  k: z.literal("d"),
  c: z.string(),
  e: z.number(),
  w: z.tuple([z.number(), z.number()]),
  n: z.number(),
});
const skipCursor = z.object({
  k: z.literal("k"),
  c: z.string(),
  e: z.number(),
  w: z.tuple([z.number(), z.number()]),
  m: z.enum(["init", "inc"]),
  n: z.number(),
  s: z.number(),
  a: z.number(),
  i: z.number().optional(),
  r: z.string().optional(),
});

/** Graph's `patternedRecurrence`, the parts the fake expands. */
export type GraphRecurrence = {
  pattern: { type: "daily" | "weekly"; interval?: number; daysOfWeek?: string[] };
  range: {
    type: "noEnd" | "endDate" | "numbered";
    startDate?: string;
    endDate?: string;
    numberOfOccurrences?: number;
    recurrenceTimeZone?: string;
  };
};

/** How a delta answer writes times: UTC when asked (`Prefer: outlook.timezone`), else a zone. */
export type GraphRender = { zone: string };

/** Formats epoch ms the way Graph does: seven fractional digits, no zone suffix. */
export function graphDateTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$10000");
}

/** Parses a Graph/ISO date-time; no offset means UTC. */
export function parseGraphTime(value: string): number {
  const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(value);
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  return Date.parse(dateOnly ? `${value}T00:00:00Z` : hasZone ? value : `${value}Z`);
}

/** Creates an empty calendar. */
export function createGraphCalendar(id: string): GraphCalendar {
  return { id, clock: 0, epoch: 0, goneCode: "syncStateNotFound", nextOrd: 1, events: new Map() };
}

function inputTime(
  value: string | GraphDateTimeTimeZone | undefined,
  field: string,
): number | null {
  if (value === undefined) return null;
  const ms = parseGraphTime(typeof value === "string" ? value : value.dateTime);
  if (Number.isNaN(ms)) {
    throw new TypeError(`Cannot put event: '${field}' is not a valid date-time`);
  }
  return ms;
}

function newChangeKey(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(22))));
}

/** Creates or updates an event, bumping changeKey/etag and lastModifiedDateTime; returns a copy. */
export function putGraphEvent(calendar: GraphCalendar, input: GraphEventInput): GraphEvent {
  const id = input.id ?? `AAMkAD${randomToken(48)}AAA=`;
  const existing = calendar.events.get(id);
  const previous = existing && !existing.deleted ? existing : undefined;
  const isAllDay = input.isAllDay ?? previous?.event.isAllDay ?? false;
  const tomorrow9 = Math.floor(Date.now() / DAY) * DAY + DAY + (isAllDay ? 0 : 9 * 3_600_000);
  const startMs = inputTime(input.start, "start") ?? previous?.startMs ?? tomorrow9;
  const endMs = inputTime(input.end, "end") ??
    (input.start === undefined ? previous?.endMs : undefined) ??
    startMs + (isAllDay ? DAY : 3_600_000);
  const now = Date.now();
  const changeKey = newChangeKey();
  const { body, start: _s, end: _e, ...fields } = input;
  const content = typeof body === "string" ? body : undefined;
  const event: GraphEvent = {
    "@odata.type": "#microsoft.graph.event",
    "@odata.etag": "",
    id,
    createdDateTime: previous?.event.createdDateTime ?? `${graphDateTime(now)}Z`,
    lastModifiedDateTime: "",
    changeKey: "",
    categories: [],
    originalStartTimeZone: "UTC",
    originalEndTimeZone: "UTC",
    iCalUId: previous?.event.iCalUId ?? `040000008200E00074C5B7101A82E008${randomToken(24)}`,
    reminderMinutesBeforeStart: 15,
    isReminderOn: true,
    hasAttachments: false,
    subject: "",
    bodyPreview: "",
    importance: "normal",
    sensitivity: "normal",
    isAllDay,
    isCancelled: false,
    isOrganizer: true,
    responseRequested: true,
    seriesMasterId: null,
    showAs: "busy",
    type: "singleInstance",
    webLink: `https://outlook.office365.com/owa/?itemid=${encodeURIComponent(id)}&exvsurl=1`,
    isOnlineMeeting: false,
    responseStatus: { response: "organizer", time: "0001-01-01T00:00:00Z" },
    body: { contentType: "html", content: "" },
    location: { displayName: "", locationType: "default", uniqueIdType: "unknown" },
    locations: [],
    recurrence: null,
    attendees: [],
    organizer: { emailAddress: { name: "Fake User", address: "fake.user@example.com" } },
    ...previous?.event,
    ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
    start: { dateTime: graphDateTime(startMs), timeZone: "UTC" },
    end: { dateTime: graphDateTime(endMs), timeZone: "UTC" },
  };
  if (event.recurrence && typeof event.recurrence === "object") event.type = "seriesMaster";
  if (content !== undefined) {
    event.body = { contentType: "text", content };
    event.bodyPreview = content.slice(0, 255);
  } else if (body !== undefined) {
    event.body = body;
  }
  Object.assign(event, {
    "@odata.etag": `W/"${changeKey}"`,
    changeKey,
    lastModifiedDateTime: `${graphDateTime(now)}Z`,
  });
  const ord = existing?.ord ?? calendar.nextOrd++;
  const changeSeq = ++calendar.clock;
  calendar.events.set(id, { event, ord, changeSeq, deleted: false, startMs, endMs });
  return structuredClone(event);
}

/** Deletes an event so the next delta round reports it under `@removed`; false if not live. */
export function deleteGraphEvent(calendar: GraphCalendar, id: string): boolean {
  const stored = calendar.events.get(id);
  if (!stored || stored.deleted) return false;
  calendar.events.set(id, { ...stored, deleted: true, changeSeq: ++calendar.clock });
  return true;
}

function overlaps(stored: StoredEvent, window: GraphWindow): boolean {
  return stored.startMs < window.end && stored.endMs > window.start;
}

/** What a correct mirror of the window holds: every live (not deleted) overlapping event. */
export function liveGraphEvents(calendar: GraphCalendar, window?: GraphWindow): GraphEvent[] {
  return [...calendar.events.values()]
    .filter((stored) => !stored.deleted && (!window || overlaps(stored, window)))
    .map((stored) => structuredClone(stored.event));
}

/** Bulk-creates `count` events of about `bytesEach` JSON bytes, spread over a year of half hours. */
export function seedGraphEvents(calendar: GraphCalendar, count: number, bytesEach = 1024): void {
  // From 29 days back: inside the default window (30 days back, 365 ahead) at any hour.
  const base = Math.floor(Date.now() / DAY) * DAY - 29 * DAY;
  let template: GraphEvent | undefined;
  for (let i = 0; i < count; i++) {
    const startMs = base + (i % (365 * 48)) * 1_800_000;
    const id = `AAMkADseed${calendar.nextOrd.toString(36).padStart(12, "0")}AAA=`;
    if (!template) {
      // One full event sets the shape and size; the rest are cheap copies of it.
      template = putGraphEvent(calendar, { id, subject: "Seeded event 0" });
      const padding = "x".repeat(Math.max(0, bytesEach - JSON.stringify(template).length));
      template.body = { contentType: "text", content: padding };
      template.bodyPreview = padding.slice(0, 255);
    }
    const changeKey = `seed${calendar.clock + 1}`;
    const event: GraphEvent = {
      ...template,
      "@odata.etag": `W/"${changeKey}"`,
      id,
      changeKey,
      subject: `Seeded event ${i}`,
      start: { dateTime: graphDateTime(startMs), timeZone: "UTC" },
      end: { dateTime: graphDateTime(startMs + 1_800_000), timeZone: "UTC" },
    };
    const ord = calendar.events.get(id)?.ord ?? calendar.nextOrd++;
    const stored = { event, ord, deleted: false, startMs, endMs: startMs + 1_800_000 };
    calendar.events.set(id, { ...stored, changeSeq: ++calendar.clock });
  }
}

const DAY_NAMES: Record<string, string> = {
  sunday: "SU",
  monday: "MO",
  tuesday: "TU",
  wednesday: "WE",
  thursday: "TH",
  friday: "FR",
  saturday: "SA",
};

function ruleLines(recurrence: GraphRecurrence): string[] {
  const parts = [`FREQ=${recurrence.pattern.type === "weekly" ? "WEEKLY" : "DAILY"}`];
  if (recurrence.pattern.interval) parts.push(`INTERVAL=${recurrence.pattern.interval}`);
  if (recurrence.pattern.daysOfWeek?.length) {
    parts.push(`BYDAY=${recurrence.pattern.daysOfWeek.map((d) => DAY_NAMES[d]).join(",")}`);
  }
  if (recurrence.range.type === "numbered") {
    parts.push(`COUNT=${recurrence.range.numberOfOccurrences}`);
  }
  if (recurrence.range.type === "endDate" && recurrence.range.endDate) {
    parts.push(`UNTIL=${recurrence.range.endDate.replaceAll("-", "")}T235959Z`);
  }
  return [`RRULE:${parts.join(";")}`];
}

/**
 * The occurrences of a series master in the window, as calendarView delta lists them: only id,
 * type, seriesMasterId, start and end (microsoft-graph-docs#7632). Occurrences with their own
 * stored copy (exceptions, cancellations) are left to it.
 */
export function expandGraphSeries(
  calendar: GraphCalendar,
  stored: StoredEvent,
  window: GraphWindow,
): { item: Record<string, unknown>; startMs: number; endMs: number }[] {
  const master = stored.event;
  const recurrence = master.recurrence as GraphRecurrence;
  const zone = resolveZone(recurrence.range.recurrenceTimeZone ?? "UTC") ?? "UTC";
  const duration = stored.endMs - stored.startMs;
  const local = zonedDateTime(stored.startMs, zone).slice(0, 19);
  const occurrences = expandRecurrence(
    ruleLines(recurrence),
    master.isAllDay ? { date: local.slice(0, 10) } : { local, zone },
    window.end,
    { fromMs: window.start - duration },
  );
  const out = [];
  for (const occurrence of occurrences) {
    const id = `${master.id.replace(/=+$/, "")}_${instanceSuffix(occurrence)}=`;
    if (calendar.events.has(id)) continue;
    const startMs = occurrence.instantMs ?? Date.parse(`${occurrence.date}T00:00:00Z`);
    out.push({
      item: {
        "@odata.type": "#microsoft.graph.event",
        "@odata.etag": master["@odata.etag"],
        id,
        type: "occurrence",
        seriesMasterId: master.id,
        start: { dateTime: graphDateTime(startMs), timeZone: "UTC" },
        end: { dateTime: graphDateTime(startMs + duration), timeZone: "UTC" },
      },
      startMs,
      endMs: startMs + duration,
    });
  }
  return out;
}

/** What Outlook shows in the window: singles, occurrences, exceptions; no cancelled ones. */
export function graphCalendarView(calendar: GraphCalendar, window: GraphWindow): GraphEvent[] {
  const out: GraphEvent[] = [];
  for (const stored of calendar.events.values()) {
    if (stored.deleted || stored.event.isCancelled) continue;
    if (stored.event.type === "seriesMaster") {
      for (const { item } of expandGraphSeries(calendar, stored, window)) {
        out.push({ ...stored.event, ...item } as GraphEvent);
      }
      continue;
    }
    const master = stored.event.seriesMasterId
      ? calendar.events.get(stored.event.seriesMasterId as string)
      : undefined;
    if (master?.deleted) continue;
    if (overlaps(stored, window)) out.push(structuredClone(stored.event));
  }
  return out;
}

/** Rewrites an item's timed start/end into `render.zone` (all-day events keep their dates). */
function inZone(item: Record<string, unknown>, render: GraphRender): Record<string, unknown> {
  if (render.zone === "UTC" || item.isAllDay === true || !item.start) return item;
  const iana = resolveZone(render.zone) ?? "UTC";
  const convert = (value: unknown) => {
    const { dateTime } = value as GraphDateTimeTimeZone;
    const ms = parseGraphTime(dateTime);
    return { dateTime: `${zonedDateTime(ms, iana).slice(0, 19)}.0000000`, timeZone: render.zone };
  };
  return { ...item, start: convert(item.start), end: convert(item.end) };
}

/** The URL that restarts a round, as Graph sends in the 410 `Location` header. */
function restartUrl(linkBase: string, window: [number, number]): string {
  const start = new Date(window[0]).toISOString();
  const end = new Date(window[1]).toISOString();
  return `${linkBase}?startDateTime=${start}&endDateTime=${end}&$deltatoken=`;
}

/** A 410 asking for a full resync, with the restart Location when the window is known. */
export function graphGone(
  code: "syncStateNotFound" | "resyncRequired",
  linkBase: string,
  window?: [number, number],
): GraphDeltaError {
  const message = code === "syncStateNotFound"
    ? "The sync state generation is not found. The delta token is expired and data must be synchronized again."
    : "The delta token is no longer valid, and the app must reset the sync state.";
  return { status: 410, code, message, location: window && restartUrl(linkBase, window) };
}

/** Runs one calendarView delta page; `linkBase` is the absolute path links and Location use. */
export function graphDelta(
  calendar: GraphCalendar,
  request: {
    query: URLSearchParams;
    pageSize: number;
    linkBase: string;
    quirks: GraphDeltaQuirks;
    render?: GraphRender;
  },
): { body: Record<string, unknown> } | { error: GraphDeltaError } {
  const { query, pageSize, linkBase, quirks } = request;
  const zoneRender = request.render ?? { zone: "UTC" };
  const skipToken = query.get("$skiptoken");
  const deltaToken = query.get("$deltatoken");
  let cursor: z.infer<typeof skipCursor>;
  let firstPage = false;
  if (skipToken !== null) {
    const parsed = skipCursor.safeParse(decodeOpaque("R0", skipToken));
    if (!parsed.success || parsed.data.c !== calendar.id) {
      return { error: { status: 400, code: "BadRequest", message: "Invalid $skiptoken." } };
    }
    if (parsed.data.e !== calendar.epoch) {
      return { error: graphGone(calendar.goneCode, linkBase, parsed.data.w) };
    }
    cursor = parsed.data;
  } else if (deltaToken) {
    const parsed = deltaCursor.safeParse(decodeOpaque("R0", deltaToken));
    // An unreadable delta token can only be answered with "start over".
    if (!parsed.success || parsed.data.c !== calendar.id) {
      return { error: graphGone("syncStateNotFound", linkBase) };
    }
    const { e, w, n } = parsed.data;
    if (e !== calendar.epoch) return { error: graphGone(calendar.goneCode, linkBase, w) };
    cursor = { k: "k", c: calendar.id, e, w, m: "inc", n, s: calendar.clock, a: 0 };
    firstPage = true;
  } else {
    const rawStart = query.get("startDateTime");
    const rawEnd = query.get("endDateTime");
    const start = rawStart === null ? NaN : parseGraphTime(rawStart);
    const end = rawEnd === null ? NaN : parseGraphTime(rawEnd);
    if (Number.isNaN(start) || Number.isNaN(end) || start >= end) {
      const message =
        "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.";
      return { error: { status: 400, code: "ErrorInvalidParameter", message } };
    }
    cursor = {
      k: "k",
      c: calendar.id,
      e: calendar.epoch,
      w: [start, end],
      m: "init",
      n: 0,
      s: calendar.clock,
      a: 0,
    };
    firstPage = true;
  }

  const window = { start: cursor.w[0], end: cursor.w[1] };
  const body: Record<string, unknown> = {
    "@odata.context": `${new URL(linkBase).origin}/v1.0/$metadata#Collection(event)`,
  };
  const skipLink = (next: typeof cursor) => `${linkBase}?$skiptoken=${encodeOpaque("R0", next)}`;
  if (firstPage && quirks.emptyFirstPage) {
    // "nextLink ... true even if the current response may contain an empty result" (§3.2).
    body["@odata.nextLink"] = skipLink(cursor);
    body.value = [];
    return { body };
  }
  function render(stored: StoredEvent): Record<string, unknown> | null {
    if (cursor.m === "init") {
      return !stored.deleted && overlaps(stored, window) ? structuredClone(stored.event) : null;
    }
    if (stored.changeSeq <= cursor.n) return null;
    if (!stored.deleted && overlaps(stored, window)) return structuredClone(stored.event);
    // Deleted, moved out of the window, or changed outside it: all arrive as removals (§3.2).
    return {
      "@odata.type": "#microsoft.graph.event",
      id: stored.event.id,
      "@removed": { reason: "deleted" },
    };
  }

  const removed = (id: string) => ({
    "@odata.type": "#microsoft.graph.event",
    id,
    "@removed": { reason: "deleted" },
  });
  /** Every item one stored event contributes: a series master gives its occurrences. */
  function renderAll(stored: StoredEvent): Record<string, unknown>[] {
    if (stored.event.type !== "seriesMaster") {
      const item = render(stored);
      return item ? [item] : [];
    }
    const occurrences = expandGraphSeries(calendar, stored, window).map((o) => o.item);
    if (cursor.m === "init") return stored.deleted ? [] : occurrences;
    if (stored.changeSeq <= cursor.n) return [];
    if (stored.deleted) {
      return [...occurrences.map((o) => removed(o.id as string)), removed(stored.event.id)];
    }
    return occurrences;
  }

  const value: Record<string, unknown>[] = [];
  const replay = cursor.r === undefined ? undefined : calendar.events.get(cursor.r);
  const replayed = replay && render(replay);
  if (replayed) value.push(inZone(replayed, zoneRender));
  let more = false;
  let after = cursor.a;
  let afterIndex = cursor.i ?? Infinity;
  let lastId: string | undefined;
  outer: for (const stored of calendar.events.values()) {
    if (stored.ord < cursor.a || (stored.ord === cursor.a && (cursor.i ?? Infinity) === Infinity)) {
      continue;
    }
    const rendered = renderAll(stored);
    for (let index = 0; index < rendered.length; index++) {
      if (stored.ord === cursor.a && index <= (cursor.i ?? Infinity)) continue;
      if (value.length >= pageSize) {
        more = true;
        break outer;
      }
      value.push(inZone(rendered[index], zoneRender));
      after = stored.ord;
      afterIndex = index === rendered.length - 1 ? Infinity : index;
      lastId = stored.event.type === "seriesMaster" ? undefined : stored.event.id;
    }
  }
  if (more) {
    const replayId = quirks.duplicateAcrossPages && pageSize > 1 ? lastId : undefined;
    const i = Number.isFinite(afterIndex) ? afterIndex : undefined;
    body["@odata.nextLink"] = skipLink({ ...cursor, a: after, i, r: replayId });
  } else {
    const next = { k: "d", c: calendar.id, e: calendar.epoch, w: cursor.w, n: cursor.s };
    body["@odata.deltaLink"] = `${linkBase}?$deltatoken=${encodeOpaque("R0", next)}`;
  }
  body.value = value;
  return { body };
}
