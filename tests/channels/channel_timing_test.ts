import { generateChannelSecret } from "../../src/channels/channel_secret.ts";
import { parseExpiry, renewalTime } from "../../src/channels/channel_timing.ts";
import { webhookAddress } from "../../src/channels/google_channels.ts";
import { graphSubscriptionResource } from "../../src/channels/graph_subscriptions.ts";
import { assert, assertEquals } from "../support/assert.ts";

const HOUR = 3_600_000;

Deno.test("renewalTime() renews a quarter of the remaining life early", () => {
  assertEquals(renewalTime(4_000, 0), 3_000);
});

Deno.test("renewalTime() renews at most a day early", () => {
  assertEquals(renewalTime(7 * 24 * HOUR, 0), 6 * 24 * HOUR);
});

Deno.test("renewalTime() of an expired channel is its expiry", () => {
  assertEquals(renewalTime(1_000, 5_000), 1_000);
});

Deno.test("parseExpiry() reads Google's int64 strings and Graph's 7-digit fractions", () => {
  assertEquals(parseExpiry("1426325213000"), 1_426_325_213_000);
  assertEquals(parseExpiry(1_426_325_213_000), 1_426_325_213_000);
  assertEquals(
    parseExpiry("2024-03-20T11:00:00.0000000Z"),
    Date.parse("2024-03-20T11:00:00Z"),
  );
  assertEquals(parseExpiry("2016-03-19T22:11:09.952Z"), Date.parse("2016-03-19T22:11:09.952Z"));
  assertEquals(parseExpiry("soon"), null);
  assertEquals(parseExpiry(undefined), null);
});

Deno.test("graphSubscriptionResource() uses me/events for the default calendar", () => {
  assertEquals(graphSubscriptionResource("primary"), "me/events");
  assertEquals(graphSubscriptionResource("AAMk/x="), "me/calendars/AAMk%2Fx%3D/events");
});

Deno.test("webhookAddress() keeps a path prefix and drops a trailing slash", () => {
  assertEquals(
    webhookAddress("https://h/calsync/", "/webhooks/google"),
    "https://h/calsync/webhooks/google",
  );
  assertEquals(webhookAddress("https://h", "/webhooks/microsoft"), "https://h/webhooks/microsoft");
});

Deno.test("generateChannelSecret() is 43 base64url characters, fresh every time", () => {
  const a = generateChannelSecret();
  assert(/^[A-Za-z0-9_-]{43}$/.test(a), a);
  assert(a !== generateChannelSecret());
});
