import { assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../../testkit/daemon.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { insertProvider } from "../../src/storage/calendar_providers.ts";
import { insertConnection } from "../../src/storage/connections.ts";
import { ensureProviderHealth, openBreaker } from "../../src/storage/provider_health.ts";

Deno.test("calsync status shows each provider's breaker, and an open one with its next probe", async () => {
  await using db = await createMigratedDatabase("status_breaker");
  const provider = await insertProvider(db.sql, { kind: "google", name: "g", allowlisted: true });
  await insertConnection(db.sql, {
    providerId: provider.id,
    externalCalendarId: "primary",
    refreshToken: "rt",
    accountLabel: null,
  });
  await ensureProviderHealth(db.sql, ["google", "microsoft"]);
  await openBreaker(db.sql, "google", 60_000, { kind: "provider_unavailable", requests: 40 });
  const env = { DATABASE_URL: db.url };
  const text = await runCli(["status"], env);
  assertEquals(text.code, 0, text.stderr);
  assertStringIncludes(text.stdout, "provider google: circuit open");
  assertStringIncludes(text.stdout, "next probe in");
  assertStringIncludes(text.stdout, "provider microsoft: circuit closed (never opened)");
  const json = await runCli(["status", "--json"], env);
  assertEquals(
    JSON.parse(json.stdout).map((row: { provider_circuit: string }) => row.provider_circuit),
    [
      "open",
    ],
  );
});
