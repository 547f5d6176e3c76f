import { assertEquals, assertThrows } from "../support/assert.ts";
import { readIdToken } from "../../src/accounts/id_token.ts";
import { ConnectError } from "../../src/core/errors.ts";

const NOW = Date.parse("2026-12-02T12:00:00Z");

function jwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) =>
    btoa(JSON.stringify(value)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  return `${part({ alg: "RS256" })}.${part(claims)}.c2ln`;
}

const google = {
  kind: "google" as const,
  clientId: "client-1",
  issuerOrigin: "https://accounts.google.com",
  tenantId: null,
  nowMs: NOW,
};
const googleClaims = {
  iss: "https://accounts.google.com",
  aud: "client-1",
  sub: "1045",
  email: "a@example.com",
  exp: NOW / 1000 + 3600,
};

Deno.test("readIdToken() returns Google's sub and email, accepting both issuer spellings", () => {
  assertEquals(readIdToken(jwt(googleClaims), google), { subject: "1045", email: "a@example.com" });
  assertEquals(
    readIdToken(jwt({ ...googleClaims, iss: "accounts.google.com" }), google).subject,
    "1045",
  );
});

Deno.test("readIdToken() refuses another audience, another issuer, an expired token, garbage", () => {
  const refused = [
    jwt({ ...googleClaims, aud: "client-2" }),
    jwt({ ...googleClaims, iss: "https://evil.example" }),
    jwt({ ...googleClaims, exp: NOW / 1000 - 120 }),
    jwt({ ...googleClaims, sub: undefined }),
    "not-a-jwt",
    "a.!!!.c",
  ];
  for (const token of refused) {
    const error = assertThrows(() => readIdToken(token, google), ConnectError);
    assertEquals((error as ConnectError).reason, "id_token_invalid");
  }
});

Deno.test("readIdToken() makes Microsoft's subject tid/oid and checks iss and a pinned tenant", () => {
  const tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
  const microsoft = {
    kind: "microsoft" as const,
    clientId: "app",
    issuerOrigin: "https://login.microsoftonline.com",
    tenantId: null,
    nowMs: NOW,
  };
  const claims = {
    iss: `https://login.microsoftonline.com/${tid}/v2.0`,
    aud: "app",
    sub: "pairwise",
    oid: "oid-1",
    tid,
    preferred_username: "bob@contoso.com",
    exp: NOW / 1000 + 60,
  };
  assertEquals(readIdToken(jwt(claims), microsoft), {
    subject: `${tid}/oid-1`,
    email: "bob@contoso.com",
  });
  assertThrows(
    () =>
      readIdToken(
        jwt({ ...claims, iss: "https://login.microsoftonline.com/other/v2.0" }),
        microsoft,
      ),
    ConnectError,
  );
  assertThrows(
    () =>
      readIdToken(jwt(claims), { ...microsoft, tenantId: "00000000-0000-0000-0000-000000000000" }),
    ConnectError,
  );
});
