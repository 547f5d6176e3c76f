import { createApp, createMetricsApp, type Readiness } from "../../src/http/app.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { assertEquals } from "../support/assert.ts";
import { serveApp } from "../support/serve_app.ts";

const NOT_READY: Readiness = {
  ready: false,
  reason: "Cannot reach the database at db.internal:5432/calsync: connect ECONNREFUSED",
};

Deno.test("/readyz on the public listener says only not_ready; the metrics listener says why", async () => {
  const metrics = createMetrics();
  const readiness = () => Promise.resolve(NOT_READY);
  const publicApp = await serveApp(createApp({ metrics, readiness, maxBodyBytes: 1_024 }));
  const privateApp = await serveApp(createMetricsApp(metrics, readiness));
  try {
    const open = await fetch(`${publicApp.url}/readyz`);
    assertEquals(open.status, 503);
    assertEquals(await open.json(), { status: "not_ready" });
    const detailed = await fetch(`${privateApp.url}/readyz`);
    assertEquals(detailed.status, 503);
    assertEquals(await detailed.json(), { status: "not_ready", reason: NOT_READY.reason });
  } finally {
    await publicApp.close();
    await privateApp.close();
  }
});

Deno.test("error answers are application/problem+json with RFC 9457 members", async () => {
  const metrics = createMetrics();
  const app = await serveApp(
    createApp({ metrics, readiness: () => Promise.resolve({ ready: true }), maxBodyBytes: 1_024 }),
  );
  try {
    const missing = await fetch(`${app.url}/nothing`);
    assertEquals(missing.headers.get("content-type"), "application/problem+json");
    const body = await missing.json();
    assertEquals([body.type, body.title, body.status, body.error], [
      "about:blank",
      "Not Found",
      404,
      "not_found",
    ]);
  } finally {
    await app.close();
  }
});
