/**
 * @module Fake Microsoft Graph (calendarView delta, subscriptions) + identity platform token endpoint
 * on loopback, for tests and the outage drill. Behaviour follows shared/provider-wire-formats.md §3-4.
 */
import { createDeliverer } from "./fake_delivery.ts";
import {
  type FakeServerControls,
  type Fault,
  type FaultEndpoint,
  jsonResponse,
  rawJsonResponse,
  startFakeHost,
} from "./fake_faults.ts";
import {
  createGraphCalendar,
  deleteGraphEvent,
  type GraphCalendar,
  graphCalendarView,
  graphDelta,
  type GraphDeltaError,
  type GraphDeltaQuirks,
  type GraphEvent,
  type GraphEventInput,
  graphGone,
  liveGraphEvents,
  parseGraphTime,
  putGraphEvent,
  seedGraphEvents,
} from "./fake_microsoft_calendar.ts";
import {
  createGraphSubscriptions,
  type GraphDelivery,
  type GraphLifecycleEvent,
  type GraphSubscription,
} from "./fake_microsoft_subscriptions.ts";
import {
  aadError,
  expiredGrant,
  GRAPH_STATUS_CODES,
  graphError,
  graphUnauthorized,
  microsoftTokenEndpoint,
} from "./fake_microsoft_auth.ts";
import { createTokenStore } from "./fake_tokens.ts";
import { createConsentServer, type FakeUser } from "./fake_consent.ts";
import { calendarListPage } from "./fake_calendar_lists.ts";

export type { GraphDelivery, GraphEvent, GraphEventInput, GraphLifecycleEvent, GraphSubscription };

/** Options of {@link startFakeMicrosoft}; delivery timings are compressed defaults for tests. */
export type FakeMicrosoftOptions = {
  clientId?: string;
  clientSecret?: string;
  accessTokenTtlSeconds?: number;
  maxSubscriptionMinutes?: number;
  port?: number;
  rotateStrict?: boolean;
  refreshTokens?: string[];
  defaultPageSize?: number;
  maxPageSize?: number;
  quirks?: GraphDeltaQuirks;
  validationTimeoutMs?: number;
  notificationTimeoutMs?: number;
  notificationRetryBaseMs?: number;
  notificationMaxAttempts?: number;
  notificationBatchWindowMs?: number;
  /** The zone delta answers use when the request has no `Prefer: outlook.timezone`. */
  zoneWithoutPrefer?: string;
};

/** A window given as ISO strings or dates, for `liveEvents`. */
export type GraphWindowInput = { start: string | Date; end: string | Date };

/** A running fake Microsoft provider and its test-side state API. */
export type FakeMicrosoft = FakeServerControls & {
  readonly baseUrl: string;
  readonly tokenUrl: string;
  /** The authorization endpoint (MICROSOFT_AUTH_URL) of the `common` tenant. */
  readonly authUrl: string;
  readonly deliveries: GraphDelivery[];
  /** A user who can consent; `calendars` defaults to one default calendar. */
  addUser(
    user: { subject: string; email: string; tenant?: string; calendars?: FakeUser["calendars"] },
  ): FakeUser;
  /** Who consents at the authorization endpoint from now on; null denies consent. */
  consentAs(subject: string | null): void;
  addRefreshToken(token: string): void;
  revokeRefreshToken(token: string): void;
  expireAccessTokens(): void;
  issueAccessToken(): string;
  currentRefreshTokens(): string[];
  tokenRequests(): number;
  addCalendar(calendarId: string): void;
  /** `notify: false` changes the calendar without a change notification (one trigger only). */
  putEvent(
    calendarId: string,
    input?: GraphEventInput,
    options?: { notify?: boolean },
  ): GraphEvent;
  deleteEvent(calendarId: string, id: string): boolean;
  liveEvents(calendarId: string, window?: GraphWindowInput): GraphEvent[];
  /** What Outlook shows in the window: singles, occurrences (master fields), exceptions. */
  calendarView(calendarId: string, window: GraphWindowInput): GraphEvent[];
  seedEvents(calendarId: string, count: number, options?: { bytesEach?: number }): void;
  invalidateSyncTokens(
    calendarId?: string,
    options?: { code?: "syncStateNotFound" | "resyncRequired" },
  ): void;
  subscriptions(): GraphSubscription[];
  emitLifecycle(subscriptionId: string, event: GraphLifecycleEvent): boolean;
  flushDeliveries(): Promise<void>;
};

const TENANT_ID = "84bd8158-6d4d-4958-8b9f-9d6445542f95";
const USER_ID = "8ee44408-0679-472c-bc2a-692812af3437";
const DELTA_PATH =
  /^\/v1\.0\/(?:me|users\/[^/]+)(?:\/calendar|\/calendars\/([^/]+))?\/calendarview\/delta$/i;
const EVENT_PATH = /^\/v1\.0\/(?:me|users\/[^/]+)\/events\/([^/]+)$/i;
const SUBSCRIPTION_PATH = /^\/v1\.0\/subscriptions(?:\/([^/]+)(\/reauthorize)?)?$/i;
const TOKEN_PATH = /^\/[^/]+\/oauth2\/v2\.0\/token$/;
const AUTHORIZE_PATH = /^\/[^/]+\/oauth2\/v2\.0\/authorize$/;
const CALENDARS_PATH = /^\/v1\.0\/me\/calendars$/i;
/** Starts a fake Microsoft provider on 127.0.0.1 (a free port unless `port` is given). */
export function startFakeMicrosoft(options: FakeMicrosoftOptions = {}): FakeMicrosoft {
  const ttl = options.accessTokenTtlSeconds ?? 3599;
  const defaultPageSize = options.defaultPageSize ?? 10;
  const maxPageSize = options.maxPageSize ?? 1000;
  const tokens = createTokenStore("eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.", options.refreshTokens);
  const calendars = new Map<string, GraphCalendar>([["primary", createGraphCalendar("primary")]]);
  const deliverer = createDeliverer();
  const consent = createConsentServer(tokens, "0.AXEA");
  const token = microsoftTokenEndpoint(tokens, {
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    ttl,
    rotateStrict: options.rotateStrict,
    consent,
    origin: () => host.origin,
  });

  // Built before the listener so bad delivery options throw without leaking a socket.
  const subs = createGraphSubscriptions(deliverer, {
    origin: () => host.origin,
    tenantId: TENANT_ID,
    userId: USER_ID,
    maxSubscriptionMinutes: options.maxSubscriptionMinutes ?? 10080,
    validationTimeoutMs: options.validationTimeoutMs ?? 10_000,
    notificationTimeoutMs: options.notificationTimeoutMs ?? 3_000,
    retryBaseMs: options.notificationRetryBaseMs ?? 50,
    maxAttempts: options.notificationMaxAttempts ?? 6,
    batchWindowMs: options.notificationBatchWindowMs ?? 0,
  });

  function calendar(calendarId: string): GraphCalendar {
    let found = calendars.get(calendarId);
    if (!found) {
      found = createGraphCalendar(calendarId);
      calendars.set(calendarId, found);
    }
    return found;
  }

  function linkBase(calendarId: string): string {
    // Links use another path spelling than requests do, as Graph's sometimes do (§3.2).
    const scope = calendarId === "primary"
      ? "calendar"
      : `calendars/${encodeURIComponent(calendarId)}`;
    return `${host.origin}/v1.0/me/${scope}/calendarview/delta`;
  }

  function deltaError(request: Request, error: GraphDeltaError): Response {
    return graphError(request, error, error.location ? { location: error.location } : {});
  }

  function faultResponse(
    request: Request,
    fault: Fault,
    endpoint: FaultEndpoint,
    calendarId: string,
  ) {
    switch (fault.kind) {
      case "hang":
        return host.hang();
      case "invalid_grant":
        return expiredGrant();
      case "gone":
        return deltaError(
          request,
          graphGone(fault.code ?? "syncStateNotFound", linkBase(calendarId)),
        );
      case "malformed":
        if (fault.variant === "truncated") {
          return rawJsonResponse(
            endpoint === "token" ? '{"token_type":"Bearer","access_tok' : '{"value":[{"id":"AAMkAD',
          );
        }
        return jsonResponse(
          endpoint === "token"
            ? { token_type: "Bearer", expires_in: "soon", access_token: 12345 }
            : {
              "@odata.context": `${host.origin}/v1.0/$metadata#Collection(event)`,
              value: { id: "x" },
            },
        );
      case "status": {
        const headers: Record<string, string> = fault.retryAfter
          ? { "retry-after": fault.retryAfter }
          : {};
        if (fault.body !== undefined) return jsonResponse(fault.body, fault.status, headers);
        if (endpoint === "token") {
          const transient = fault.status >= 500 || fault.status === 429;
          const response = transient
            ? aadError(
              fault.status,
              "temporarily_unavailable",
              90006,
              "The server is temporarily unavailable.",
            )
            : aadError(fault.status, fault.reason ?? "invalid_request", 900144, "Fake fault.");
          for (const [name, value] of Object.entries(headers)) response.headers.set(name, value);
          return response;
        }
        const [code, message] = GRAPH_STATUS_CODES[fault.status] ?? ["UnknownError", ""];
        return graphError(
          request,
          { status: fault.status, code: fault.reason ?? code, message },
          headers,
        );
      }
    }
  }

  async function readJson(request: Request): Promise<unknown> {
    try {
      return await request.json();
    } catch {
      return undefined;
    }
  }

  async function subscriptionRoute(request: Request, id: string | undefined, reauthorize: boolean) {
    const method = request.method;
    if (id === undefined && method === "POST") {
      const result = await subs.create(await readJson(request));
      return "error" in result
        ? graphError(request, result.error)
        : jsonResponse(result.subscription, 201);
    }
    if (id === undefined && method === "GET") {
      const context = `${host.origin}/v1.0/$metadata#subscriptions`;
      return jsonResponse({ "@odata.context": context, value: subs.list() });
    }
    if (id === undefined) {
      return graphError(request, {
        status: 405,
        code: "BadRequest",
        message: "Method not allowed.",
      });
    }
    if (reauthorize && method === "POST") {
      const result = await subs.reauthorize(id);
      return "error" in result
        ? graphError(request, result.error)
        : new Response(null, { status: 200 });
    }
    if (method === "PATCH") {
      const result = await subs.renew(id, await readJson(request));
      return "error" in result
        ? graphError(request, result.error)
        : jsonResponse(result.subscription);
    }
    const found = subs.get(id);
    const missing = {
      status: 404,
      code: "ResourceNotFound",
      message: `The object '${id}' was not found.`,
    };
    if (method === "GET") return found ? jsonResponse(found) : graphError(request, missing);
    if (method === "DELETE") {
      return subs.remove(id) ? new Response(null, { status: 204 }) : graphError(request, missing);
    }
    return graphError(request, { status: 405, code: "BadRequest", message: "Method not allowed." });
  }

  async function handle(request: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    if (TOKEN_PATH.test(path) && request.method === "POST") {
      const fault = host.takeFault("token", (f) => f.kind !== "gone");
      return fault ? await faultResponse(request, fault, "token", "primary") : await token(request);
    }
    if (AUTHORIZE_PATH.test(path) && request.method === "GET") {
      return consent.authorize(url, options.clientId);
    }
    if (CALENDARS_PATH.test(path) && request.method === "GET") return calendarList(request, url);
    const single = request.method === "GET" ? path.match(EVENT_PATH) : null;
    if (single) return getEvent(request, decodeURIComponent(single[1]));
    const delta = request.method === "GET" ? path.match(DELTA_PATH) : null;
    const subscription = path.match(SUBSCRIPTION_PATH);
    if (!delta && !subscription) {
      const segment = path.split("/").filter(Boolean).at(-1) ?? "";
      return graphError(request, {
        status: 400,
        code: "BadRequest",
        message: `Resource not found for the segment '${segment}'.`,
      });
    }
    const calendarId = delta?.[1] === undefined ? "primary" : decodeURIComponent(delta[1]);
    const query = url.searchParams;
    const hasCursor = query.has("$skiptoken") || Boolean(query.get("$deltatoken"));
    const endpoint = delta ? "api" : "push";
    const fault = host.takeFault(endpoint, (f) => {
      if (f.kind === "invalid_grant") return false;
      if (f.kind === "gone") return delta !== null && hasCursor;
      return f.kind !== "malformed" || delta !== null;
    }, delta ? calendarId : undefined);
    if (fault) return await faultResponse(request, fault, endpoint, calendarId);
    const denied = graphUnauthorized(tokens, request);
    if (denied) return denied;
    if (subscription) {
      return await subscriptionRoute(request, subscription[1], Boolean(subscription[2]));
    }

    const found = calendars.get(calendarId);
    if (!found) {
      return graphError(request, {
        status: 404,
        code: "ErrorItemNotFound",
        message: "The specified object was not found in the store.",
      });
    }
    const prefer = (request.headers.get("prefer") ?? "").split(",").map((p) => p.trim());
    const asked = prefer.map((p) => p.match(/^odata\.maxpagesize=(\d+)$/i)?.[1]).find(Boolean);
    const pageSize = Math.max(1, Math.min(asked ? Number(asked) : defaultPageSize, maxPageSize));
    const result = graphDelta(found, {
      query,
      pageSize,
      linkBase: linkBase(calendarId),
      quirks: options.quirks ?? {},
      render: { zone: preferredZone(prefer) },
    });
    if ("error" in result) return deltaError(request, result.error);
    return jsonResponse(result.body, 200, {
      "content-type":
        "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
      "odata-version": "4.0",
      ...(asked ? { "preference-applied": `odata.maxpagesize=${pageSize}` } : {}),
    });
  }

  /** GET /me/calendars for the bearer's user, paged by $top with an @odata.nextLink. */
  function calendarList(request: Request, url: URL): Response {
    const denied = graphUnauthorized(tokens, request);
    if (denied) return denied;
    const user = consent.bearerUser(request);
    const entries = (user?.calendars ?? []).map((entry) => ({
      id: entry.id,
      name: entry.name,
      color: "auto",
      isDefaultCalendar: entry.primary === true,
      canEdit: entry.accessRole === "owner" || entry.accessRole === "writer",
      canShare: entry.accessRole === "owner",
      owner: { name: user!.email, address: user!.email },
    }));
    const top = Math.min(Number(url.searchParams.get("$top") ?? 10) || 10, 100);
    const page = calendarListPage(entries, url.searchParams.get("$skiptoken"), top);
    if (page === null) {
      return graphError(request, { status: 400, code: "BadRequest", message: "Bad skip token." });
    }
    const next = new URL(`${host.origin}/v1.0/me/calendars`);
    next.searchParams.set("$top", String(top));
    if (page.next) next.searchParams.set("$skiptoken", page.next);
    return jsonResponse({
      "@odata.context": `${host.origin}/v1.0/$metadata#users('${user?.subject}')/calendars`,
      value: page.items,
      ...(page.next ? { "@odata.nextLink": next.toString() } : {}),
    });
  }

  /** `Prefer: outlook.timezone="..."`, else the zone this fake answers in without it. */
  function preferredZone(prefer: string[]): string {
    const asked = prefer.map((p) => p.match(/^outlook\.timezone="?([^"]+)"?$/i)?.[1]).find(Boolean);
    return asked ?? options.zoneWithoutPrefer ?? "UTC";
  }

  /** GET /me/events/{id}: the full resource (series masters, for occurrences' fields). */
  async function getEvent(request: Request, id: string): Promise<Response> {
    const fault = host.takeFault("api", (f) => f.kind !== "invalid_grant" && f.kind !== "gone");
    if (fault) return await faultResponse(request, fault, "api", "primary");
    const denied = graphUnauthorized(tokens, request);
    if (denied) return denied;
    for (const target of calendars.values()) {
      const stored = target.events.get(id);
      if (stored && !stored.deleted) return jsonResponse(structuredClone(stored.event));
    }
    return graphError(request, {
      status: 404,
      code: "ErrorItemNotFound",
      message: "The specified object was not found in the store.",
    });
  }

  const host = startFakeHost(handle, { port: options.port });
  host.onClose(() => deliverer.close());

  return {
    ...host.controls,
    baseUrl: `${host.origin}/v1.0`,
    tokenUrl: `${host.origin}/common/oauth2/v2.0/token`,
    authUrl: `${host.origin}/common/oauth2/v2.0/authorize`,
    deliveries: subs.deliveries,
    addUser(input) {
      const user: FakeUser = {
        subject: input.subject,
        email: input.email,
        tenant: input.tenant,
        calendars: input.calendars ??
          [{ id: `AAMkAD-${input.subject}`, name: "Calendar", primary: true, accessRole: "owner" }],
      };
      consent.addUser(user);
      for (const entry of user.calendars) calendar(entry.id);
      return user;
    },
    consentAs: (subject) => consent.consentAs(subject),
    addRefreshToken: (refreshToken) => tokens.addRefreshToken(refreshToken),
    revokeRefreshToken: (refreshToken) => tokens.revokeRefreshToken(refreshToken),
    expireAccessTokens: () => tokens.expireAccessTokens(),
    issueAccessToken: () => tokens.issueAccessToken(ttl),
    currentRefreshTokens: () => tokens.currentRefreshTokens(),
    tokenRequests: () => host.controls.countRequests((r) => TOKEN_PATH.test(r.path)),
    addCalendar: (calendarId) => void calendar(calendarId),
    putEvent(calendarId, input = {}, putOptions = {}) {
      const target = calendar(calendarId);
      const existed = input.id !== undefined && target.events.get(input.id)?.deleted === false;
      const event = putGraphEvent(target, input);
      if (putOptions.notify === false) return event;
      subs.notifyChange(calendarId, existed ? "updated" : "created", {
        id: event.id,
        etag: event["@odata.etag"],
      });
      return event;
    },
    deleteEvent(calendarId, id) {
      const target = calendars.get(calendarId);
      const etag = target?.events.get(id)?.event["@odata.etag"] ?? "";
      const deleted = target !== undefined && deleteGraphEvent(target, id);
      if (deleted) subs.notifyChange(calendarId, "deleted", { id, etag });
      return deleted;
    },
    liveEvents(calendarId, window) {
      const target = calendars.get(calendarId);
      if (!target) return [];
      const toMs = (value: string | Date) =>
        typeof value === "string" ? parseGraphTime(value) : value.getTime();
      return liveGraphEvents(
        target,
        window && { start: toMs(window.start), end: toMs(window.end) },
      );
    },
    calendarView(calendarId, window) {
      const target = calendars.get(calendarId);
      if (!target) return [];
      const toMs = (value: string | Date) =>
        typeof value === "string" ? parseGraphTime(value) : value.getTime();
      return graphCalendarView(target, { start: toMs(window.start), end: toMs(window.end) });
    },
    seedEvents(calendarId, count, seedOptions = {}) {
      seedGraphEvents(calendar(calendarId), count, seedOptions.bytesEach);
    },
    invalidateSyncTokens(calendarId, invalidateOptions = {}) {
      const targets = calendarId === undefined ? [...calendars.values()] : [calendar(calendarId)];
      for (const target of targets) {
        target.epoch++;
        target.goneCode = invalidateOptions.code ?? "syncStateNotFound";
      }
    },
    subscriptions: () => subs.list(),
    emitLifecycle: (subscriptionId, event) => subs.emitLifecycle(subscriptionId, event),
    flushDeliveries: () => deliverer.flush(),
  };
}
