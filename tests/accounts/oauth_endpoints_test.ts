import { assertEquals, assertRejects, assertThrows } from "../support/assert.ts";
import { loadConfig } from "../../src/config/config.ts";
import {
  authorizationUrl,
  microsoftTenantUrl,
  oauthEndpointsFromConfig,
} from "../../src/accounts/oauth_endpoints.ts";
import { codeChallenge, randomUrlToken } from "../../src/accounts/pkce.ts";
import { ConnectError } from "../../src/core/errors.ts";

Deno.test("codeChallenge() matches RFC 7636 appendix B and refuses a short verifier", async () => {
  assertEquals(
    await codeChallenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
  );
  assertEquals(randomUrlToken().length, 43);
  await assertRejects(() => codeChallenge("short"), RangeError);
});

Deno.test("MICROSOFT_TENANT replaces common in both Microsoft endpoints and pins a tenant id", () => {
  const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
  const endpoints = oauthEndpointsFromConfig(loadConfig({ MICROSOFT_TENANT: tenant }));
  assertEquals(
    endpoints.microsoft.authUrl,
    `https://login.microsoftonline.com/${tenant}/oauth2/v2.0/authorize`,
  );
  assertEquals(
    endpoints.microsoft.tokenUrl,
    `https://login.microsoftonline.com/${tenant}/oauth2/v2.0/token`,
  );
  assertEquals(endpoints.microsoft.tenantId, tenant);
  const common = oauthEndpointsFromConfig(loadConfig({}));
  assertEquals(common.microsoft.tenantId, null);
  assertEquals(common.google.issuerOrigin, "https://accounts.google.com");
  // A URL that has no `common` segment (a fake, a proxy) is left alone.
  assertEquals(
    microsoftTenantUrl("http://127.0.0.1:9/x/token", tenant),
    "http://127.0.0.1:9/x/token",
  );
});

Deno.test("authorizationUrl() asks Google for offline access and consent; needs a client id", () => {
  const endpoints = oauthEndpointsFromConfig(loadConfig({
    GOOGLE_CLIENT_ID: "cid",
    GOOGLE_CLIENT_SECRET: "cs",
  }));
  const request = {
    redirectUri: "https://calsync.example.com/connect/google/callback",
    state: "s".repeat(43),
    codeChallenge: "c".repeat(43),
    forceConsent: false,
    loginHint: "a@example.com",
  };
  const url = new URL(authorizationUrl(endpoints.google, request));
  assertEquals(url.origin + url.pathname, "https://accounts.google.com/o/oauth2/v2/auth");
  assertEquals(url.searchParams.get("access_type"), "offline");
  assertEquals(url.searchParams.get("prompt"), null);
  assertEquals(url.searchParams.get("login_hint"), "a@example.com");
  const consent = new URL(authorizationUrl(endpoints.google, { ...request, forceConsent: true }));
  assertEquals(consent.searchParams.get("prompt"), "consent");
  const error = assertThrows(() => authorizationUrl(endpoints.microsoft, request), ConnectError);
  assertEquals((error as ConnectError).reason, "not_configured");
});
