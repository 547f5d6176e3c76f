import {
  googleDedupeKey,
  graphChangeDedupeKey,
  graphLifecycleDedupeKey,
} from "../../src/webhooks/notification_keys.ts";
import { parseGoogleNotification } from "../../src/webhooks/google_notification.ts";
import { parseGraphNotifications } from "../../src/webhooks/graph_notification.ts";
import { secretsEqual } from "../../src/crypto/secret_compare.ts";
import { assert, assertEquals } from "../support/assert.ts";

const identity = {
  subscriptionId: "7f105c7d-2dc5-4530-97cd-4e7ae6534c07",
  changeType: "updated",
  resource: "Users/u/Events/e1",
  resourceDataId: "e1",
  etag: 'W/"v1"',
  notificationId: null,
};

Deno.test("googleDedupeKey() is the channel id plus the message number", () => {
  assertEquals(googleDedupeKey("4ba78bf0-6a47", "10"), "google:4ba78bf0-6a47:10");
});

Deno.test("graphChangeDedupeKey() is equal for a retry and distinct for another change", async () => {
  const key = await graphChangeDedupeKey(identity);
  assert(/^microsoft:[0-9a-f]{64}$/.test(key), key);
  assertEquals(await graphChangeDedupeKey({ ...identity }), key);
  assert(await graphChangeDedupeKey({ ...identity, etag: 'W/"v2"' }) !== key);
  assert(await graphChangeDedupeKey({ ...identity, changeType: "deleted" }) !== key);
  assert(await graphChangeDedupeKey({ ...identity, subscriptionId: "other" }) !== key);
  assert(await graphChangeDedupeKey({ ...identity, resourceDataId: "e2" }) !== key);
  // The notification id only matters when there is no etag to tell changes apart.
  assertEquals(await graphChangeDedupeKey({ ...identity, notificationId: "n1" }), key);
  const noEtag = { ...identity, etag: null };
  assert(
    await graphChangeDedupeKey({ ...noEtag, notificationId: "n1" }) !==
      await graphChangeDedupeKey({ ...noEtag, notificationId: "n2" }),
  );
});

Deno.test("graphChangeDedupeKey() keeps fields from running into each other", async () => {
  assert(
    await graphChangeDedupeKey({ ...identity, changeType: "up", resource: "dated" }) !==
      await graphChangeDedupeKey({ ...identity, changeType: "upd", resource: "ated" }),
  );
});

Deno.test("graphLifecycleDedupeKey() tells a new warning after renewal from a retry", async () => {
  const base = {
    subscriptionId: "s",
    lifecycleEvent: "reauthorizationRequired",
    subscriptionExpirationDateTime: "2026-01-01T00:00:00Z",
    notificationId: null,
  };
  assertEquals(await graphLifecycleDedupeKey(base), await graphLifecycleDedupeKey({ ...base }));
  assert(
    await graphLifecycleDedupeKey(base) !==
      await graphLifecycleDedupeKey({
        ...base,
        subscriptionExpirationDateTime: "2026-01-03T00:00:00Z",
      }),
  );
});

Deno.test("parseGoogleNotification() names every missing header", () => {
  const result = parseGoogleNotification(new Headers({ "x-goog-channel-id": "c" }));
  assertEquals(result, {
    ok: false,
    problem: {
      status: 400,
      error: "missing_header",
      message: "Missing required headers: x-goog-message-number, x-goog-resource-id, " +
        "x-goog-resource-uri, x-goog-resource-state",
    },
  });
});

Deno.test("parseGoogleNotification() reads the guide's example and normalises the number", () => {
  const result = parseGoogleNotification(
    new Headers({
      "x-goog-channel-id": "4ba78bf0-6a47-11e2-bcfd-0800200c9a66",
      "x-goog-channel-token": "398348u3tu83ut8uu38",
      "x-goog-resource-id": "ret08u3rv24htgh289g",
      "x-goog-resource-uri":
        "https://www.googleapis.com/calendar/v3/calendars/my_calendar@gmail.com/events",
      "x-goog-resource-state": "exists",
      "x-goog-message-number": "010",
    }),
  );
  assert(result.ok);
  assertEquals(result.value.messageNumber, "10");
  assertEquals(result.value.token, "398348u3tu83ut8uu38");
  assertEquals(result.value.state, "exists");
});

Deno.test("parseGoogleNotification() never echoes a header value", () => {
  const result = parseGoogleNotification(
    new Headers({
      "x-goog-channel-id": "c",
      "x-goog-channel-token": "s3cr3t".repeat(60),
      "x-goog-resource-id": "r",
      "x-goog-resource-uri": "u",
      "x-goog-resource-state": "exists",
      "x-goog-message-number": "1",
    }),
  );
  assert(!result.ok);
  assert(!result.problem.message.includes("s3cr3t"), result.problem.message);
  assert(result.problem.message.includes("x-goog-channel-token"), result.problem.message);
});

Deno.test("parseGraphNotifications() classifies changes, lifecycle events and bad items", () => {
  const result = parseGraphNotifications(JSON.stringify({
    value: [
      {
        subscriptionId: "s1",
        changeType: "created",
        resource: "Users/u/Events/e",
        resourceData: { id: "e", "@odata.etag": 'W/"1"' },
        clientState: "c",
      },
      { subscriptionId: "s1", lifecycleEvent: "missed", clientState: "c" },
      { subscriptionId: "s1", changeType: "created" },
      "not an object",
    ],
  }));
  assert(result.ok);
  assertEquals(result.items.map((item) => item.kind), [
    "change",
    "lifecycle",
    "invalid",
    "invalid",
  ]);
  const first = result.items[0];
  assert(first.kind === "change");
  assertEquals(first.identity.etag, 'W/"1"');
});

Deno.test("parseGraphNotifications() refuses what is not a collection", () => {
  for (const text of ["", "{", "[]", "{}", '{"value":[]}', '{"value":{}}', "null"]) {
    const result = parseGraphNotifications(text);
    assert(!result.ok, text);
    assertEquals(result.problem.status, 400);
  }
});

Deno.test("secretsEqual() accepts only the exact secret", () => {
  assert(secretsEqual("abc123", "abc123"));
  assert(!secretsEqual("abc123", "abc124"));
  assert(!secretsEqual("abc123", "abc12"));
  assert(!secretsEqual("abc123", "abc1234"));
  assert(!secretsEqual("abc123", ""));
  assert(!secretsEqual("abc123", "abc123abc123"));
});
