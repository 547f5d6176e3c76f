import { insertConnection } from "../../src/storage/connections.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import { createApp } from "../../src/http/app.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { mountWebhooks } from "../../src/webhooks/routes.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { createPrng } from "../../drills/chaos/prng.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { serveApp } from "../support/serve_app.ts";

const SEED = Number(Deno.env.get("WEBHOOK_FUZZ_SEED") ?? 20_251_125);
const REQUESTS = 500;
const SECRET = "Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz0Xc2Vb4Nm6Qp";

/** A seeded sequence of floats in [0, 1) (the chaos soak's PRNG), so a seed replays a run. */
function prng(seed: number): () => number {
  const sequence = createPrng(seed);
  return () => sequence.next();
}

Deno.test("random deliveries never get a 5xx and never crash the server", async () => {
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const chance = (p: number) => random() < p;
  const int = (max: number) => Math.floor(random() * max);

  const db = await createMigratedDatabase("webhook_fuzz");
  const provider = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  const graph = await insertProvider(db.sql, { kind: "microsoft", name: "m", allowlisted: true });
  const { id: googleConnection } = await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: "primary",
    refreshToken: "r",
    accountLabel: null,
  });
  const { id: graphConnection } = await insertConnection(db.sql, {
    providerId: graph.id,
    externalCalendarId: "primary",
    refreshToken: "r",
    accountLabel: null,
  });
  const channelId = crypto.randomUUID();
  const subscriptionId = crypto.randomUUID();
  await insertChannel(db.sql, {
    connectionId: googleConnection,
    provider: "google",
    channelId,
    secret: SECRET,
  });
  await insertChannel(db.sql, {
    connectionId: graphConnection,
    provider: "microsoft",
    channelId: subscriptionId,
    secret: SECRET,
  });

  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 65_536,
    routes: (app) => mountWebhooks(app, { sql: () => db.sql, metrics, deadlineMs: 5_000 }),
  });
  const server = await serveApp(app);

  const printable = (length: number) =>
    Array.from({ length }, () => String.fromCharCode(32 + int(95))).join("");
  const text = () =>
    pick([
      "",
      printable(int(40)),
      printable(int(3_000)),
      "\u0000\u0001\ud800\uffff",
      "%E0%A4%A",
      "%",
      "😀".repeat(int(10)),
      channelId,
      subscriptionId,
      SECRET,
      String(int(1e9)),
      "-1",
      "1e309",
      "99999999999999999999999",
    ]);
  const headerValue = () =>
    pick([
      printable(int(30)),
      printable(int(9_000)),
      channelId,
      SECRET,
      "",
      "sync",
      "exists",
      "not_exists",
      String(int(1e6)),
      "0",
    ]);
  // Sometimes encoded, sometimes raw (invalid percent escapes included).
  const queryText = () => {
    const value = text();
    if (chance(0.3)) return value.replace(/[^\x21-\x7e]|#/g, "");
    try {
      return encodeURIComponent(value).slice(0, 3_000);
    } catch {
      return "%ED%A0%80"; // A lone surrogate cannot be encoded; send its bytes instead.
    }
  };
  const anyJson = (depth: number): unknown => {
    if (depth > 4) return text();
    switch (int(8)) {
      case 0:
        return null;
      case 1:
        return random() * 1e6 - 5e5;
      case 2:
        return chance(0.5);
      case 3:
        return Array.from({ length: int(5) }, () => anyJson(depth + 1));
      case 4:
        return Object.fromEntries(
          Array.from(
            { length: int(6) },
            () => [
              pick([
                "value",
                "subscriptionId",
                "clientState",
                "changeType",
                "resource",
                "resourceData",
                "lifecycleEvent",
                text(),
              ]),
              anyJson(depth + 1),
            ],
          ),
        );
      default:
        return text();
    }
  };
  const realItem = () => ({
    subscriptionId: chance(0.7) ? subscriptionId : text(),
    subscriptionExpirationDateTime: "2026-03-19T22:11:09.952Z",
    changeType: pick(["created", "updated", "deleted", text()]),
    resource: `Users/x/Events/${int(50)}`,
    resourceData: { "@odata.etag": `W/"${int(20)}"`, id: String(int(50)) },
    clientState: chance(0.6) ? SECRET : text(),
    ...(chance(0.2)
      ? {
        lifecycleEvent: pick(["missed", "reauthorizationRequired", "subscriptionRemoved", text()]),
      }
      : {}),
  });
  const mutate = (item: Record<string, unknown>) => {
    if (chance(0.5)) item[pick(Object.keys(item))] = anyJson(2);
    return item;
  };
  const body = (): string | undefined => {
    switch (int(7)) {
      case 0:
        return undefined;
      case 1:
        return "";
      case 2:
        return text();
      case 3:
        return JSON.stringify(anyJson(0));
      case 4:
        return "[".repeat(50_000);
      case 5:
        return JSON.stringify({
          value: Array.from({ length: int(5) + 1 }, () => mutate(realItem())),
        });
      default:
        return JSON.stringify({ value: anyJson(1) });
    }
  };
  const googleNames = [
    "x-goog-channel-id",
    "x-goog-channel-token",
    "x-goog-message-number",
    "x-goog-resource-id",
    "x-goog-resource-uri",
    "x-goog-resource-state",
  ];

  const statuses = new Map<number, number>();
  try {
    for (let i = 0; i < REQUESTS; i += 10) {
      await Promise.all(Array.from({ length: 10 }, async () => {
        const google = chance(0.5);
        const method = chance(0.8)
          ? "POST"
          : pick(["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]);
        const headers = new Headers();
        if (chance(0.8)) {
          headers.set(
            "content-type",
            pick([
              "application/json",
              "application/json; charset=utf-8",
              "application/json; utf-8",
              "application/json",
              "application/json; charset=utf-8",
              "text/plain",
              "application/xml",
              "multipart/form-data",
              printable(20),
            ]),
          );
        }
        for (const name of googleNames) if (chance(0.8)) headers.set(name, headerValue());
        let path = google ? "/webhooks/google" : "/webhooks/microsoft";
        if (!google && chance(0.15)) path += `?validationToken=${queryText()}`;
        if (chance(0.05)) path += `?${printable(30).replace(/[#\s]/g, "")}`;
        const payload = method === "GET" || method === "HEAD" ? undefined : body();
        let status: number;
        try {
          const response = await fetch(server.url + path, { method, headers, body: payload });
          await response.arrayBuffer();
          status = response.status;
        } catch (error) {
          // Only the client may refuse to send something (e.g. a header it deems invalid).
          assert(error instanceof TypeError, `unexpected client error ${error}`);
          return;
        }
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        assert(status < 500, `${method} ${path.slice(0, 80)} answered ${status} (seed ${SEED})`);
      }));
    }
    const alive = await fetch(`${server.url}/healthz`);
    assertEquals(alive.status, 200);
    await alive.body?.cancel();
    const valid = await fetch(`${server.url}/webhooks/google`, {
      method: "POST",
      headers: {
        "content-type": "application/json; utf-8",
        "x-goog-channel-id": channelId,
        "x-goog-channel-token": SECRET,
        "x-goog-message-number": "123456789",
        "x-goog-resource-id": "r",
        "x-goog-resource-uri": "u",
        "x-goog-resource-state": "exists",
      },
      body: "",
    });
    assertEquals(valid.status, 200);
    await valid.body?.cancel();
    assert(statuses.size > 4, `too little variety: ${JSON.stringify([...statuses])}`);
  } finally {
    await server.close();
    await db.close();
  }
});
