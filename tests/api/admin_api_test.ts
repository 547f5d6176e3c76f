import type { Hono } from "hono";
import { z } from "zod";
import { API_PREFIX, mountAdminApi } from "../../src/api/admin_api.ts";
import type { ApiModule } from "../../src/api/api_module.ts";
import {
  decodeCursor,
  encodeCursor,
  jsonBody,
  problemResponses,
  requireDatabase,
} from "../../src/api/api_schemas.ts";
import { CALSYNC_VERSION } from "../../src/core/version.ts";
import { createApp } from "../../src/http/app.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { serveApp } from "../support/serve_app.ts";

const TOKEN = "admin-token-for-tests-0123456789";

const Echo = z.object({ name: z.string().min(1), count: z.number().int().min(0) });

/** A resource like the real ones: a validated body, a database that may be missing. */
const echoModule: ApiModule = {
  paths: {
    [`${API_PREFIX}/echo`]: {
      post: {
        requestBody: { content: { "application/json": { schema: Echo } } },
        responses: { 200: { description: "The body back" }, ...problemResponses(401, 422) },
      },
    },
  },
  mount: (api: Hono) => {
    api.post("/echo", async (c) => c.json(await jsonBody(c, Echo)));
    api.get("/needs-database", () => {
      requireDatabase(() => null);
      return new Response("unreachable");
    });
  },
};

async function serveApi(token: string | null) {
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 4_096,
    routes: (app) =>
      mountAdminApi(app, { token, modules: [echoModule], metrics, version: CALSYNC_VERSION }),
  });
  return { served: await serveApp(app), metrics };
}

Deno.test("without a token or with a wrong one the admin API answers 401 and nothing more", async () => {
  const { served, metrics } = await serveApi(TOKEN);
  try {
    const refusals: Record<string, string>[] = [
      {},
      { authorization: "Bearer wrong-token" },
      { authorization: `Basic ${TOKEN}` },
    ];
    for (const headers of refusals) {
      const response = await fetch(`${served.url}/api/v1/openapi.json`, { headers });
      assertEquals(response.status, 401);
      assertEquals(response.headers.get("www-authenticate"), 'Bearer realm="calsync"');
      const body = await response.json();
      assertEquals([body.error, body.message], ["unauthorized", "Authentication required"]);
    }
    // An unknown path under the API is refused the same way: a caller cannot map the routes.
    const unknown = await fetch(`${served.url}/api/v1/nothing-here`);
    assertEquals(unknown.status, 401);
    await unknown.body?.cancel();
    const text = await metrics.registry.getSingleMetricAsString(
      "calsync_admin_api_rejections_total",
    );
    assert(/reason="missing"\} 3/.test(text), text);
    assert(/reason="wrong"\} 1/.test(text), text);
  } finally {
    await served.close();
  }
});

Deno.test("with the token the OpenAPI 3.1 document lists every resource's paths", async () => {
  const { served } = await serveApi(TOKEN);
  try {
    const response = await fetch(`${served.url}/api/v1/openapi.json`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assertEquals(response.status, 200);
    const document = await response.json();
    assertEquals(document.openapi, "3.1.0");
    assertEquals(document.info.version, CALSYNC_VERSION);
    assertEquals(Object.keys(document.paths).sort(), ["/api/v1/echo", "/api/v1/openapi.json"]);
    const schema = document.paths["/api/v1/echo"].post.requestBody.content["application/json"]
      .schema;
    assertEquals(schema.required.sort(), ["count", "name"]);
    assertEquals(document.components.schemas.Problem.type, "object");
  } finally {
    await served.close();
  }
});

Deno.test("a body that fails validation is a 422 problem naming each field", async () => {
  const { served } = await serveApi(TOKEN);
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  try {
    const invalid = await fetch(`${served.url}/api/v1/echo`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "", count: -1 }),
    });
    assertEquals(invalid.status, 422);
    assertEquals(invalid.headers.get("content-type"), "application/problem+json");
    const problem = await invalid.json();
    assertEquals(problem.error, "validation_failed");
    assertEquals(problem.issues.map((issue: { path: string }) => issue.path).sort(), [
      "count",
      "name",
    ]);
    const malformed = await fetch(`${served.url}/api/v1/echo`, {
      method: "POST",
      headers,
      body: "{not json",
    });
    assertEquals([malformed.status, (await malformed.json()).error], [400, "malformed_json"]);
    const valid = await fetch(`${served.url}/api/v1/echo`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "a", count: 2 }),
    });
    assertEquals(await valid.json(), { name: "a", count: 2 });
    const down = await fetch(`${served.url}/api/v1/needs-database`, { headers });
    assertEquals([down.status, (await down.json()).error], [503, "unavailable"]);
  } finally {
    await served.close();
  }
});

Deno.test("with no admin token configured the API is not mounted at all", async () => {
  const { served } = await serveApi(null);
  try {
    const response = await fetch(`${served.url}/api/v1/openapi.json`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assertEquals([response.status, (await response.json()).error], [404, "not_found"]);
  } finally {
    await served.close();
  }
});

Deno.test("cursors round-trip, and a forged one is a 400 rather than a crash", () => {
  const Key = z.object({ at: z.string(), id: z.string() });
  const key = { at: "2026-12-02T10:00:00.000Z", id: "b6c1" };
  assertEquals(decodeCursor(encodeCursor(key), Key), key);
  for (const forged of ["!!!", encodeCursor({ at: 5 }), "e30"]) {
    try {
      decodeCursor(forged, Key);
      throw new Error(`accepted ${forged}`);
    } catch (error) {
      assertEquals((error as { type?: string }).type, "invalid_cursor");
    }
  }
});

Deno.test("the version constant matches deno.json", async () => {
  const manifest = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  assertEquals(CALSYNC_VERSION, manifest.version);
});
