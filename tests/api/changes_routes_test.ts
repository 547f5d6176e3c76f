import { mountAdminApi } from "../../src/api/admin_api.ts";
import { changesModule } from "../../src/api/changes_routes.ts";
import { CALSYNC_VERSION } from "../../src/core/version.ts";
import { createApp } from "../../src/http/app.ts";
import { createMetrics } from "../../src/metrics/metrics.ts";
import { pruneChanges } from "../../src/storage/change_feed.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { addBareConnection, insertEvents } from "../support/feed_fixture.ts";
import { serveApp } from "../support/serve_app.ts";

const TOKEN = "admin-token-for-tests-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };

Deno.test("GET /api/v1/changes pages through the feed in order, and answers 410 once pruned", async () => {
  await using db = await createMigratedDatabase("changes_api");
  const id = await addBareConnection(db.sql);
  await insertEvents(db.sql, id, 5);
  const metrics = createMetrics();
  const app = createApp({
    metrics,
    readiness: () => Promise.resolve({ ready: true }),
    maxBodyBytes: 4_096,
    routes: (app) =>
      mountAdminApi(app, {
        token: TOKEN,
        modules: [changesModule({ sql: () => db.sql })],
        metrics,
        version: CALSYNC_VERSION,
      }),
  });
  const served = await serveApp(app);
  try {
    const get = async (query: string) => {
      const response = await fetch(`${served.url}/api/v1/changes?${query}`, { headers: auth });
      return { status: response.status, body: await response.json() };
    };
    const first = await get("after=0&limit=2");
    assertEquals(first.status, 200);
    assertEquals(first.body.changes.map((c: { seq: number }) => c.seq), [1, 2]);
    assertEquals([first.body.next_after, first.body.head], [2, 5]);
    assertEquals(first.body.changes[0].data.external_event_id, "e0");
    assertEquals(first.body.changes[0].type, "event.created");
    assertEquals(first.body.changes[0].data.title, "title 0");
    const rest = await get(`after=${first.body.next_after}&limit=10`);
    assertEquals(rest.body.changes.map((c: { seq: number }) => c.seq), [3, 4, 5]);
    assertEquals(rest.body.next_after, 5);
    assertEquals((await get("after=5")).body.changes, []);
    // A deleted row: its changes carry no data any more (the feed holds ids; read the mirror).
    await db.sql`delete from external_calendar_events where external_event_id = 'e4'`;
    const deleted = await get("after=4");
    assertEquals(
      deleted.body.changes.map((
        c: { seq: number; type: string; data: unknown },
      ) => [c.seq, c.type, c.data]),
      [[5, "event.created", null], [6, "event.deleted", null]],
    );

    const invalid = await get("after=-1");
    assertEquals([invalid.status, invalid.body.error], [422, "validation_failed"]);
    const refused = await fetch(`${served.url}/api/v1/changes?after=0`);
    await refused.body?.cancel();
    assertEquals(refused.status, 401);

    assertEquals(
      await pruneChanges(db.sql, {
        olderThan: new Date(Date.now() + 60_000),
        keepAfter: 3,
        batchSize: 10,
      }),
      3,
    );
    const gone = await get("after=1");
    assertEquals([gone.status, gone.body.error], [410, "gone"]);
    assertStringIncludes(gone.body.message, "re-read the mirror");
    const fine = await get("after=3");
    assertEquals(fine.body.changes.map((c: { seq: number }) => c.seq), [4, 5, 6]);

    const document = await (await fetch(`${served.url}/api/v1/openapi.json`, { headers: auth }))
      .json();
    assert(document.paths["/api/v1/changes"].get, "the OpenAPI document lacks /changes");
  } finally {
    await served.close();
  }
});
