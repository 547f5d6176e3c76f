/** @module One interface over the fake Google and Microsoft servers, as the drill uses them. */
import type { FakeServerControls, Fault, SetFaultOptions } from "../../testkit/fake_faults.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { type FakeMicrosoft, startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import type { DeliveryAttempt, ProviderKind, ProviderRequest } from "./evidence.ts";

/** A fake provider with the handful of operations the drill needs. */
export type DrillProvider = {
  kind: ProviderKind;
  /** The daemon's environment variables that point it at this fake. */
  env: Record<string, string>;
  controls: FakeServerControls;
  setFault(fault: Fault | null, options?: SetFaultOptions): void;
  addRefreshToken(token: string): void;
  /** Creates an event titled `title`; the fake notifies the calendar's channels. */
  putEvent(calendar: string, title: string): void;
  /** `id|title|etag` of the calendar's live events, sorted by id, as the mirror is. */
  liveTuples(calendar: string): string[];
  /** Times of the event API (list / delta) requests for `calendar`, from request index `since`. */
  apiRequestTimes(calendar: string, since?: number): number[];
  /** The same requests with the status the fake answered (0 while one is pending). */
  apiRequests(calendar: string, since?: number): ProviderRequest[];
  /** Creates an event without notifying channels: the change waits for a sync to fetch it. */
  putEventQuietly(calendar: string, title: string): void;
  /** The current end of the request log. */
  requestMark(): number;
  /** The current end of the delivery log. */
  deliveryMark(): number;
  /** Change-notification delivery attempts to the calendar's channels, from index `since`. */
  notificationAttempts(calendar: string, since: number): DeliveryAttempt[];
  /** True when the fake holds a live channel (Google) or subscription (Graph) for `calendar`. */
  hasChannel(calendar: string): boolean;
  close(): Promise<void>;
};

// Provider retries compressed: 100 ms doubling over 9 attempts gives the drill ~25 s in which
// a delivery that failed during an outage is still being retried.
const RETRY = { baseMs: 100, attempts: 9, timeoutMs: 3_000 };

/** `id|title|etag` lines, sorted: the form mirrorTuples() reads the mirror in. */
export function tuples(events: { id: string; title: string; etag: string }[]): string[] {
  return events.map((e) => `${e.id}|${e.title}|${e.etag}`).sort();
}

/** `id|title|etag` of a fake Google calendar's live events, as mirrorTuples() reads mirrors. */
export function googleTuples(fake: FakeGoogle, calendar: string): string[] {
  return tuples(
    fake.liveEvents(calendar).map((e) => ({ id: e.id, title: e.summary ?? "", etag: e.etag })),
  );
}

/** `id|title|etag` of a fake Microsoft calendar's live events, as mirrorTuples() reads mirrors. */
export function microsoftTuples(fake: FakeMicrosoft, calendar: string): string[] {
  return tuples(
    fake.liveEvents(calendar).map((e) => ({
      id: e.id,
      title: e.subject ?? "",
      etag: e["@odata.etag"],
    })),
  );
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function googleRequests(fake: FakeGoogle, calendar: string, since: number): ProviderRequest[] {
  return fake.requests.slice(since).filter((r) => {
    const match = r.path.match(/^\/calendar\/v3\/calendars\/([^/]+)\/events$/);
    return r.method === "GET" && match !== null && decoded(match[1]) === calendar;
  }).map((r) => ({ at: r.at, status: r.status }));
}

function microsoftRequests(
  fake: FakeMicrosoft,
  calendar: string,
  since: number,
): ProviderRequest[] {
  return fake.requests.slice(since).filter((r) => {
    const match = r.path.match(/\/calendars\/([^/]+)\/calendarview\/delta$/i);
    return r.method === "GET" && match !== null && decoded(match[1]) === calendar;
  }).map((r) => ({ at: r.at, status: r.status }));
}

function googleProvider(fake: FakeGoogle): DrillProvider {
  const channelIds = (calendar: string) =>
    new Set(fake.channels().filter((c) => c.calendarId === calendar).map((c) => c.id));
  return {
    kind: "google",
    env: { GOOGLE_API_BASE_URL: fake.baseUrl, GOOGLE_TOKEN_URL: fake.tokenUrl },
    controls: fake,
    setFault: (fault, options) => fake.setFault(fault, options),
    addRefreshToken: (token) => fake.addRefreshToken(token),
    putEvent: (calendar, title) => void fake.putEvent(calendar, { summary: title }),
    liveTuples: (calendar) => googleTuples(fake, calendar),
    apiRequestTimes(calendar, since = 0) {
      return googleRequests(fake, calendar, since).map((r) => r.at);
    },
    apiRequests: (calendar, since = 0) => googleRequests(fake, calendar, since),
    putEventQuietly: (calendar, title) =>
      void fake.putEvent(calendar, { summary: title }, { notify: false }),
    requestMark: () => fake.requests.length,
    deliveryMark: () => fake.deliveries.length,
    notificationAttempts(calendar, since) {
      const ids = channelIds(calendar);
      return fake.deliveries.slice(since)
        .filter((d) => ids.has(d.channelId) && d.state !== "sync" && d.status !== "dropped")
        .map((d) => ({
          attempt: d.attempt,
          status: d.status as DeliveryAttempt["status"],
          at: d.at,
          ids: [`google:${d.channelId}:${d.messageNumber}`],
        }));
    },
    hasChannel: (calendar) =>
      fake.channels().some((c) =>
        c.calendarId === calendar && c.stoppedAt === null && c.expiration > Date.now()
      ),
    close: () => fake.close(),
  };
}

function microsoftProvider(fake: FakeMicrosoft): DrillProvider {
  const subscriptionIds = (calendar: string) =>
    new Set(
      fake.subscriptions()
        .filter((s) => {
          const match = s.resource.match(/calendars\/([^/]+)\/events$/i);
          return (match ? decoded(match[1]) : "primary") === calendar;
        })
        .map((s) => s.id),
    );
  return {
    kind: "microsoft",
    env: { MICROSOFT_GRAPH_BASE_URL: fake.baseUrl, MICROSOFT_TOKEN_URL: fake.tokenUrl },
    controls: fake,
    setFault: (fault, options) => fake.setFault(fault, options),
    addRefreshToken: (token) => fake.addRefreshToken(token),
    putEvent: (calendar, title) => void fake.putEvent(calendar, { subject: title }),
    liveTuples: (calendar) => microsoftTuples(fake, calendar),
    apiRequestTimes(calendar, since = 0) {
      return microsoftRequests(fake, calendar, since).map((r) => r.at);
    },
    apiRequests: (calendar, since = 0) => microsoftRequests(fake, calendar, since),
    putEventQuietly: (calendar, title) =>
      void fake.putEvent(calendar, { subject: title }, { notify: false }),
    requestMark: () => fake.requests.length,
    deliveryMark: () => fake.deliveries.length,
    notificationAttempts(calendar, since) {
      const ids = subscriptionIds(calendar);
      return fake.deliveries.slice(since)
        .filter((d) => d.kind === "notification" && d.subscriptionIds.some((id) => ids.has(id)))
        .map((d) => ({
          attempt: d.attempt,
          status: d.status as DeliveryAttempt["status"],
          at: d.at,
          ids: d.subscriptionIds.filter((id) => ids.has(id)).map((id) => `microsoft:${id}`),
        }));
    },
    hasChannel: (calendar) => subscriptionIds(calendar).size > 0,
    close: () => fake.close(),
  };
}

/** Starts the fake for `kind` with the drill's compressed delivery timings. */
export function startDrillProvider(kind: ProviderKind): DrillProvider {
  if (kind === "google") {
    return googleProvider(startFakeGoogle({
      pushRetryBaseMs: RETRY.baseMs,
      pushMaxAttempts: RETRY.attempts,
      pushTimeoutMs: RETRY.timeoutMs,
    }));
  }
  return microsoftProvider(startFakeMicrosoft({
    notificationRetryBaseMs: RETRY.baseMs,
    notificationMaxAttempts: RETRY.attempts,
    notificationTimeoutMs: RETRY.timeoutMs,
    validationTimeoutMs: RETRY.timeoutMs,
  }));
}
