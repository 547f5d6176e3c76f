import { runCli } from "../../testkit/daemon.ts";
import { assertEquals, assertStringIncludes } from "../support/assert.ts";

Deno.test("calsync healthcheck exits 0 when /healthz answers 200, 1 when nothing listens", async () => {
  let served = 0;
  const listening = Promise.withResolvers<number>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => listening.resolve(port),
  }, (request) => {
    served++;
    return new URL(request.url).pathname === "/healthz"
      ? Response.json({ status: "ok" })
      : new Response(null, { status: 404 });
  });
  const port = await listening.promise;
  try {
    const healthy = await runCli(["healthcheck"], { HOST: "0.0.0.0", PORT: String(port) });
    assertEquals(healthy.code, 0, healthy.stderr);
    assertEquals(served, 1);
  } finally {
    await server.shutdown();
  }
  const down = await runCli(["healthcheck"], { HOST: "127.0.0.1", PORT: String(port) });
  assertEquals(down.code, 1);
  assertStringIncludes(down.stderr, `cannot reach http://127.0.0.1:${port}/healthz`);
});
