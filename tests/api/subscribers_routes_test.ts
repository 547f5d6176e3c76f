import { mountAdminApi } from "../../src/api/admin_api.ts";
import { subscribersModule } from "../../src/api/subscribers_routes.ts";
import { CALSYNC_VERSION } from "../../src/core/version.ts";
import { createApp } from "../../src/http/app.ts";
import { createSecretBox } from "../../src/crypto/secret_box.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { assert, assertEquals } from "../support/assert.ts";
import { serveApp } from "../support/serve_app.ts";

const TOKEN = "admin-token-for-tests-0123456789";

Deno.test("/api/v1/subscribers: add (secret once), list, pause, replay, rotate, remove; 422 and 404", async () => {
  await using db = await createMigratedDatabase("subscribers_api");
  const metrics = createMetrics();
  const box = createSecretBox([crypto.getRandomValues(new Uint8Array(32))]);
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 4_096,
    routes: (app) =>
      mountAdminApi(app, {
        token: TOKEN,
        modules: [subscribersModule({ sql: () => db.sql, seal: (secret) => box.seal(secret) })],
        metrics,
        version: CALSYNC_VERSION,
      }),
  });
  const served = await serveApp(app);
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`${served.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  };
  try {
    const added = await call("POST", "/subscribers", { url: "https://hooks.example.com/x" });
    assertEquals(added.status, 201);
    assert(added.body.secret.startsWith("whsec_"));
    // Stored sealed; the delivery path opens it back to what the caller was shown.
    const [stored] = await db.sql<{ secret: string }[]>`
      select secret from change_subscribers where id = ${added.body.id}`;
    assert(stored.secret.startsWith("enc:v1:"), stored.secret);
    assertEquals(await box.open(stored.secret), added.body.secret);
    const id = added.body.id;
    const list = await call("GET", "/subscribers");
    assertEquals(list.body.items.map((s: { id: string }) => s.id), [id]);
    assert(!JSON.stringify(list.body).includes(added.body.secret), "the list shows a secret");
    assertEquals((await call("POST", `/subscribers/${id}/pause`)).body.status, "paused");
    assertEquals((await call("POST", `/subscribers/${id}/resume`)).body.status, "active");
    assertEquals(
      (await call("POST", `/subscribers/${id}/replay`, { from_seq: 1 })).body.acked_seq,
      0,
    );
    const rotated = await call("POST", `/subscribers/${id}/rotate-secret`, {});
    assert(rotated.body.secret.startsWith("whsec_") && rotated.body.secret !== added.body.secret);

    const invalid = await call("POST", "/subscribers", { url: "ftp://nope" });
    assertEquals([invalid.status, invalid.body.error], [422, "validation_failed"]);
    const noReplay = await call("POST", `/subscribers/${id}/replay`, {});
    assertEquals(noReplay.status, 422);
    assertEquals((await call("DELETE", `/subscribers/${id}`)).status, 204);
    assertEquals((await call("DELETE", `/subscribers/${id}`)).status, 404);
    assertEquals((await call("POST", "/subscribers/not-a-uuid/pause")).status, 404);
    const document = (await call("GET", "/openapi.json")).body;
    for (const path of ["/api/v1/subscribers", "/api/v1/subscribers/{id}/replay"]) {
      assert(document.paths[path], `the OpenAPI document lacks ${path}`);
    }
  } finally {
    await served.close();
  }
});
