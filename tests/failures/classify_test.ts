import { assertEquals } from "../support/assert.ts";
import { classifyResponse, classifyThrown } from "../../src/failures/classify.ts";
import { parseRetryAfter } from "../../src/failures/retry_after.ts";
import { SyncFailure } from "../../src/failures/failure.ts";

const googleError = (code: number, reason: string) =>
  JSON.stringify({
    error: { errors: [{ domain: "usageLimits", reason, message: reason }], code, message: reason },
  });
const graphError = (code: string) =>
  JSON.stringify({ error: { code, message: code, innerError: { date: "2024-01-01T00:00:00" } } });

function kind(
  provider: "google" | "microsoft",
  status: number,
  body = "",
  retryAfter: string | null = null,
) {
  return classifyResponse({ provider, status, body, retryAfter }).kind;
}

Deno.test("classifyResponse() maps 5xx to provider_unavailable", () => {
  for (const status of [500, 502, 503, 504]) {
    assertEquals(
      kind("google", status, googleError(status, "backendError")),
      "provider_unavailable",
    );
    assertEquals(
      kind("microsoft", status, graphError("serviceNotAvailable")),
      "provider_unavailable",
    );
  }
});

Deno.test("classifyResponse() maps 429 and Google 403 rate limits to rate_limited", () => {
  assertEquals(kind("microsoft", 429, graphError("TooManyRequests"), "3"), "rate_limited");
  assertEquals(kind("google", 429, googleError(429, "rateLimitExceeded")), "rate_limited");
  assertEquals(kind("google", 403, googleError(403, "rateLimitExceeded")), "rate_limited");
  assertEquals(kind("google", 403, googleError(403, "userRateLimitExceeded")), "rate_limited");
  assertEquals(
    kind("google", 403, googleError(403, "forbiddenForNonOrganizer")),
    "provider_rejected",
  );
});

Deno.test("classifyResponse() maps 410 and Graph sync-state codes to cursor_expired", () => {
  assertEquals(kind("google", 410, googleError(410, "fullSyncRequired")), "cursor_expired");
  assertEquals(kind("microsoft", 410, graphError("syncStateNotFound")), "cursor_expired");
  assertEquals(kind("microsoft", 400, graphError("resyncRequired")), "cursor_expired");
});

Deno.test("classifyResponse() keeps the status, provider code and Retry-After", () => {
  const failure = classifyResponse({
    provider: "microsoft",
    status: 429,
    body: graphError("TooManyRequests"),
    retryAfter: "2.5",
  });
  assertEquals(
    { status: failure.status, code: failure.providerCode, retry: failure.retryAfterMs },
    { status: 429, code: "TooManyRequests", retry: 2_500 },
  );
});

Deno.test("classifyResponse() reads OAuth error bodies and tolerates garbage", () => {
  const oauth = classifyResponse({
    provider: "google",
    status: 400,
    body: '{"error":"invalid_grant","error_description":"Token has been expired or revoked."}',
    retryAfter: null,
  });
  assertEquals([oauth.kind, oauth.providerCode], ["provider_rejected", "invalid_grant"]);
  assertEquals(kind("google", 401, "<html>nope"), "auth");
  assertEquals(kind("google", 404, ""), "provider_rejected");
});

Deno.test("parseRetryAfter() reads seconds, fractions and HTTP dates", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  assertEquals(parseRetryAfter("7", now), 7_000);
  assertEquals(parseRetryAfter("0.25", now), 250);
  assertEquals(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now), 30_000);
  assertEquals(parseRetryAfter("Wed, 31 Dec 2025 00:00:00 GMT", now), 0);
  assertEquals(parseRetryAfter("soon", now), null);
  assertEquals(parseRetryAfter(null, now), null);
});

Deno.test("classifyThrown() recognises database and timeout errors", () => {
  const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
  assertEquals(classifyThrown(refused).kind, "database");
  const pg = Object.assign(new Error("canceling statement"), {
    name: "PostgresError",
    code: "57014",
  });
  assertEquals(classifyThrown(pg).kind, "database");
  assertEquals(classifyThrown(new DOMException("t", "TimeoutError")).kind, "timeout");
  const failure = new SyncFailure({ kind: "rate_limited", message: "x" });
  assertEquals(classifyThrown(failure), failure);
  assertEquals(classifyThrown("weird").kind, "internal");
});

Deno.test("classifyResponse() maps a deleted or unshared calendar to calendar_unavailable", () => {
  assertEquals(kind("google", 404, googleError(404, "notFound")), "calendar_unavailable");
  assertEquals(kind("google", 403, googleError(403, "forbidden")), "calendar_unavailable");
  assertEquals(kind("microsoft", 404, graphError("ErrorItemNotFound")), "calendar_unavailable");
  assertEquals(kind("microsoft", 403, graphError("ErrorAccessDenied")), "calendar_unavailable");
  assertEquals(kind("microsoft", 403, graphError("accessDenied")), "calendar_unavailable");
});

Deno.test("calendar_unavailable never swallows rate limits or other 4xx", () => {
  assertEquals(kind("google", 403, googleError(403, "rateLimitExceeded")), "rate_limited");
  assertEquals(kind("google", 403, googleError(403, "quotaExceeded")), "provider_rejected");
  assertEquals(kind("google", 404, googleError(404, "forbidden")), "provider_rejected");
  assertEquals(kind("microsoft", 404, graphError("BadRequest")), "provider_rejected");
});
