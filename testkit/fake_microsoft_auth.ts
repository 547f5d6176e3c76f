/**
 * @module Error bodies and the OAuth token endpoint of the fake Microsoft provider (§3.4, §3.6).
 */
import { jsonResponse } from "./fake_faults.ts";
import { randomToken, readClientCredentials, type TokenStore } from "./fake_tokens.ts";
import type { ConsentServer } from "./fake_consent.ts";

const SCOPE = "https://graph.microsoft.com/Calendars.Read https://graph.microsoft.com/User.Read";

/** Graph error code and message per status for injected faults (errors.md, throttling.md). */
export const GRAPH_STATUS_CODES: Record<number, [string, string]> = {
  400: ["BadRequest", "Bad request."],
  401: ["InvalidAuthenticationToken", "Access token validation failure."],
  403: ["ErrorAccessDenied", "Access is denied. Check credentials and try again."],
  404: ["ErrorItemNotFound", "The specified object was not found in the store."],
  429: ["TooManyRequests", "Please retry again later."],
  500: ["generalException", "An unspecified error has occurred."],
  503: [
    "serviceNotAvailable",
    "The service is temporarily unavailable. Try the request again after a delay.",
  ],
  504: ["UnknownError", ""],
};

/** Builds a Graph error response (`error.code`, `message`, `innerError`). */
export function graphError(
  request: Request,
  error: { status: number; code: string; message: string },
  headers: Record<string, string> = {},
): Response {
  const requestId = crypto.randomUUID();
  const innerError: Record<string, string> = {
    date: new Date().toISOString().slice(0, 19),
    "request-id": requestId,
    "client-request-id": request.headers.get("client-request-id") ?? requestId,
  };
  if (error.status === 429) {
    Object.assign(innerError, { code: "429", message: "Please retry after", status: "429" });
  }
  return jsonResponse(
    { error: { code: error.code, message: error.message, innerError } },
    error.status,
    { "request-id": requestId, ...headers },
  );
}

/** Builds an identity-platform OAuth error with AADSTS code, trace and correlation ids (§3.6). */
export function aadError(
  status: number,
  error: string,
  code: number,
  description: string,
): Response {
  const timestamp = new Date().toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  const traceId = crypto.randomUUID();
  const correlationId = crypto.randomUUID();
  return jsonResponse(
    {
      error,
      error_description:
        `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
    status,
    { "cache-control": "no-store, no-cache", pragma: "no-cache" },
  );
}

/** The AADSTS70008 invalid_grant answer for an expired or unknown refresh token. */
export function expiredGrant(): Response {
  return aadError(
    400,
    "invalid_grant",
    70008,
    "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
  );
}

/** Creates the identity platform refresh-token endpoint; refresh tokens rotate on every use. */
export function microsoftTokenEndpoint(
  tokens: TokenStore,
  options: {
    clientId?: string;
    clientSecret?: string;
    ttl: number;
    rotateStrict?: boolean;
    consent?: ConsentServer;
    /** The issuer's origin: id tokens say `{origin}/{tid}/v2.0`. */
    origin?: () => string;
  },
): (request: Request) => Promise<Response> {
  const ttl = options.ttl;
  return async function token(request: Request): Promise<Response> {
    const form = new URLSearchParams(await request.text());
    const client = readClientCredentials(form, request.headers.get("authorization"));
    if (options.clientId !== undefined && client.clientId !== options.clientId) {
      const description =
        `Application with identifier '${client.clientId}' was not found in the directory.`;
      return aadError(400, "unauthorized_client", 700016, description);
    }
    if (options.clientSecret !== undefined && client.clientSecret !== options.clientSecret) {
      return aadError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
      );
    }
    if (form.get("grant_type") === "authorization_code" && options.consent) {
      return exchangeCode(options.consent, form, client.clientId, {
        ttl,
        origin: options.origin?.() ?? "https://login.microsoftonline.com",
      });
    }
    if (form.get("grant_type") !== "refresh_token") {
      return aadError(
        400,
        "unsupported_grant_type",
        70003,
        "The app requested an unsupported grant type.",
      );
    }
    const refreshToken = form.get("refresh_token");
    if (!refreshToken) {
      return aadError(
        400,
        "invalid_request",
        900144,
        "The request body must contain the following parameter: 'refresh_token'.",
      );
    }
    const state = tokens.refreshTokenState(refreshToken);
    if (state === "revoked") {
      return aadError(
        400,
        "invalid_grant",
        50173,
        "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
      );
    }
    if (state === "unknown") return expiredGrant();
    // Every refresh hands out a new refresh token; strict mode also retires the old one (§3.6).
    const next = `0.AXEA${randomToken(48)}`;
    tokens.addRefreshToken(next);
    if (options.rotateStrict) tokens.forgetRefreshToken(refreshToken);
    const accessToken = tokens.issueAccessToken(ttl);
    const owner = options.consent?.ownerOf(refreshToken);
    if (owner) {
      options.consent!.bind(next, owner.subject);
      options.consent!.bind(accessToken, owner.subject);
    }
    return jsonResponse(
      {
        token_type: "Bearer",
        scope: form.get("scope") ?? SCOPE,
        expires_in: ttl,
        ext_expires_in: ttl,
        access_token: accessToken,
        refresh_token: next,
      },
      200,
      { "cache-control": "no-store, no-cache", pragma: "no-cache" },
    );
  };
}

/** Answers 401 InvalidAuthenticationToken unless the request carries a valid bearer token. */
export function graphUnauthorized(tokens: TokenStore, request: Request): Response | null {
  const check = tokens.checkBearer(request.headers.get("authorization"));
  if (check === "valid") return null;
  const message = check === "missing"
    ? "Access token is empty."
    : check === "expired"
    ? "Lifetime validation failed, the token is expired."
    : "Access token validation failure.";
  return graphError(request, { status: 401, code: "InvalidAuthenticationToken", message }, {
    "www-authenticate":
      'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"',
  });
}

/** The authorization-code grant with PKCE; `openid` adds an id token (oid, tid, email). */
function exchangeCode(
  consent: ConsentServer,
  form: URLSearchParams,
  clientId: string | undefined,
  options: { ttl: number; origin: string },
): Response {
  const result = consent.exchangeCode(form, clientId);
  if (!result.ok) {
    return result.description === "Invalid code verifier."
      ? aadError(
        400,
        "invalid_grant",
        50148,
        "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
      )
      : aadError(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed.");
  }
  const issued = consent.issueTokens(result.user, options.ttl);
  const tenant = result.user.tenant ?? "9188040d-6c67-4c5b-b112-36a304b66dad";
  const now = Math.floor(Date.now() / 1000);
  const body: Record<string, unknown> = {
    token_type: "Bearer",
    scope: result.scope,
    expires_in: options.ttl,
    ext_expires_in: options.ttl,
    access_token: issued.accessToken,
    refresh_token: issued.refreshToken,
  };
  if (result.scope.split(" ").includes("openid")) {
    body.id_token = consent.idToken({
      ver: "2.0",
      iss: `${options.origin}/${tenant}/v2.0`,
      aud: result.clientId,
      sub: `pairwise-${result.user.subject}`,
      oid: result.user.subject,
      tid: tenant,
      preferred_username: result.user.email,
      email: result.user.email,
      iat: now,
      nbf: now,
      exp: now + 3600,
    });
  }
  return jsonResponse(body, 200, { "cache-control": "no-store, no-cache", pragma: "no-cache" });
}
