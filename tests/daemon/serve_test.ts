import { assert, assertEquals, assertStringIncludes, waitFor } from "../support/assert.ts";
import { startDaemon } from "../../testkit/daemon.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";
import { startFaultProxy } from "../../testkit/fault_proxy.ts";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("serve answers /healthz, /readyz, /metrics and JSON 404s, and logs JSON lines only", async () => {
  const database = await createTestDatabase("daemon");
  const daemon = await startDaemon({ DATABASE_URL: database.url });
  try {
    const health = await fetch(`${daemon.url}/healthz`);
    assertEquals([health.status, await health.json()], [200, { status: "ok" }]);
    const ready = await waitFor(async () => {
      const response = await fetch(`${daemon.url}/readyz`);
      await response.body?.cancel();
      return response.status === 200;
    }, { what: "readyz 200" });
    assert(ready);
    const metrics = await fetch(`${daemon.url}/metrics`);
    assertStringIncludes(metrics.headers.get("content-type") ?? "", "text/plain");
    const text = await metrics.text();
    assertStringIncludes(text, "# TYPE calendar_sync_failures_total counter");
    assertStringIncludes(text, "# HELP calendar_sync_failures_total");
    const missing = await fetch(`${daemon.url}/nope`);
    assertEquals(missing.status, 404);
    assertEquals((await missing.json()).error, "not_found");
    const big = await fetch(`${daemon.url}/healthz`, {
      method: "POST",
      body: "x".repeat(2_000_000),
    });
    assert(big.status === 413 || big.status === 404, `oversized body answered ${big.status}`);
    await big.body?.cancel();
  } finally {
    const status = await daemon.stop();
    await database.drop();
    assertEquals(status.code, 0, "graceful SIGTERM exits 0");
  }
  assertEquals(daemon.strayLines, [], "every stdout line is JSON");
  for (const line of daemon.logs) {
    for (const key of ["time", "level", "category", "message"]) {
      assert(key in line, `log line without ${key}: ${JSON.stringify(line)}`);
    }
  }
});

Deno.test("/metrics passes promtool check metrics (when promtool is installed)", async (t) => {
  const promtool = await new Deno.Command("sh", { args: ["-c", "command -v promtool"] }).output();
  if (!promtool.success) {
    await t.step({ name: "promtool not installed: skipped", ignore: true, fn: () => {} });
    return;
  }
  const database = await createTestDatabase("promtool");
  const daemon = await startDaemon({ DATABASE_URL: database.url });
  try {
    const body = await (await fetch(`${daemon.url}/metrics`)).text();
    const child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(body));
    await writer.close();
    const result = await child.output();
    const problems = new TextDecoder().decode(result.stdout) +
      new TextDecoder().decode(result.stderr);
    assertEquals(result.code, 0, `promtool: ${problems}`);
  } finally {
    await daemon.stop();
    await database.drop();
  }
});

Deno.test("serve keeps retrying an unreachable database, says 503 on /readyz, and stops cleanly", async () => {
  const port = freePort();
  const daemon = await startDaemon({
    DATABASE_URL: `postgres://calsync:topsecret@127.0.0.1:${port}/nowhere`,
    DB_CONNECT_TIMEOUT_MS: "500",
  });
  try {
    const ready = await fetch(`${daemon.url}/readyz`);
    assertEquals(ready.status, 503);
    const body = await ready.json();
    assertEquals(body.status, "not_ready");
    assert(!JSON.stringify(body).includes("topsecret"), "the password leaked into /readyz");
    await waitFor(
      () =>
        daemon.logs.filter((l) => l.message?.toString().startsWith("Database unavailable"))
          .length >= 2,
      { what: "two logged retries", timeoutMs: 15_000 },
    );
    assertEquals(daemon.process.pid > 0, true);
  } finally {
    const status = await daemon.stop();
    assertEquals(status.code, 0);
  }
  const text = JSON.stringify(daemon.logs);
  assert(!text.includes("topsecret"), "the password leaked into the logs");
  const retry = daemon.logs.find((l) => l.message?.toString().startsWith("Database unavailable"));
  assertEquals(retry?.level, "error");
  assertEquals(retry?.kind, "database");
});

Deno.test("SIGTERM lets an in-flight request finish before the process exits", async () => {
  const database = await createTestDatabase("shutdown");
  const target = new URL(database.url);
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  const daemon = await startDaemon({
    DATABASE_URL: proxy.url(database.url),
    CALSYNC_SHUTDOWN_TIMEOUT_MS: "5000",
  });
  try {
    await waitFor(async () => {
      const response = await fetch(`${daemon.url}/readyz`);
      await response.body?.cancel();
      return response.ok;
    });
    // With the database silent, /readyz waits for its 2 s probe deadline: a request that is
    // genuinely in flight when SIGTERM arrives.
    proxy.blackhole(true);
    const inflight = fetch(`${daemon.url}/readyz`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const stopping = daemon.stop("SIGTERM");
    const response = await inflight;
    assertEquals(response.status, 503);
    assertEquals((await response.json()).status, "not_ready");
    proxy.blackhole(false);
    proxy.resetAll();
    const status = await stopping;
    assertEquals(status.code, 0);
    assert(daemon.logs.some((l) => l.message === "Stopped"), "no final log line");
  } finally {
    await daemon.stop();
    await proxy.close();
    await database.drop();
  }
});

Deno.test("METRICS_ADDR moves /metrics to its own listener, off the public one", async () => {
  const database = await createTestDatabase("metrics_addr");
  const metricsPort = freePort();
  const daemon = await startDaemon({
    DATABASE_URL: database.url,
    METRICS_ADDR: `127.0.0.1:${metricsPort}`,
  });
  try {
    const publicMetrics = await fetch(`${daemon.url}/metrics`);
    assertEquals(publicMetrics.status, 404);
    await publicMetrics.body?.cancel();
    const privateMetrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assertEquals(privateMetrics.status, 200);
    assertStringIncludes(await privateMetrics.text(), "calendar_sync_failures_total");
  } finally {
    assertEquals((await daemon.stop()).code, 0);
    await database.drop();
  }
});
