import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { lanesFixture } from "../support/lanes_fixture.ts";

Deno.test("a provider that hangs fills only its own lane: the other provider's connections sync", async () => {
  // Requests hang far longer than the test waits, so only a separate lane can let Graph through.
  await using fixture = await lanesFixture({ SYNC_HTTP_TIMEOUT_MS: "60000" });
  const { db, google } = fixture;
  google.setFault({ kind: "hang" }, { target: "api" });
  const googleIds = await fixture.addConnections("google", 4);
  const microsoftIds = await fixture.addConnections("microsoft", 3);
  fixture.start({ lanes: [{ kind: "google", size: 2 }, { kind: "microsoft", size: 2 }] });
  await waitFor(async () => {
    const [row] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from external_calendar_connections
      where id = any(${microsoftIds}::uuid[]) and last_success_at is not null`;
    return row.n === microsoftIds.length;
  }, { timeoutMs: 15_000, what: "every Microsoft connection synced" });
  const google_rows = await db.sql<{ leased: boolean; succeeded: boolean }[]>`
    select lease_owner is not null as leased, last_success_at is not null as succeeded
    from external_calendar_connections where id = any(${googleIds}::uuid[])`;
  assertEquals(google_rows.filter((row) => row.succeeded).length, 0);
  // The Google lane is full (2 hanging) and claimed no more than its size.
  assertEquals(google_rows.filter((row) => row.leased).length, 2);
  assert(google.countRequests((r) => r.path.includes("/events")) <= 2);
});
