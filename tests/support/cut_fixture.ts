/**
 * @module A Google connection synced once through the fault proxy, ready for a test to cut the
 * database connection in the middle of its next sync (sync_engine_test, write_chunk_test).
 */
import { openSql } from "../../src/storage/client.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { type FaultProxy, startFaultProxy } from "../../testkit/fault_proxy.ts";
import { createMigratedDatabase, type MigratedDatabase } from "../../testkit/scratch_database.ts";
import { assertEquals } from "./assert.ts";
import { createHarness, type Harness } from "./sync_harness.ts";

/** The database (direct), the fake, the proxy, a harness whose pool goes through the proxy. */
export type CutFixture = AsyncDisposable & {
  db: MigratedDatabase;
  google: FakeGoogle;
  proxy: FaultProxy;
  harness: Harness;
  /** The connection, its calendar "primary" mirrored with one event. */
  id: string;
  /** The proxied pool's application_name, to find its sessions in pg_stat_activity. */
  applicationName: string;
};

/** Builds a CutFixture on a scratch database named after `name`. */
export async function cutFixture(name: string): Promise<CutFixture> {
  await using stack = new AsyncDisposableStack();
  const db = stack.use(await createMigratedDatabase(name));
  const google = stack.use(startFakeGoogle());
  google.addRefreshToken("rt");
  const target = new URL(db.url);
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  stack.defer(() => proxy.close());
  const applicationName = `${name}_${crypto.randomUUID().slice(0, 8)}`;
  const viaProxy = openSql(proxy.url(db.url), { max: 2, applicationName });
  stack.defer(() => viaProxy.end({ timeout: 1 }));
  const harness = createHarness(viaProxy, {
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
  });
  const id = await harness.addConnection({
    kind: "google",
    calendar: "primary",
    refreshToken: "rt",
  });
  google.putEvent("primary", { summary: "Committed earlier" });
  assertEquals((await harness.syncOnce(id))?.outcome, "success");
  const owned = stack.move();
  return {
    db,
    google,
    proxy,
    harness,
    id,
    applicationName,
    [Symbol.asyncDispose]: () => owned.disposeAsync(),
  };
}
