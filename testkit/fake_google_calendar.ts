/**
 * @module Calendar state of the fake Google provider and `events.list` with full and incremental
 * sync, snapshot-carrying page tokens and minimal tombstones (wire formats §1.1-1.2).
 */
import { z } from "zod";
import { decodeOpaque, encodeOpaque, randomChars } from "./fake_tokens.ts";
import {
  expandRecurrence,
  instanceSuffix,
  type Occurrence,
  type SeriesStart,
  zonedDateTime,
} from "./fake_recurrence.ts";

/** Google `EventDateTime`: `date` for all-day events, else `dateTime` with an offset. */
export type GoogleEventDateTime = { date?: string; dateTime?: string; timeZone?: string };

/** A Google Calendar event resource as `events.list` returns it. */
export type GoogleEvent = {
  kind: "calendar#event";
  etag: string;
  id: string;
  status: "confirmed" | "tentative" | "cancelled";
  updated?: string;
  summary?: string;
  description?: string;
  start?: GoogleEventDateTime;
  end?: GoogleEventDateTime;
  sequence?: number;
  [field: string]: unknown;
};

/** Fields a test may set with `putEvent`; any other field is copied onto the event as is. */
export type GoogleEventInput = {
  id?: string;
  summary?: string;
  description?: string;
  location?: string;
  status?: "confirmed" | "tentative" | "cancelled";
  start?: GoogleEventDateTime;
  end?: GoogleEventDateTime;
  [field: string]: unknown;
};

type StoredEvent = {
  event: GoogleEvent;
  ord: number;
  changeSeq: number;
  deleted: boolean;
  startMs: number;
  endMs: number;
  updatedMs: number;
};

/** One calendar of the fake: events plus the change clock and token epoch. */
export type GoogleCalendar = {
  id: string;
  summary: string;
  timeZone: string;
  pushSupported: boolean;
  clock: number;
  epoch: number;
  updated: string;
  nextOrd: number;
  events: Map<string, StoredEvent>;
};

/** Why `events.list` refused a request, as a Google error reason. */
export type GoogleListError = { status: number; reason: string; message?: string };

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Params the sync guide forbids next to syncToken (answered with 400).
const SYNC_FORBIDDEN = [
  "iCalUID",
  "orderBy",
  "privateExtendedProperty",
  "q",
  "sharedExtendedProperty",
  "timeMin",
  "timeMax",
  "updatedMin",
];
// Filters that are fine on a full sync but leave Google unable to hand out a sync token (§1.1).
const NO_SYNC_TOKEN = [
  "iCalUID",
  "orderBy",
  "privateExtendedProperty",
  "q",
  "sharedExtendedProperty",
];
const RFC3339_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const syncCursor = z.object({ k: z.literal("s"), c: z.string(), e: z.number(), n: z.number() });
const pageCursor = z.object({
  k: z.literal("p"),
  c: z.string(),
  e: z.number(),
  m: z.enum(["full", "inc"]),
  n: z.number(),
  s: z.number(),
  a: z.number(),
  i: z.number().optional(),
});

/** Creates an empty calendar. */
export function createGoogleCalendar(
  id: string,
  options: { summary?: string; timeZone?: string; pushSupported?: boolean } = {},
): GoogleCalendar {
  return {
    id,
    summary: options.summary ?? id,
    timeZone: options.timeZone ?? "UTC",
    pushSupported: options.pushSupported ?? true,
    clock: 0,
    epoch: 0,
    updated: new Date().toISOString(),
    nextOrd: 1,
    events: new Map(),
  };
}

function toMs(value: GoogleEventDateTime, field: string): number {
  const ms = value.date !== undefined
    ? Date.parse(`${value.date}T00:00:00Z`)
    : Date.parse(value.dateTime ?? "");
  if (Number.isNaN(ms)) {
    throw new TypeError(`Cannot put event: '${field}' needs a valid 'date' or 'dateTime'`);
  }
  return ms;
}

function defaultTimes(start?: GoogleEventDateTime): [GoogleEventDateTime, GoogleEventDateTime] {
  if (start?.date) {
    const next = new Date(toMs(start, "start") + DAY).toISOString().slice(0, 10);
    return [start, { date: next }];
  }
  const startMs = start
    ? toMs(start, "start")
    : Math.floor(Date.now() / DAY) * DAY + DAY + 9 * HOUR;
  const at = (ms: number) => ({ dateTime: new Date(ms).toISOString().replace(".000", "") });
  return [start ?? { ...at(startMs), timeZone: "UTC" }, { ...at(startMs + HOUR), timeZone: "UTC" }];
}

function touch(calendar: GoogleCalendar, stored: Omit<StoredEvent, "changeSeq">): StoredEvent {
  const changeSeq = ++calendar.clock;
  const now = Date.now();
  calendar.updated = new Date(now).toISOString();
  // Google etags are quoted microsecond-ish numbers; the clock keeps them unique within one ms.
  stored.event.etag = `"${now}${String(changeSeq % 1000).padStart(3, "0")}"`;
  stored.event.updated = calendar.updated;
  return { ...stored, changeSeq, updatedMs: now };
}

/** Creates or updates an event, bumping etag, updated and sequence; returns a copy. */
export function putGoogleEvent(calendar: GoogleCalendar, input: GoogleEventInput): GoogleEvent {
  const id = input.id ?? randomChars(26);
  const existing = calendar.events.get(id);
  const fields = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
  let event: GoogleEvent;
  if (existing) {
    const previous = existing.deleted ? { ...existing.event, status: "confirmed" } : existing.event;
    event = { ...previous, ...fields, id, kind: "calendar#event" } as GoogleEvent;
    event.sequence = (existing.event.sequence ?? 0) + 1;
    if (input.start && !input.end) event.end = defaultTimes(input.start)[1];
  } else {
    const [start, end] = input.end ? [input.start, input.end] : defaultTimes(input.start);
    const created = new Date().toISOString();
    event = {
      kind: "calendar#event",
      etag: "",
      id,
      status: "confirmed",
      htmlLink: `https://www.google.com/calendar/event?eid=${btoa(`${id} ${calendar.id}`)}`,
      created,
      updated: created,
      creator: { email: "fake.user@example.com", self: true },
      organizer: { email: calendar.id, self: true },
      iCalUID: `${id}@google.com`,
      sequence: 0,
      reminders: { useDefault: true },
      eventType: "default",
      ...fields,
      start: start ?? defaultTimes()[0],
      end: end ?? defaultTimes(start)[1],
    } as GoogleEvent;
  }
  const startMs = toMs(event.start ?? {}, "start");
  // A series reaches as far as its rule does; expansion decides which instances show.
  const endMs = Array.isArray(event.recurrence) ? Infinity : toMs(event.end ?? {}, "end");
  const ord = existing?.ord ?? calendar.nextOrd++;
  const before = existing && !existing.deleted && Array.isArray(existing.event.recurrence)
    ? expandGoogleSeries(calendar, existing.event, { fromMs: -Infinity, untilMs: Infinity })
    : [];
  calendar.events.set(
    id,
    touch(calendar, { event, ord, deleted: false, startMs, endMs, updatedMs: 0 }),
  );
  cancelDroppedInstances(calendar, before, event);
  return structuredClone(event);
}

/**
 * A changed rule (a series ended "this and following", an EXDATE) leaves the instances it no
 * longer makes behind as cancelled instances, which incremental syncs report.
 */
function cancelDroppedInstances(
  calendar: GoogleCalendar,
  before: { event: GoogleEvent; startMs: number; endMs: number }[],
  master: GoogleEvent,
): void {
  if (before.length === 0) return;
  const after = Array.isArray(master.recurrence)
    ? new Set(
      expandGoogleSeries(calendar, master, { fromMs: -Infinity, untilMs: Infinity }).map((i) =>
        i.event.id
      ),
    )
    : new Set<string>();
  for (const instance of before) {
    if (after.has(instance.event.id)) continue;
    const event = { ...instance.event, status: "cancelled" as const };
    const ord = calendar.nextOrd++;
    const stored = { event, ord, deleted: true, startMs: instance.startMs, endMs: instance.endMs };
    calendar.events.set(event.id, touch(calendar, { ...stored, updatedMs: 0 }));
  }
}

/** Deletes an event (it becomes a tombstone for incremental sync); false if it was not live. */
export function deleteGoogleEvent(calendar: GoogleCalendar, id: string): boolean {
  const stored = calendar.events.get(id);
  if (!stored || stored.deleted) return false;
  const event = { ...stored.event, status: "cancelled" as const };
  calendar.events.set(id, touch(calendar, { ...stored, event, deleted: true }));
  return true;
}

/** The events a correct mirror holds: everything not deleted or cancelled, oldest first. */
export function liveGoogleEvents(calendar: GoogleCalendar): GoogleEvent[] {
  return [...calendar.events.values()]
    .filter((stored) => !stored.deleted && stored.event.status !== "cancelled")
    .map((stored) => structuredClone(stored.event));
}

/** Bulk-creates `count` events of about `bytesEach` JSON bytes, spread over a year of half hours. */
export function seedGoogleEvents(calendar: GoogleCalendar, count: number, bytesEach = 1024): void {
  // From 29 days back: inside the default window (30 days back, 365 ahead) at any hour.
  const base = Math.floor(Date.now() / DAY) * DAY - 29 * DAY;
  const now = new Date().toISOString();
  let padding = "";
  for (let i = 0; i < count; i++) {
    const id = `seed${calendar.nextOrd.toString(32).padStart(10, "0")}`;
    const startMs = base + (i % (365 * 48)) * 30 * 60_000;
    const changeSeq = ++calendar.clock;
    const event: GoogleEvent = {
      kind: "calendar#event",
      etag: `"${Date.now()}${String(changeSeq % 1000).padStart(3, "0")}"`,
      id,
      status: "confirmed",
      created: now,
      updated: now,
      summary: `Seeded event ${i}`,
      description: padding,
      iCalUID: `${id}@google.com`,
      sequence: 0,
      start: { dateTime: new Date(startMs).toISOString().replace(".000", ""), timeZone: "UTC" },
      end: {
        dateTime: new Date(startMs + 30 * 60_000).toISOString().replace(".000", ""),
        timeZone: "UTC",
      },
    };
    if (i === 0) {
      padding = "x".repeat(Math.max(0, bytesEach - JSON.stringify(event).length));
      event.description = padding;
    }
    const ord = calendar.nextOrd++;
    const stored = { event, ord, changeSeq, deleted: false, startMs, endMs: startMs + 1_800_000 };
    calendar.events.set(id, { ...stored, updatedMs: Date.now() });
  }
  calendar.updated = now;
}

function tombstone(event: GoogleEvent): GoogleEvent {
  const minimal: GoogleEvent = {
    kind: "calendar#event",
    etag: event.etag,
    id: event.id,
    status: "cancelled",
  };
  // Cancelled instances keep what identifies them (§1.2).
  if (event.recurringEventId) {
    minimal.recurringEventId = event.recurringEventId;
    minimal.originalStartTime = event.originalStartTime;
  }
  return minimal;
}

// How far an endless series is expanded when the request sets no timeMax.
const EXPANSION_HORIZON_MS = 730 * DAY;

function seriesStart(event: GoogleEvent): SeriesStart {
  const start = event.start ?? {};
  if (start.date) return { date: start.date };
  const zone = start.timeZone ?? "UTC";
  const ms = Date.parse(start.dateTime ?? "");
  return { local: zonedDateTime(ms, zone).slice(0, 19), zone };
}

function instanceTimes(
  master: GoogleEvent,
  occurrence: Occurrence,
): { start: GoogleEventDateTime; end: GoogleEventDateTime; startMs: number; endMs: number } {
  const start = master.start ?? {};
  const end = master.end ?? {};
  if (occurrence.date !== undefined) {
    const days = Math.round((toMs(end, "end") - toMs(start, "start")) / DAY);
    const startMs = Date.parse(`${occurrence.date}T00:00:00Z`);
    const endDate = new Date(startMs + days * DAY).toISOString().slice(0, 10);
    return {
      start: { date: occurrence.date },
      end: { date: endDate },
      startMs,
      endMs: startMs + days * DAY,
    };
  }
  const zone = start.timeZone ?? "UTC";
  const duration = toMs(end, "end") - toMs(start, "start");
  const startMs = occurrence.instantMs ?? 0;
  return {
    start: { dateTime: zonedDateTime(startMs, zone), timeZone: zone },
    end: { dateTime: zonedDateTime(startMs + duration, end.timeZone ?? zone), timeZone: zone },
    startMs,
    endMs: startMs + duration,
  };
}

/**
 * The instances of a series master that start before `untilMs`, as `singleEvents=true` lists
 * them: id `{masterId}_{YYYYMMDDTHHMMSSZ}`, `recurringEventId`, `originalStartTime`. Instances
 * with their own stored copy (exceptions, cancellations) are left to that copy.
 */
export function expandGoogleSeries(
  calendar: GoogleCalendar,
  master: GoogleEvent,
  range: { fromMs: number; untilMs: number },
): { event: GoogleEvent; startMs: number; endMs: number }[] {
  const recurrence = Array.isArray(master.recurrence) ? master.recurrence as string[] : [];
  const out: { event: GoogleEvent; startMs: number; endMs: number }[] = [];
  const start = seriesStart(master);
  // Instances starting up to a day before the range can still overlap it.
  const occurrences = expandRecurrence(recurrence, start, range.untilMs, {
    fromMs: range.fromMs - DAY,
  });
  for (const occurrence of occurrences) {
    const id = `${master.id}_${instanceSuffix(occurrence)}`;
    if (calendar.events.has(id)) continue;
    const times = instanceTimes(master, occurrence);
    const { recurrence: _rule, ...fields } = master;
    out.push({
      event: {
        ...structuredClone(fields),
        id,
        recurringEventId: master.id,
        originalStartTime: times.start,
        start: times.start,
        end: times.end,
        htmlLink: `${master.htmlLink ?? ""}_${instanceSuffix(occurrence)}`,
      } as GoogleEvent,
      startMs: times.startMs,
      endMs: times.endMs,
    });
  }
  return out;
}

/** What Google Calendar shows in [fromMs, toMs): singles, instances, exceptions; no cancelled. */
export function googleCalendarView(
  calendar: GoogleCalendar,
  fromMs: number,
  toMs: number,
): GoogleEvent[] {
  const out: GoogleEvent[] = [];
  for (const stored of calendar.events.values()) {
    if (stored.deleted || stored.event.status === "cancelled") continue;
    if (Array.isArray(stored.event.recurrence)) {
      const master = calendar.events.get(stored.event.id);
      if (!master) continue;
      for (
        const instance of expandGoogleSeries(calendar, stored.event, { fromMs, untilMs: toMs })
      ) {
        if (instance.startMs < toMs && instance.endMs > fromMs) out.push(instance.event);
      }
      continue;
    }
    const parent = stored.event.recurringEventId
      ? calendar.events.get(stored.event.recurringEventId as string)
      : undefined;
    if (parent && (parent.deleted || parent.event.status === "cancelled")) continue;
    if (stored.startMs < toMs && stored.endMs > fromMs) out.push(structuredClone(stored.event));
  }
  return out;
}

function listError(status: number, reason: string, message?: string): { error: GoogleListError } {
  return { error: { status, reason, message } };
}

/** Runs `events.list` against a calendar; returns the `Events` body or a Google error. */
export function listGoogleEvents(
  calendar: GoogleCalendar,
  query: URLSearchParams,
  ceiling: number,
): { body: Record<string, unknown> } | { error: GoogleListError } {
  const rawMax = query.get("maxResults");
  const maxResults = rawMax === null ? 250 : Number(rawMax);
  if (!Number.isInteger(maxResults) || maxResults < 1) {
    return listError(400, "invalid", `Invalid value '${rawMax}'. Values must be at least 1.`);
  }
  const pageSize = Math.min(maxResults, 2500, ceiling);
  for (const name of ["timeMin", "timeMax", "updatedMin"]) {
    const value = query.get(name);
    if (value !== null && !RFC3339_WITH_OFFSET.test(value)) {
      return listError(400, "badRequest", `Invalid value for ${name}: ${value}`);
    }
  }
  const syncToken = query.get("syncToken");
  const forbidden = SYNC_FORBIDDEN.find((name) => query.has(name));
  if (syncToken !== null && forbidden) {
    return listError(
      400,
      "badRequest",
      `The '${forbidden}' parameter cannot be used with syncToken.`,
    );
  }
  const orderBy = query.get("orderBy");
  const singleEvents = query.get("singleEvents") === "true";
  if (orderBy !== null && orderBy !== "updated" && !(orderBy === "startTime" && singleEvents)) {
    return listError(
      400,
      "badRequest",
      "The requested ordering is not available for the particular query.",
    );
  }
  const timeMin = query.has("timeMin") ? Date.parse(query.get("timeMin") ?? "") : -Infinity;
  const timeMax = query.has("timeMax") ? Date.parse(query.get("timeMax") ?? "") : Infinity;
  if (timeMin >= timeMax) return listError(400, "timeRangeEmpty");
  const updatedMin = query.has("updatedMin") ? Date.parse(query.get("updatedMin") ?? "") : null;

  let since: number | null = null;
  if (syncToken !== null) {
    const sync = syncCursor.safeParse(decodeOpaque("C", syncToken));
    if (!sync.success || sync.data.c !== calendar.id || sync.data.e !== calendar.epoch) {
      return listError(410, "fullSyncRequired");
    }
    since = sync.data.n;
  }
  let snapshot = calendar.clock;
  let after = 0;
  let afterIndex = Infinity;
  const pageToken = query.get("pageToken");
  if (pageToken !== null) {
    const page = pageCursor.safeParse(decodeOpaque("C", pageToken));
    if (!page.success || page.data.c !== calendar.id) {
      return listError(400, "invalid", "Invalid page token value.");
    }
    // Invalidation must also cut a pagination that is under way (wire formats §6).
    if (page.data.e !== calendar.epoch) return listError(410, "fullSyncRequired");
    if ((page.data.m === "inc") !== (since !== null) || (since !== null && since !== page.data.n)) {
      return listError(400, "invalid", "Page token does not match the request's syncToken.");
    }
    snapshot = page.data.s;
    after = page.data.a;
    afterIndex = page.data.i ?? Infinity;
  }

  const showDeleted = query.get("showDeleted") === "true";
  const q = query.get("q")?.toLowerCase();
  const iCalUID = query.get("iCalUID");
  const expandUntil = Number.isFinite(timeMax) ? timeMax : Date.now() + EXPANSION_HORIZON_MS;
  /** Every item one stored event contributes: itself, or its instances with singleEvents. */
  function renderAll(stored: StoredEvent): GoogleEvent[] {
    if (!singleEvents || !Array.isArray(stored.event.recurrence)) {
      const item = render(stored);
      return item ? [item] : [];
    }
    const instances = expandGoogleSeries(calendar, stored.event, {
      fromMs: Number.isFinite(timeMin) ? timeMin : Date.now() - EXPANSION_HORIZON_MS,
      untilMs: expandUntil,
    });
    if (since !== null) {
      if (stored.changeSeq <= since) return [];
      if (stored.deleted || stored.event.status === "cancelled") {
        // A deleted series: its instances are cancelled, and so is the series itself.
        return [...instances.map((i) => tombstone(i.event)), tombstone(stored.event)];
      }
      return instances.map((i) => i.event);
    }
    if (stored.deleted || stored.event.status === "cancelled") return [];
    return instances
      .filter((i) => i.endMs > timeMin && i.startMs < timeMax)
      .map((i) => i.event);
  }
  function render(stored: StoredEvent): GoogleEvent | null {
    const cancelled = stored.deleted || stored.event.status === "cancelled";
    // Deleted events only guarantee `id`; details of cancelled ones need showDeleted (§1.2).
    const out = () =>
      stored.deleted || (cancelled && !showDeleted)
        ? tombstone(stored.event)
        : structuredClone(stored.event);
    if (since !== null) return stored.changeSeq > since ? out() : null;
    if (stored.endMs <= timeMin || stored.startMs >= timeMax) return null;
    if (updatedMin !== null && stored.updatedMs < updatedMin) return null;
    if (cancelled && !showDeleted && updatedMin === null) return null;
    if (iCalUID !== null && stored.event.iCalUID !== iCalUID) return null;
    if (q) {
      const text = [stored.event.summary, stored.event.description, stored.event.location].join(
        " ",
      );
      if (!text.toLowerCase().includes(q)) return null;
    }
    return out();
  }

  const items: GoogleEvent[] = [];
  let more = false;
  let nextAfter = after;
  let nextIndex = afterIndex;
  if (orderBy !== null) {
    // Ordered listings never yield a sync token, so a plain offset is a safe cursor here.
    const key = (s: StoredEvent) => orderBy === "updated" ? s.updatedMs : s.startMs;
    const all = [...calendar.events.values()]
      .flatMap((stored) => renderAll(stored).map((item) => ({ stored, item })))
      .sort((x, y) => key(x.stored) - key(y.stored) || x.stored.ord - y.stored.ord);
    for (const { item } of all.slice(after, after + pageSize)) items.push(item);
    more = after + pageSize < all.length;
    nextAfter = after + items.length;
  } else {
    // Events keep their creation ordinal, so paging by ordinal never skips one created mid-sync;
    // a series' instances are numbered within it, so a page may end half-way through one.
    outer: for (const stored of calendar.events.values()) {
      if (stored.ord < after || (stored.ord === after && afterIndex === Infinity)) continue;
      const rendered = renderAll(stored);
      for (let index = 0; index < rendered.length; index++) {
        if (stored.ord === after && index <= afterIndex) continue;
        if (items.length === pageSize) {
          more = true;
          break outer;
        }
        items.push(rendered[index]);
        nextAfter = stored.ord;
        nextIndex = index === rendered.length - 1 ? Infinity : index;
      }
    }
  }

  const body: Record<string, unknown> = {
    kind: "calendar#events",
    etag: `"p${calendar.clock.toString(32)}${calendar.epoch}"`,
    summary: calendar.summary,
    updated: calendar.updated,
    timeZone: calendar.timeZone,
    accessRole: "owner",
    defaultReminders: [{ method: "popup", minutes: 10 }],
  };
  const mode = since === null ? "full" : "inc";
  const base = { c: calendar.id, e: calendar.epoch };
  if (more) {
    const page = {
      k: "p",
      ...base,
      m: mode,
      n: since ?? 0,
      s: snapshot,
      a: nextAfter,
      ...(Number.isFinite(nextIndex) ? { i: nextIndex } : {}),
    };
    body.nextPageToken = encodeOpaque("C", page);
  } else if (!NO_SYNC_TOKEN.some((name) => query.has(name))) {
    // Observed: sync-incompatible filters (orderBy, q, ...) get no nextSyncToken (§1.1).
    body.nextSyncToken = encodeOpaque("C", { k: "s", ...base, n: snapshot });
  }
  body.items = items;
  return { body };
}
