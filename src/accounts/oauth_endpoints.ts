/** @module Where each provider's consent happens, with which scopes, and how to ask for it. */
import type { Config } from "../config/config.ts";
import { ConnectError } from "../core/errors.ts";
import type { ProviderKind } from "../core/provider_kind.ts";

/** One provider's authorization server as the connect flow uses it. */
export type OAuthEndpoints = {
  kind: ProviderKind;
  authUrl: string;
  tokenUrl: string;
  clientId: string | null;
  clientSecret: string | null;
  scopes: readonly string[];
  /** Google: the id token's issuer. Microsoft: the origin before `/{tid}/v2.0`. */
  issuerOrigin: string;
  /** Microsoft: a tenant id every id token must carry (null: any tenant). */
  tenantId: string | null;
};

/** Read-only calendars plus `openid email`, so the code exchange says who consented. */
export const GOOGLE_SCOPES = [
  "openid",
  "email",
  "https://www.googleapis.com/auth/calendar.readonly",
] as const;

/** Refresh tokens (`offline_access`), read-only calendars, and who consented. */
export const MICROSOFT_SCOPES = ["offline_access", "Calendars.Read", "openid", "email"] as const;

const MULTI_TENANT = new Set(["common", "organizations", "consumers"]);
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A login.microsoftonline.com URL for `tenant`: its `/common/` segment replaced. */
export function microsoftTenantUrl(url: string, tenant: string): string {
  const parsed = new URL(url);
  const [first, ...rest] = parsed.pathname.split("/").filter(Boolean);
  if (first !== "common" || tenant === "common") return url;
  parsed.pathname = `/${[tenant, ...rest].join("/")}`;
  return parsed.toString();
}

/** Both providers' endpoints from the configuration. */
export function oauthEndpointsFromConfig(config: Config): Record<ProviderKind, OAuthEndpoints> {
  const tenant = config.MICROSOFT_TENANT;
  return {
    google: {
      kind: "google",
      authUrl: config.GOOGLE_AUTH_URL,
      tokenUrl: config.GOOGLE_TOKEN_URL,
      clientId: config.GOOGLE_CLIENT_ID ?? null,
      clientSecret: config.GOOGLE_CLIENT_SECRET ?? null,
      scopes: GOOGLE_SCOPES,
      issuerOrigin: new URL(config.GOOGLE_AUTH_URL).origin,
      tenantId: null,
    },
    microsoft: {
      kind: "microsoft",
      authUrl: microsoftTenantUrl(config.MICROSOFT_AUTH_URL, tenant),
      tokenUrl: microsoftTenantUrl(config.MICROSOFT_TOKEN_URL, tenant),
      clientId: config.MICROSOFT_CLIENT_ID ?? null,
      clientSecret: config.MICROSOFT_CLIENT_SECRET ?? null,
      scopes: MICROSOFT_SCOPES,
      issuerOrigin: new URL(config.MICROSOFT_AUTH_URL).origin,
      tenantId: !MULTI_TENANT.has(tenant) && GUID.test(tenant) ? tenant.toLowerCase() : null,
    },
  };
}

/** What one authorization request carries besides the endpoint. */
export type AuthorizationRequest = {
  redirectUri: string;
  state: string;
  codeChallenge: string;
  /** Ask for consent again, so Google hands out a refresh token (we hold none for this user). */
  forceConsent: boolean;
  loginHint: string | null;
};

/** The URL the user's browser is sent to (authorization code flow with PKCE S256). */
export function authorizationUrl(endpoints: OAuthEndpoints, request: AuthorizationRequest): string {
  if (endpoints.clientId === null) {
    throw new ConnectError(
      "not_configured",
      `Cannot start a ${endpoints.kind} connect flow: ${endpoints.kind.toUpperCase()}_CLIENT_ID is not set`,
    );
  }
  const url = new URL(endpoints.authUrl);
  const params: Record<string, string> = {
    client_id: endpoints.clientId,
    redirect_uri: request.redirectUri,
    response_type: "code",
    scope: endpoints.scopes.join(" "),
    state: request.state,
    code_challenge: request.codeChallenge,
    code_challenge_method: "S256",
  };
  if (endpoints.kind === "google") {
    // Offline access yields a refresh token; Google sends one only with a fresh consent.
    params.access_type = "offline";
    params.include_granted_scopes = "true";
    if (request.forceConsent) params.prompt = "consent";
  } else {
    params.response_mode = "query";
    if (request.forceConsent) params.prompt = "select_account";
  }
  if (request.loginHint) params.login_hint = request.loginHint;
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.toString();
}
