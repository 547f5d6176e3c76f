import { Hono } from "hono";
import { createMetrics, type Metrics } from "../../src/metrics/metrics.ts";
import { type ServerLimits, startHttpServer } from "../../src/http/server.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { rawClient, rawExchange, statusesOf } from "../support/raw_http.ts";

function testApp(): Hono {
  const app = new Hono();
  app.get("/ok", (c) => c.json({ ok: true }));
  app.post("/echo", async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
  // Slower than the short deadlines below: a request being handled is not the client's delay.
  app.get("/slow", async (c) => {
    await new Promise((resolve) => setTimeout(resolve, 400));
    return c.json({ slow: true });
  });
  app.post("/small", async (c) => c.json({ bytes: (await c.req.arrayBuffer()).byteLength }));
  return app;
}

async function serveTest(limits: Partial<ServerLimits> = {}) {
  const metrics = createMetrics();
  const server = await startHttpServer(testApp(), {
    hostname: "127.0.0.1",
    port: 0,
    metrics,
    limits: {
      bodyLimit: (path) => path === "/small" ? 4_096 : 1_048_576,
      ...limits,
    },
  });
  return {
    metrics,
    port: server.port,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

async function closedCount(metrics: Metrics, reason: string): Promise<number> {
  const { values } = await metrics.httpConnectionsClosed.get();
  return values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

/** Waits until `count` connections closed for `reason` (a refusal closes after its linger). */
async function closedFor(metrics: Metrics, reason: string, count = 1): Promise<number> {
  await waitFor(async () => (await closedCount(metrics, reason)) >= count, {
    what: `${count} connection(s) closed for ${reason}`,
  });
  return await closedCount(metrics, reason);
}

Deno.test("a connection that never sends a byte is closed after the idle timeout and counted", async () => {
  await using server = await serveTest({ idleTimeoutMs: 150 });
  const client = await rawClient(server.port);
  try {
    assertEquals(await client.readToEnd(), "");
    assertEquals(await closedCount(server.metrics, "idle_timeout"), 1);
  } finally {
    client.close();
  }
});

Deno.test("a request head that never ends is cut after the header timeout", async () => {
  await using server = await serveTest({ headerTimeoutMs: 150, idleTimeoutMs: 60_000 });
  const client = await rawClient(server.port);
  try {
    await client.send("GET /ok HTTP/1.1\r\nHost: x\r\nX-Slow: a");
    assertEquals(await client.readToEnd(), "");
    assertEquals(await closedCount(server.metrics, "header_timeout"), 1);
  } finally {
    client.close();
  }
});

Deno.test("a body that stalls is cut after the body timeout and its reserved bytes are released", async () => {
  await using server = await serveTest({ bodyTimeoutMs: 150 });
  const client = await rawClient(server.port);
  try {
    await client.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n12345");
    assertEquals(await client.readToEnd(), "");
    assertEquals(await closedCount(server.metrics, "body_timeout"), 1);
    const { values } = await server.metrics.httpBytesInFlight.get();
    assertEquals(values[0].value, 0);
  } finally {
    client.close();
  }
});

Deno.test("keep-alive and pipelined requests are answered in order on one connection", async () => {
  await using server = await serveTest();
  const answer = await rawExchange(
    server.port,
    "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n" +
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" +
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n" +
      "GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assertEquals(statusesOf(answer), [200, 200, 200, 200]);
  assert(answer.includes('{"bytes":3}'), answer);
  assert(answer.includes('{"bytes":2}'), answer);
  assertEquals(await closedCount(server.metrics, "completed"), 1);
});

Deno.test("a small route refuses a chunked body by its declared chunk size, before any data arrives", async () => {
  await using server = await serveTest();
  const client = await rawClient(server.port);
  try {
    // Only the size line is sent: the 413 must come without the server waiting for 8 KiB.
    await client.send(
      "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n",
    );
    const answer = await client.readToEnd();
    assertEquals(statusesOf(answer), [413]);
    assert(answer.includes("content-type: application/problem+json"), answer);
    assert(answer.includes('"error":"payload_too_large"'), answer);
    client.close();
    assertEquals(await closedFor(server.metrics, "body_too_large"), 1);
  } finally {
    client.close();
  }
});

Deno.test("a small route refuses an oversized Content-Length before reading the body", async () => {
  await using server = await serveTest();
  const answer = await rawExchange(
    server.port,
    "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
  );
  assertEquals(statusesOf(answer), [413]);
});

Deno.test("connections beyond the cap are turned away with a 503 and counted", async () => {
  await using server = await serveTest({ maxConnections: 2, idleTimeoutMs: 60_000 });
  const held = [await rawClient(server.port), await rawClient(server.port)];
  try {
    // A full answer on each proves both were accepted and are being served (kept alive).
    for (const client of held) {
      await client.send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
      await client.readUntil('{"ok":true}');
    }
    const third = await rawExchange(server.port, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    assertEquals(statusesOf(third), [503]);
    assertEquals(await closedCount(server.metrics, "connection_limit"), 1);
  } finally {
    for (const client of held) client.close();
  }
});

Deno.test("bodies beyond the bytes-in-flight budget are refused while the budget is held", async () => {
  await using server = await serveTest({ maxBytesInFlight: 65_536, bodyTimeoutMs: 60_000 });
  const holder = await rawClient(server.port);
  try {
    await holder.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\nab");
    await waitFor(async () => {
      const { values } = await server.metrics.httpBytesInFlight.get();
      return (values[0]?.value ?? 0) >= 60_000;
    }, { what: "the holder's reservation" });
    const refused = await rawExchange(
      server.port,
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n",
    );
    assertEquals(statusesOf(refused), [503]);
    assertEquals(await closedFor(server.metrics, "overloaded"), 1);
  } finally {
    holder.close();
  }
});

Deno.test("a handler slower than the header and idle timeouts still answers", async () => {
  await using server = await serveTest({ headerTimeoutMs: 100, idleTimeoutMs: 100 });
  const answer = await rawExchange(
    server.port,
    "GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
  );
  assertEquals(statusesOf(answer), [200]);
  assertEquals(await closedCount(server.metrics, "header_timeout"), 0);
});
