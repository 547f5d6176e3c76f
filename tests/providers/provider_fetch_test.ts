import { SyncFailure } from "../../src/failures/failure.ts";
import { fetchProviderJson } from "../../src/providers/provider_fetch.ts";
import { assertEquals, assertRejects } from "../support/assert.ts";

function serve(handler: (request: Request) => Response) {
  return new Promise<{ url: string; close(): Promise<void> }>((resolve) => {
    const server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: (addr) =>
        resolve({ url: `http://127.0.0.1:${addr.port}`, close: () => server.shutdown() }),
    }, handler);
  });
}

const request = {
  provider: "google" as const,
  timeoutMs: 5_000,
  signal: new AbortController().signal,
};

Deno.test("fetchProviderJson() does not follow a redirect, so the bearer token stays home", async () => {
  const seen: string[] = [];
  const server = await serve((req) => {
    const path = new URL(req.url).pathname;
    seen.push(`${path} ${req.headers.get("authorization")}`);
    if (path === "/api") return Response.redirect(new URL("/elsewhere", req.url), 302);
    return Response.json({ stolen: true });
  });
  try {
    const failure = await assertRejects(
      () =>
        fetchProviderJson(`${server.url}/api`, { headers: { authorization: "Bearer t" } }, request),
      SyncFailure,
    );
    assertEquals((failure as SyncFailure).status, 302);
    assertEquals(seen, ["/api Bearer t"]);
  } finally {
    await server.close();
  }
});

Deno.test("fetchProviderJson() refuses a body beyond its cap while it streams", async () => {
  const server = await serve(() => new Response(JSON.stringify({ items: "x".repeat(100_000) })));
  try {
    await assertRejects(
      () => fetchProviderJson(`${server.url}/big`, {}, { ...request, maxBodyBytes: 10_000 }),
      SyncFailure,
      "larger than 10000 bytes",
    );
    const small = await fetchProviderJson(`${server.url}/big`, {}, request);
    assertEquals(typeof small, "object");
  } finally {
    await server.close();
  }
});
