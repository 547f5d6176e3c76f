/**
 * Malformed requests over raw TCP: truncated and invalid chunked bodies, wrong Content-Length,
 * pipelined junk, broken heads. Every answer is a 4xx problem+json (or a 2xx for what was valid),
 * never a 5xx, and nothing is logged above warning.
 */
import { createApp } from "../../src/http/app.ts";
import { startHttpServer } from "../../src/http/server.ts";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { insertChannel } from "../../src/storage/webhook_channels.ts";
import { mountWebhooks, WEBHOOK_BODY_LIMITS } from "../../src/webhooks/routes.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { createPrng } from "../../drills/chaos/prng.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { rawClient } from "../support/raw_http.ts";

const SEED = Number(Deno.env.get("HTTP_FUZZ_SEED") ?? 20_260_518);
const CASES = 400;
const SECRET = "Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz0Xc2Vb4Nm6QpZx8";

/** A seeded sequence of floats in [0, 1) (the chaos soak's PRNG), so a seed replays a run. */
function prng(seed: number): () => number {
  const sequence = createPrng(seed);
  return () => sequence.next();
}

/** One answer parsed from raw bytes: status, content type, and whether the body is JSON. */
type Answer = { status: number; contentType: string; body: string };

function parseAnswers(text: string): Answer[] {
  const answers: Answer[] = [];
  let rest = text;
  while (rest.startsWith("HTTP/1.1 ")) {
    const end = rest.indexOf("\r\n\r\n");
    if (end < 0) break;
    const head = rest.slice(0, end);
    const status = Number(head.slice(9, 12));
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    const contentType = /\r\ncontent-type: ([^\r]*)/i.exec(head)?.[1] ?? "";
    answers.push({ status, contentType, body: rest.slice(end + 4, end + 4 + length) });
    rest = rest.slice(end + 4 + length);
  }
  if (rest.length > 0) answers.push({ status: 0, contentType: "", body: rest.slice(0, 200) });
  return answers;
}

Deno.test("malformed requests over raw TCP get a 4xx problem+json, never a 5xx or an error log", async () => {
  const random = prng(SEED);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const int = (max: number) => Math.floor(random() * max);

  const db = await createMigratedDatabase("http_malformed");
  const provider = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  const { id: connectionId } = await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: "primary",
    refreshToken: "r",
    accountLabel: null,
  });
  const channelId = crypto.randomUUID();
  await insertChannel(db.sql, { connectionId, provider: "google", channelId, secret: SECRET });

  const lines: Record<string, unknown>[] = [];
  await setupLogging("debug", (line) => lines.push(JSON.parse(line)));
  const metrics = createMetrics();
  const bodyLimitFor = (path: string) => Math.min(65_536, WEBHOOK_BODY_LIMITS[path] ?? Infinity);
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 65_536,
    bodyLimitFor,
    routes: (app) => mountWebhooks(app, { sql: () => db.sql, metrics, deadlineMs: 5_000 }),
  });
  const server = await startHttpServer(app, {
    hostname: "127.0.0.1",
    port: 0,
    metrics,
    limits: { bodyLimit: bodyLimitFor, headerTimeoutMs: 2_000, bodyTimeoutMs: 2_000 },
  });

  const google = () =>
    "POST /webhooks/google HTTP/1.1\r\nHost: x\r\n" +
    `X-Goog-Channel-ID: ${channelId}\r\nX-Goog-Channel-Token: ${SECRET}\r\n` +
    `X-Goog-Message-Number: ${1 + int(1e6)}\r\nX-Goog-Resource-State: exists\r\n` +
    "X-Goog-Resource-ID: r\r\nX-Goog-Resource-URI: https://www.googleapis.com/calendar/v3/x\r\n";
  const graph =
    "POST /webhooks/microsoft HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n";
  const json = '{"value":[{"subscriptionId":"s","changeType":"updated","resource":"r"}]}';
  const junk = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(int(256))).join("");
  const cases: (() => string)[] = [
    // Truncated chunked bodies: a size promising more than is sent.
    () => `${graph}Transfer-Encoding: chunked\r\n\r\n${(json.length + 10).toString(16)}\r\n${json}`,
    () => `${pick([graph, google()])}Transfer-Encoding: chunked\r\n\r\n5\r\nab`,
    () => `${graph}Transfer-Encoding: chunked\r\n\r\n`,
    // Invalid chunked framing.
    () =>
      `${graph}Transfer-Encoding: chunked\r\n\r\n${
        pick(["zz", "-1", "", " ", "1 1"])
      }\r\nx\r\n0\r\n\r\n`,
    () => `${graph}Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n`,
    () => `${graph}Transfer-Encoding: chunked\r\n\r\n2\nab\n0\n\n`,
    () => `${google()}Transfer-Encoding: chunked\r\n\r\n${"f".repeat(1 + int(12))}\r\n`,
    // Wrong Content-Length: longer than the body, shorter (the rest becomes junk), or malformed.
    () => `${graph}Content-Length: ${json.length + 1 + int(100)}\r\n\r\n${json}`,
    () => `${graph}Content-Length: ${int(json.length)}\r\n\r\n${json}`,
    () =>
      `${graph}Content-Length: ${
        pick(["-1", "1e3", "abc", "1, 2", " ", "99999999999999999"])
      }\r\n\r\n${json}`,
    () => `${graph}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`,
    () => `${graph}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    () => `${graph}Transfer-Encoding: ${pick(["gzip", "chunked, gzip", "identity", "x"])}\r\n\r\n`,
    // Pipelined junk after a valid request.
    () => `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${junk(1 + int(200))}`,
    () => `${google()}\r\n${junk(int(50))}\r\n\r\n`,
    () => `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\n${junk(20)}\r\n\r\n`,
    // Broken heads.
    () => junk(1 + int(400)),
    () =>
      `${pick(["GET", "POST", "G T", "", "\u0000"])} ${pick(["/", "*", "x", "/a b", "//"])} ${
        pick(["HTTP/1.1", "HTTP/9", "http/1.1", ""])
      }\r\n\r\n`,
    () => `GET / HTTP/1.1\r\nX-A: ${junk(int(30))}\r\n\r\n`,
    () => `GET / HTTP/1.1\r\n folded: x\r\n\r\n`,
    () => `GET / HTTP/1.1\r\nHost: ${pick(["a b", "a/b", "%", "[::1", "a:b:c"])}\r\n\r\n`,
    () => `GET / HTTP/1.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    () => `${google()}Content-Length: 5000\r\n\r\n${"a".repeat(int(5000))}`,
    () =>
      `POST /webhooks/microsoft HTTP/1.0\r\ncontent-type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
  ];

  const statuses = new Map<number, number>();
  const problems: string[] = [];
  try {
    for (let i = 0; i < CASES; i++) {
      const wire = pick(cases)();
      const client = await rawClient(server.port);
      let text = "";
      try {
        await client.send(Uint8Array.from(wire, (c) => c.charCodeAt(0) & 0xff)).catch(() => {});
        // Half-closing ends the request: a truncated body is seen at once, not at a deadline.
        await client.conn.closeWrite().catch(() => {});
        text = await client.readToEnd();
      } finally {
        client.close();
      }
      for (const answer of parseAnswers(text)) {
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status < 200 || answer.status >= 500) {
          problems.push(`${answer.status} for ${JSON.stringify(wire.slice(0, 120))}`);
        } else if (answer.status >= 400) {
          if (answer.contentType !== "application/problem+json") {
            problems.push(`${answer.status} as ${answer.contentType}`);
          } else if (typeof JSON.parse(answer.body).error !== "string") {
            problems.push(`${answer.status} without a problem type: ${answer.body}`);
          }
        }
      }
    }
  } finally {
    await server.shutdown();
    await teardownLogging();
    await db.close();
  }
  assertEquals(problems.slice(0, 10), [], `statuses: ${JSON.stringify([...statuses])}`);
  const loud = lines.filter((line) => line.level === "error" || line.level === "fatal");
  assertEquals(loud.map((line) => line.message), []);
  const { values } = await metrics.httpRequests.get();
  assertEquals(values.filter((v) => v.labels.status === "5xx").length, 0);
  // The campaign reached both the server's own refusals and the app.
  assert((statuses.get(400) ?? 0) > 50, JSON.stringify([...statuses]));
  assert((statuses.get(200) ?? 0) > 10, JSON.stringify([...statuses]));
});
