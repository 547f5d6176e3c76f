/**
 * @module Fake Google Calendar API v3 + OAuth token endpoint on loopback, for tests and the outage
 * drill. Behaviour follows shared/provider-wire-formats.md §1-2.
 */
import { createDeliverer } from "./fake_delivery.ts";
import {
  type FakeServerControls,
  type Fault,
  jsonResponse,
  rawJsonResponse,
  startFakeHost,
} from "./fake_faults.ts";
import {
  createGoogleCalendar,
  deleteGoogleEvent,
  type GoogleCalendar,
  googleCalendarView,
  type GoogleEvent,
  type GoogleEventInput,
  type GoogleListError,
  listGoogleEvents,
  liveGoogleEvents,
  putGoogleEvent,
  seedGoogleEvents,
} from "./fake_google_calendar.ts";
import { createGooglePush, type GoogleChannel, type GoogleDelivery } from "./fake_google_push.ts";
import { createTokenStore, readClientCredentials } from "./fake_tokens.ts";
import { createConsentServer, type FakeUser } from "./fake_consent.ts";
import { calendarListPage } from "./fake_calendar_lists.ts";

export type { GoogleChannel, GoogleDelivery, GoogleEvent, GoogleEventInput };

/** Options of {@link startFakeGoogle}; delivery timings are compressed defaults for tests. */
export type FakeGoogleOptions = {
  clientId?: string;
  clientSecret?: string;
  accessTokenTtlSeconds?: number;
  port?: number;
  maxPageSize?: number;
  refreshTokens?: string[];
  autoDeliver?: boolean;
  pushRetryBaseMs?: number;
  pushMaxAttempts?: number;
  pushTimeoutMs?: number;
  pushDropRate?: number;
  pushDuplicateRate?: number;
  stoppedChannelGraceMs?: number;
  maxChannelTtlMs?: number;
};

/** A running fake Google provider and its test-side state API. */
export type FakeGoogle = FakeServerControls & {
  readonly baseUrl: string;
  readonly tokenUrl: string;
  /** The authorization endpoint (GOOGLE_AUTH_URL); its origin is the id token's issuer. */
  readonly authUrl: string;
  readonly deliveries: GoogleDelivery[];
  /** A user who can consent; `calendars` defaults to their primary calendar (id = email). */
  addUser(user: { subject: string; email: string; calendars?: FakeUser["calendars"] }): FakeUser;
  /** Who consents at the authorization endpoint from now on; null denies consent. */
  consentAs(subject: string | null): void;
  /** The refresh tokens issued to a user through consent. */
  refreshTokensOf(subject: string): string[];
  /** A refresh token of the user, as a consent would have issued it. */
  issueRefreshTokenFor(subject: string): string;
  addRefreshToken(token: string): void;
  revokeRefreshToken(token: string): void;
  expireAccessTokens(): void;
  issueAccessToken(): string;
  tokenRequests(): number;
  addCalendar(calendarId: string, options?: { summary?: string; timeZone?: string }): void;
  setPushSupported(calendarId: string, supported: boolean): void;
  /** `notify: false` changes the calendar without a push notification (one trigger only). */
  putEvent(
    calendarId: string,
    input?: GoogleEventInput,
    options?: { notify?: boolean },
  ): GoogleEvent;
  deleteEvent(calendarId: string, id: string): boolean;
  liveEvents(calendarId: string): GoogleEvent[];
  /** What the calendar shows in [from, to) (ISO instants): singles, instances, exceptions. */
  calendarView(calendarId: string, from: string, to: string): GoogleEvent[];
  seedEvents(calendarId: string, count: number, options?: { bytesEach?: number }): void;
  invalidateSyncTokens(calendarId?: string): void;
  channels(): GoogleChannel[];
  notify(calendarId: string, state?: "exists" | "not_exists"): void;
  flushDeliveries(): Promise<void>;
};

const SCOPE = "https://www.googleapis.com/auth/calendar.readonly";
// Errors guide catalogue (§1.3-1.4): reason -> [domain, message, locationType, location].
const REASONS: Record<string, [string, string, string?, string?]> = {
  badRequest: ["global", "Bad Request"],
  invalid: ["global", "Invalid Value"],
  required: ["global", "Required"],
  timeRangeEmpty: ["calendar", "The specified time range is empty.", "parameter", "timeMax"],
  authError: ["global", "Invalid Credentials", "header", "Authorization"],
  userRateLimitExceeded: ["usageLimits", "User Rate Limit Exceeded"],
  rateLimitExceeded: ["usageLimits", "Rate Limit Exceeded"],
  quotaExceeded: ["usageLimits", "Calendar usage limits exceeded."],
  notFound: ["global", "Not Found"],
  duplicate: ["global", "The requested identifier already exists."],
  conflict: ["global", "Conflict"],
  fullSyncRequired: [
    "calendar",
    "Sync token is no longer valid, a full sync is required.",
    "parameter",
    "syncToken",
  ],
  deleted: ["global", "Resource has been deleted"],
  conditionNotMet: ["global", "Precondition Failed", "header", "If-Match"],
  backendError: ["global", "Backend Error"],
  channelIdNotUnique: ["global", "Channel id not unique"],
  pushNotSupportedForRequestedResource: [
    "global",
    "Push notifications are not supported by this resource.",
  ],
};
const DEFAULT_REASON: Record<number, string> = {
  400: "badRequest",
  401: "authError",
  403: "rateLimitExceeded",
  404: "notFound",
  409: "duplicate",
  410: "fullSyncRequired",
  412: "conditionNotMet",
  429: "rateLimitExceeded",
};
// Observed top-level `status` strings on quota and availability errors (§1.3).
const GRPC_STATUS: Record<number, string> = {
  403: "PERMISSION_DENIED",
  429: "RESOURCE_EXHAUSTED",
  503: "UNAVAILABLE",
};

/** Builds a Google API error response in the errors-guide shape. */
function googleError(error: GoogleListError, headers: Record<string, string> = {}): Response {
  const reason = error.reason;
  const [domain, defaultMessage, locationType, location] = REASONS[reason] ?? ["global", reason];
  const message = error.message ??
    (error.status === 503 ? "The service is currently unavailable." : defaultMessage);
  const item: Record<string, string> = { domain, reason, message };
  if (locationType && location) Object.assign(item, { locationType, location });
  const body: Record<string, unknown> = { errors: [item], code: error.status, message };
  if (GRPC_STATUS[error.status] && reason !== "authError") body.status = GRPC_STATUS[error.status];
  return jsonResponse({ error: body }, error.status, {
    "cache-control": "no-cache, no-store, max-age=0, must-revalidate",
    server: "ESF",
    ...headers,
  });
}

function oauthError(status: number, error: string, description: string): Response {
  return jsonResponse({ error, error_description: description }, status, {
    "cache-control": "no-cache, no-store, max-age=0, must-revalidate",
  });
}

/** Starts a fake Google provider on 127.0.0.1 (a free port unless `port` is given). */
export function startFakeGoogle(options: FakeGoogleOptions = {}): FakeGoogle {
  const ttl = options.accessTokenTtlSeconds ?? 3599;
  const ceiling = options.maxPageSize ?? 2500;
  if (!Number.isInteger(ceiling) || ceiling < 1) {
    throw new RangeError(
      `Cannot start fake Google as 'maxPageSize' must be a positive integer: current value is ${ceiling}`,
    );
  }
  const tokens = createTokenStore("ya29.", options.refreshTokens);
  const calendars = new Map<string, GoogleCalendar>([["primary", createGoogleCalendar("primary")]]);
  const deliverer = createDeliverer();
  const push = createGooglePush(deliverer, {
    retryBaseMs: options.pushRetryBaseMs ?? 50,
    maxAttempts: options.pushMaxAttempts ?? 6,
    timeoutMs: options.pushTimeoutMs ?? 5_000,
    dropRate: options.pushDropRate ?? 0,
    duplicateRate: options.pushDuplicateRate ?? 0,
    stoppedGraceMs: options.stoppedChannelGraceMs ?? 0,
    maxChannelTtlMs: options.maxChannelTtlMs ?? 7 * 24 * 3_600_000,
  });
  const autoDeliver = options.autoDeliver ?? true;
  const consent = createConsentServer(tokens, "1//0g");

  function calendar(calendarId: string): GoogleCalendar {
    let found = calendars.get(calendarId);
    if (!found) {
      found = createGoogleCalendar(calendarId);
      calendars.set(calendarId, found);
    }
    return found;
  }

  function faultResponse(
    fault: Fault,
    endpoint: "api" | "token" | "push",
  ): Promise<Response> | Response {
    switch (fault.kind) {
      case "hang":
        return host.hang();
      case "invalid_grant":
        return oauthError(400, "invalid_grant", "Token has been expired or revoked.");
      case "gone":
        return googleError({ status: 410, reason: "fullSyncRequired" });
      case "malformed":
        if (fault.variant === "truncated") {
          return rawJsonResponse(
            endpoint === "token"
              ? '{"access_token":"ya29.a0Af'
              : '{"kind":"calendar#events","items":[{"id":',
          );
        }
        return jsonResponse(
          endpoint === "token"
            ? { access_token: 12345, expires_in: "soon", token_type: "Bearer" }
            : { kind: "calendar#events", etag: '"p0"', items: { id: "not-an-array" } },
        );
      case "status": {
        const headers: Record<string, string> = fault.retryAfter
          ? { "retry-after": fault.retryAfter }
          : {};
        if (fault.body !== undefined) return jsonResponse(fault.body, fault.status, headers);
        if (endpoint === "token") {
          const error = fault.status >= 500 ? "temporarily_unavailable" : "invalid_request";
          return jsonResponse(
            { error, error_description: `Fake fault ${fault.status}` },
            fault.status,
            headers,
          );
        }
        const reason = fault.reason ?? DEFAULT_REASON[fault.status] ??
          (fault.status >= 500 ? "backendError" : "badRequest");
        return googleError({ status: fault.status, reason }, headers);
      }
    }
  }

  async function token(request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const client = readClientCredentials(form, request.headers.get("authorization"));
    if (options.clientId !== undefined && client.clientId !== options.clientId) {
      return oauthError(401, "invalid_client", "The OAuth client was not found.");
    }
    if (options.clientSecret !== undefined && client.clientSecret !== options.clientSecret) {
      return oauthError(401, "invalid_client", "Unauthorized");
    }
    const grantType = form.get("grant_type");
    if (grantType === null) {
      return oauthError(400, "invalid_request", "Missing required parameter: grant_type");
    }
    if (grantType === "authorization_code") return exchangeCode(form, client.clientId);
    if (grantType !== "refresh_token") {
      return oauthError(400, "unsupported_grant_type", `Invalid grant_type: ${grantType}`);
    }
    const refreshToken = form.get("refresh_token");
    if (!refreshToken) {
      return oauthError(400, "invalid_request", "Missing required parameter: refresh_token");
    }
    if (tokens.refreshTokenState(refreshToken) !== "valid") {
      return oauthError(400, "invalid_grant", "Token has been expired or revoked.");
    }
    // Google does not rotate refresh tokens on refresh (§1.6).
    const accessToken = tokens.issueAccessToken(ttl);
    const owner = consent.ownerOf(refreshToken);
    if (owner) consent.bind(accessToken, owner.subject);
    const now = Math.floor(Date.now() / 1000);
    // Google returns an id token on refresh when the grant included openid (consent-issued here).
    const idToken = owner && client.clientId
      ? {
        id_token: consent.idToken({
          iss: host.origin,
          aud: client.clientId,
          sub: owner.subject,
          email: owner.email,
          iat: now,
          exp: now + 3600,
        }),
      }
      : {};
    return jsonResponse(
      {
        access_token: accessToken,
        expires_in: ttl,
        scope: SCOPE,
        token_type: "Bearer",
        ...idToken,
      },
      200,
      { "cache-control": "no-cache, no-store, max-age=0, must-revalidate", pragma: "no-cache" },
    );
  }

  /** The authorization-code grant (with PKCE): tokens plus an id token for `openid` scopes. */
  function exchangeCode(form: URLSearchParams, clientId: string | undefined): Response {
    const result = consent.exchangeCode(form, clientId);
    if (!result.ok) return oauthError(400, result.error, result.description);
    const issued = consent.issueTokens(result.user, ttl);
    const now = Math.floor(Date.now() / 1000);
    const body: Record<string, unknown> = {
      access_token: issued.accessToken,
      expires_in: ttl,
      refresh_token: issued.refreshToken,
      scope: result.scope,
      token_type: "Bearer",
    };
    if (result.scope.split(" ").includes("openid")) {
      body.id_token = consent.idToken({
        iss: host.origin,
        azp: result.clientId,
        aud: result.clientId,
        sub: result.user.subject,
        email: result.user.email,
        email_verified: true,
        iat: now,
        exp: now + 3600,
      });
    }
    return jsonResponse(body, 200, { "cache-control": "no-store", pragma: "no-cache" });
  }

  /** calendarList.list for the bearer's user, paged by maxResults/pageToken. */
  function calendarList(request: Request, url: URL): Response {
    if (tokens.checkBearer(request.headers.get("authorization")) !== "valid") {
      return googleError({ status: 401, reason: "authError" });
    }
    const user = consent.bearerUser(request);
    const entries = (user?.calendars ?? []).map((entry) => ({
      kind: "calendar#calendarListEntry",
      etag: `"${entry.id.length}"`,
      id: entry.id,
      summary: entry.name,
      accessRole: entry.accessRole ?? "owner",
      ...(entry.primary ? { primary: true } : {}),
    }));
    const max = Math.min(Number(url.searchParams.get("maxResults") ?? 100) || 100, 250);
    const page = calendarListPage(entries, url.searchParams.get("pageToken"), max);
    if (page === null) return googleError({ status: 400, reason: "invalid" });
    return jsonResponse({
      kind: "calendar#calendarList",
      etag: '"p33"',
      items: page.items,
      ...(page.next ? { nextPageToken: page.next } : { nextSyncToken: "CPDAlvWDx70CEPDAlvWDx70C" }),
    });
  }

  /** "primary" means the bearer's own calendar; another user's calendar is not found. */
  function resolveCalendar(request: Request, calendarId: string): string | null {
    const user = consent.bearerUser(request);
    if (!user) return calendarId;
    if (calendarId === "primary") return user.email;
    const owner = ownedBy.get(calendarId);
    return owner !== undefined && owner !== user.subject ? null : calendarId;
  }
  const ownedBy = new Map<string, string>();

  async function readJson(request: Request): Promise<unknown> {
    try {
      return await request.json();
    } catch {
      return undefined;
    }
  }

  async function handle(request: Request, url: URL): Promise<Response> {
    const path = url.pathname;
    if (path === "/o/oauth2/v2/auth" && request.method === "GET") {
      return consent.authorize(url, options.clientId);
    }
    if (path === "/calendar/v3/users/me/calendarList" && request.method === "GET") {
      return calendarList(request, url);
    }
    if (path === "/token" && request.method === "POST") {
      const fault = host.takeFault("token", (f) => f.kind !== "gone");
      return fault ? faultResponse(fault, "token") : await token(request);
    }
    const list = path.match(/^\/calendar\/v3\/calendars\/([^/]+)\/events$/);
    const watch = path.match(/^\/calendar\/v3\/calendars\/([^/]+)\/events\/watch$/);
    const stop = path === "/calendar/v3/channels/stop";
    const single = request.method === "GET"
      ? path.match(/^\/calendar\/v3\/calendars\/([^/]+)\/events\/([^/]+)$/)
      : null;
    if (single && single[2] !== "watch") {
      const owned = resolveCalendar(request, decodeURIComponent(single[1]));
      if (owned === null) return googleError({ status: 404, reason: "notFound" });
      return getEvent(request, owned, decodeURIComponent(single[2]));
    }
    const isList = list !== null && request.method === "GET";
    const isPush = request.method === "POST" && (watch !== null || stop);
    if (!isList && !isPush) return googleError({ status: 404, reason: "notFound" });
    const hasCursor = url.searchParams.has("syncToken") || url.searchParams.has("pageToken");
    const target = list?.[1] ?? watch?.[1];
    const fault = host.takeFault(isList ? "api" : "push", (f) => {
      if (f.kind === "invalid_grant") return false;
      if (f.kind === "gone") return isList && hasCursor;
      return f.kind !== "malformed" || isList;
    }, target === undefined ? undefined : decodeURIComponent(target));
    if (fault) return await faultResponse(fault, isList ? "api" : "push");
    if (tokens.checkBearer(request.headers.get("authorization")) !== "valid") {
      return googleError({ status: 401, reason: "authError" }, {
        "www-authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"',
      });
    }
    if (stop) {
      const result = push.stop(await readJson(request));
      return "error" in result ? googleError(result.error) : new Response(null, { status: 204 });
    }
    const calendarId = resolveCalendar(request, decodeURIComponent((list ?? watch)?.[1] ?? ""));
    const found = calendarId === null ? undefined : calendars.get(calendarId);
    if (!found) return googleError({ status: 404, reason: "notFound" });
    if (watch) {
      if (!found.pushSupported) {
        return googleError({ status: 400, reason: "pushNotSupportedForRequestedResource" });
      }
      const result = push.watch(calendarId!, await readJson(request));
      return "error" in result ? googleError(result.error) : jsonResponse(result.channel);
    }
    const result = listGoogleEvents(found, url.searchParams, ceiling);
    return "error" in result ? googleError(result.error) : jsonResponse(result.body);
  }

  /** events.get: one event (a series master, usually); 404 once deleted. */
  async function getEvent(request: Request, calendarId: string, id: string): Promise<Response> {
    const fault = host.takeFault("api", (f) => f.kind !== "invalid_grant" && f.kind !== "gone");
    if (fault) return await faultResponse(fault, "api");
    if (tokens.checkBearer(request.headers.get("authorization")) !== "valid") {
      return googleError({ status: 401, reason: "authError" });
    }
    const stored = calendars.get(calendarId)?.events.get(id);
    if (!stored || stored.deleted) return googleError({ status: 404, reason: "notFound" });
    return jsonResponse(structuredClone(stored.event));
  }

  const host = startFakeHost(handle, { port: options.port });
  host.onClose(() => deliverer.close());
  const changed = (calendarId: string) => {
    if (autoDeliver) push.notify(calendarId, "exists");
  };

  return {
    ...host.controls,
    baseUrl: `${host.origin}/calendar/v3`,
    tokenUrl: `${host.origin}/token`,
    authUrl: `${host.origin}/o/oauth2/v2/auth`,
    deliveries: push.deliveries,
    addUser(input) {
      const user: FakeUser = {
        subject: input.subject,
        email: input.email,
        calendars: input.calendars ??
          [{ id: input.email, name: input.email, primary: true, accessRole: "owner" }],
      };
      consent.addUser(user);
      for (const entry of user.calendars) {
        ownedBy.set(entry.id, user.subject);
        calendar(entry.id);
      }
      return user;
    },
    consentAs: (subject) => consent.consentAs(subject),
    issueRefreshTokenFor(subject) {
      const user = consent.user(subject);
      if (!user) throw new Error(`No fake Google user "${subject}"`);
      return consent.issueTokens(user, ttl).refreshToken;
    },
    refreshTokensOf: (subject) =>
      tokens.currentRefreshTokens().filter((t) => consent.ownerOf(t)?.subject === subject),
    addRefreshToken: (refreshToken) => tokens.addRefreshToken(refreshToken),
    revokeRefreshToken: (refreshToken) => tokens.revokeRefreshToken(refreshToken),
    expireAccessTokens: () => tokens.expireAccessTokens(),
    issueAccessToken: () => tokens.issueAccessToken(ttl),
    tokenRequests: () => host.controls.countRequests((r) => r.path === "/token"),
    addCalendar(calendarId, calendarOptions = {}) {
      if (!calendars.has(calendarId)) {
        calendars.set(calendarId, createGoogleCalendar(calendarId, calendarOptions));
      }
    },
    setPushSupported(calendarId, supported) {
      calendar(calendarId).pushSupported = supported;
    },
    putEvent(calendarId, input = {}, putOptions = {}) {
      const event = putGoogleEvent(calendar(calendarId), input);
      if (putOptions.notify !== false) changed(calendarId);
      return event;
    },
    deleteEvent(calendarId, id) {
      const deleted = calendars.has(calendarId) && deleteGoogleEvent(calendar(calendarId), id);
      if (deleted) changed(calendarId);
      return deleted;
    },
    liveEvents: (calendarId) =>
      calendars.has(calendarId) ? liveGoogleEvents(calendar(calendarId)) : [],
    calendarView: (calendarId, from, to) =>
      calendars.has(calendarId)
        ? googleCalendarView(calendar(calendarId), Date.parse(from), Date.parse(to))
        : [],
    seedEvents(calendarId, count, seedOptions = {}) {
      seedGoogleEvents(calendar(calendarId), count, seedOptions.bytesEach);
    },
    invalidateSyncTokens(calendarId) {
      const targets = calendarId === undefined ? [...calendars.values()] : [calendar(calendarId)];
      for (const target of targets) target.epoch++;
    },
    channels: () => push.channels(),
    notify: (calendarId, state) => push.notify(calendarId, state),
    flushDeliveries: () => deliverer.flush(),
  };
}
