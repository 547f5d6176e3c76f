/**
 * @module Both fake providers as the soak drives them: events (single and recurring), sync-token
 * invalidation, faults and the delivery logs, behind one shape per provider.
 */
import type { Fault, SetFaultOptions } from "../../testkit/fake_faults.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { type FakeMicrosoft, startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import type { ProviderKind } from "../drill/evidence.ts";
import { googleTuples, microsoftTuples } from "../drill/providers.ts";

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

function googleStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
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
      // With singleEvents=false Google lists a series as its master plus one item per
      // exception, whose id is `<master>_<original start>`; the fake does not expand RRULEs, so
      // the soak writes the instances it later edits or cancels as exceptions of that shape.
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const at = new Date(first.getTime() + i * DAY);
        const id = `${master}_${googleStamp(at)}`;
        fake.putEvent(calendar, {
          id,
          summary: `${title} #${i + 1}`,
          recurringEventId: master,
          originalStartTime: { dateTime: at.toISOString(), timeZone: "UTC" },
          start: { dateTime: at.toISOString(), timeZone: "UTC" },
          end: { dateTime: hour(at), timeZone: "UTC" },
        });
        ids.push(id);
      }
      return ids;
    },
    editInstance: (calendar, id, title) => void fake.putEvent(calendar, { id, summary: title }),
    cancelInstance: (calendar, id) => void fake.putEvent(calendar, { id, status: "cancelled" }),
    liveIds: (calendar) => fake.liveEvents(calendar).map((e) => e.id),
    liveTuples: (calendar) => googleTuples(fake, calendar),
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
      // calendarView delta returns a series expanded into occurrences next to its master; the
      // fake does not expand, so the soak writes the occurrences in Graph's shape itself.
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const occurrence = fake.putEvent(calendar, {
          subject: title,
          type: "occurrence",
          seriesMasterId: master.id,
          start: new Date(first.getTime() + i * DAY).toISOString(),
        });
        ids.push(occurrence.id);
      }
      return ids;
    },
    editInstance: (calendar, id, title) =>
      void fake.putEvent(calendar, { id, subject: title, type: "exception" }),
    cancelInstance: (calendar, id) => void fake.deleteEvent(calendar, id),
    liveIds: (calendar) => fake.liveEvents(calendar).map((e) => e.id),
    liveTuples: (calendar) => microsoftTuples(fake, calendar),
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
