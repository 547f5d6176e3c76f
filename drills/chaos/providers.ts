/**
 * @module Both fake providers as the soak drives them: events (single and recurring), sync-token
 * invalidation, faults and the delivery logs, behind one shape per provider.
 */
import type { Fault, SetFaultOptions } from "../../testkit/fake_faults.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { type FakeMicrosoft, startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import type { ProviderKind } from "../drill/evidence.ts";
import { tuples } from "../drill/providers.ts";

/** Push deliveries as a fake saw them: attempts, acknowledged messages, duplicates it sent. */
export type DeliveryFigures = { attempts: number; acknowledged: number; duplicatesSent: number };

/** One fake provider as the soak uses it. */
export type ChaosProvider = {
  kind: ProviderKind;
  /** The daemon's environment variables that point it at this fake. */
  env: Record<string, string>;
  setFault(fault: Fault | null, options?: SetFaultOptions): void;
  addRefreshToken(token: string): void;
  /** Creates a single event; returns its id. */
  createEvent(calendar: string, title: string): string;
  updateEvent(calendar: string, id: string, title: string): void;
  deleteEvent(calendar: string, id: string): boolean;
  /** Creates a recurring series (master plus instances); returns the instance ids. */
  createSeries(calendar: string, title: string, count: number): string[];
  /** Edits one instance of a series into an exception (new title). */
  editInstance(calendar: string, id: string, title: string): void;
  /** Cancels one instance of a series. */
  cancelInstance(calendar: string, id: string): void;
  liveIds(calendar: string): string[];
  /** `id|title|etag` of the calendar's live events, sorted, as the mirror is compared. */
  liveTuples(calendar: string): string[];
  /** Makes every sync token / delta link of the calendar answer 410. */
  invalidateSyncTokens(calendar: string): void;
  hasChannel(calendar: string): boolean;
  /** Event API requests (list / delta) received so far, faulted ones included. */
  apiRequests(): number;
  deliveries(): DeliveryFigures;
  flushDeliveries(): Promise<void>;
  close(): Promise<void>;
};

// Compressed provider retries (as the drill's): a delivery that failed during a webhook outage
// is retried for ~25 s, so it lands within the soak's settle phase.
const RETRY = { baseMs: 100, attempts: 9, timeoutMs: 3_000 };
const DAY = 86_400_000;

/** Start of the day `days` from today at 09:00 UTC, inside the daemon's sync window. */
function nineAm(days: number): Date {
  return new Date(Math.floor(Date.now() / DAY) * DAY + days * DAY + 9 * 3_600_000);
}

/** The stretch the daemon's default window (30 days back, 365 ahead) surely holds. */
function viewRange(): [string, string] {
  const now = Date.now();
  return [new Date(now - 29 * DAY).toISOString(), new Date(now + 364 * DAY).toISOString()];
}

function graphRange(): { start: string; end: string } {
  const [start, end] = viewRange();
  return { start, end };
}

function base32hexId(): string {
  // Google event ids use base32hex characters (a-v, 0-9).
  const alphabet = "0123456789abcdefghijklmnopqrstuv";
  return Array.from(crypto.getRandomValues(new Uint8Array(20)), (b) => alphabet[b % 32]).join("");
}

function googleChaosProvider(fake: FakeGoogle): ChaosProvider {
  const acks = () => fake.deliveries.filter((d) => typeof d.status === "number" && d.status < 300);
  return {
    kind: "google",
    env: { GOOGLE_API_BASE_URL: fake.baseUrl, GOOGLE_TOKEN_URL: fake.tokenUrl },
    setFault: (fault, options) => fake.setFault(fault, options),
    addRefreshToken: (token) => fake.addRefreshToken(token),
    createEvent: (calendar, title) => fake.putEvent(calendar, { summary: title }).id,
    updateEvent: (calendar, id, title) => void fake.putEvent(calendar, { id, summary: title }),
    deleteEvent: (calendar, id) => fake.deleteEvent(calendar, id),
    createSeries(calendar, title, count) {
      const master = base32hexId();
      const first = nineAm(2);
      const hour = (d: Date) => new Date(d.getTime() + 3_600_000).toISOString();
      fake.putEvent(calendar, {
        id: master,
        summary: title,
        recurrence: [`RRULE:FREQ=DAILY;COUNT=${count}`],
        start: { dateTime: first.toISOString(), timeZone: "UTC" },
        end: { dateTime: hour(first), timeZone: "UTC" },
      });
      // The fake expands the rule as singleEvents=true does: ids `<master>_<original start>`.
      return fake.calendarView(calendar, ...viewRange())
        .filter((e) => e.recurringEventId === master)
        .map((e) => e.id);
    },
    editInstance(calendar, id, title) {
      const instance = fake.calendarView(calendar, ...viewRange()).find((e) => e.id === id);
      // An exception is its own stored copy of the instance, moved an hour later.
      if (!instance?.start?.dateTime || !instance.end?.dateTime) {
        fake.putEvent(calendar, { id, summary: title });
        return;
      }
      const later = (value: string) =>
        new Date(Date.parse(value) + 3_600_000).toISOString().replace(".000", "");
      fake.putEvent(calendar, {
        ...instance,
        summary: title,
        start: { dateTime: later(instance.start.dateTime), timeZone: "UTC" },
        end: { dateTime: later(instance.end.dateTime), timeZone: "UTC" },
      });
    },
    cancelInstance(calendar, id) {
      const instance = fake.calendarView(calendar, ...viewRange()).find((e) => e.id === id);
      fake.putEvent(calendar, { ...instance, id, status: "cancelled" });
    },
    liveIds: (calendar) => fake.calendarView(calendar, ...viewRange()).map((e) => e.id),
    liveTuples: (calendar) =>
      tuples(
        fake.calendarView(calendar, ...viewRange()).map((e) => ({
          id: e.id,
          title: e.summary ?? "",
          etag: e.etag,
        })),
      ),
    invalidateSyncTokens: (calendar) => fake.invalidateSyncTokens(calendar),
    hasChannel: (calendar) =>
      fake.channels().some((c) =>
        c.calendarId === calendar && c.stoppedAt === null && c.expiration > Date.now()
      ),
    apiRequests: () =>
      fake.countRequests((r) => r.method === "GET" && /\/calendars\/[^/]+\/events$/.test(r.path)),
    deliveries() {
      const acked = acks().filter((d) => d.state !== "sync");
      const messages = new Set(acked.map((d) => `${d.channelId}:${d.messageNumber}`));
      return {
        attempts: fake.deliveries.filter((d) => d.status !== "dropped").length,
        acknowledged: messages.size,
        duplicatesSent: acked.length - messages.size,
      };
    },
    flushDeliveries: () => fake.flushDeliveries(),
    close: () => fake.close(),
  };
}

function microsoftChaosProvider(fake: FakeMicrosoft): ChaosProvider {
  return {
    kind: "microsoft",
    env: { MICROSOFT_GRAPH_BASE_URL: fake.baseUrl, MICROSOFT_TOKEN_URL: fake.tokenUrl },
    setFault: (fault, options) => fake.setFault(fault, options),
    addRefreshToken: (token) => fake.addRefreshToken(token),
    createEvent: (calendar, title) => fake.putEvent(calendar, { subject: title }).id,
    updateEvent: (calendar, id, title) => void fake.putEvent(calendar, { id, subject: title }),
    deleteEvent: (calendar, id) => fake.deleteEvent(calendar, id),
    createSeries(calendar, title, count) {
      const first = nineAm(2);
      const master = fake.putEvent(calendar, {
        subject: title,
        type: "seriesMaster",
        start: first.toISOString(),
        recurrence: {
          pattern: { type: "daily", interval: 1 },
          range: {
            type: "numbered",
            startDate: first.toISOString().slice(0, 10),
            numberOfOccurrences: count,
          },
        },
      });
      // The fake expands the series into occurrences, as calendarView delta does.
      return fake.calendarView(calendar, graphRange())
        .filter((e) => e.seriesMasterId === master.id)
        .map((e) => e.id);
    },
    editInstance(calendar, id, title) {
      const occurrence = fake.calendarView(calendar, graphRange()).find((e) => e.id === id);
      fake.putEvent(calendar, {
        id,
        subject: title,
        type: "exception",
        seriesMasterId: occurrence?.seriesMasterId ?? null,
        recurrence: null,
        ...(occurrence ? { start: occurrence.start, end: occurrence.end } : {}),
      });
    },
    cancelInstance(calendar, id) {
      const occurrence = fake.calendarView(calendar, graphRange()).find((e) => e.id === id);
      // A cancelled occurrence: a stored copy that is deleted, which delta reports as @removed.
      fake.putEvent(calendar, {
        id,
        type: "exception",
        seriesMasterId: occurrence?.seriesMasterId ?? null,
        recurrence: null,
      });
      fake.deleteEvent(calendar, id);
    },
    liveIds: (calendar) => fake.calendarView(calendar, graphRange()).map((e) => e.id),
    liveTuples: (calendar) =>
      tuples(
        fake.calendarView(calendar, graphRange()).map((e) => ({
          id: e.id,
          title: e.subject ?? "",
          etag: e["@odata.etag"],
        })),
      ),
    invalidateSyncTokens: (calendar) => fake.invalidateSyncTokens(calendar),
    hasChannel: (calendar) =>
      fake.subscriptions().some((s) =>
        decodeURIComponent(s.resource).toLowerCase().includes(
          `calendars/${calendar}/events`.toLowerCase(),
        )
      ),
    apiRequests: () =>
      fake.countRequests((r) => r.method === "GET" && /\/calendarview\/delta$/i.test(r.path)),
    deliveries() {
      const notes = fake.deliveries.filter((d) => d.kind === "notification");
      return {
        attempts: notes.length,
        acknowledged: notes.filter((d) => typeof d.status === "number" && d.status < 300).length,
        // Graph's fake sends no duplicates of its own; the soak replays deliveries instead.
        duplicatesSent: 0,
      };
    },
    flushDeliveries: () => fake.flushDeliveries(),
    close: () => fake.close(),
  };
}

/** Starts both fakes; Google duplicates a share of its pushes, as Google may. */
export function startChaosProviders(
  options: { pushDuplicateRate: number },
): Map<ProviderKind, ChaosProvider> {
  const google = startFakeGoogle({
    pushRetryBaseMs: RETRY.baseMs,
    pushMaxAttempts: RETRY.attempts,
    pushTimeoutMs: RETRY.timeoutMs,
    pushDuplicateRate: options.pushDuplicateRate,
  });
  const microsoft = startFakeMicrosoft({
    notificationRetryBaseMs: RETRY.baseMs,
    notificationMaxAttempts: RETRY.attempts,
    notificationTimeoutMs: RETRY.timeoutMs,
    validationTimeoutMs: RETRY.timeoutMs,
  });
  return new Map<ProviderKind, ChaosProvider>([
    ["google", googleChaosProvider(google)],
    ["microsoft", microsoftChaosProvider(microsoft)],
  ]);
}
