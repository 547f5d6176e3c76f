import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { startFakeMicrosoft } from "../../testkit/fake_microsoft.ts";
import { runCli } from "../../testkit/daemon.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { claimOne, connectionRow, createHarness } from "../support/sync_harness.ts";
import { runSync } from "../../src/sync/run_sync.ts";

const newKey = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

Deno.test("refresh tokens are encrypted at rest, used for syncs, rotated, and never printed", async () => {
  await using db = await createMigratedDatabase("encryption");
  await using graph = startFakeMicrosoft({ rotateStrict: true });
  graph.addRefreshToken("m-rt-plain");
  const key1 = newKey();
  const env = {
    DATABASE_URL: db.url,
    CALSYNC_ENCRYPTION_KEY: key1,
    MICROSOFT_GRAPH_BASE_URL: graph.baseUrl,
    MICROSOFT_TOKEN_URL: graph.tokenUrl,
  };
  assertEquals(
    (await runCli(
      ["providers", "add", "--kind", "microsoft", "--name", "o365", "--allowlisted"],
      env,
    )).code,
    0,
  );
  const added = await runCli(
    [
      "connections",
      "add",
      "--provider",
      "o365",
      "--calendar",
      "primary",
      "--refresh-token-file",
      "-",
    ],
    env,
    { stdin: "m-rt-plain\n" },
  );
  assertEquals(added.code, 0, added.stderr);
  const id = added.stdout.trim();
  const [stored] = await db
    .sql`select a.refresh_token from external_calendar_connections c
      join calendar_accounts a on a.id = c.account_id where c.id = ${id}`;
  assert(stored.refresh_token.startsWith("enc:v1:"), "stored in plaintext");
  assert(!stored.refresh_token.includes("m-rt-plain"));

  // The sync opens it, and stores Microsoft's rotated token sealed too.
  const harness = createHarness(db.sql, env);
  const claimed = await claimOne(db.sql, id);
  assertEquals(
    (await runSync(harness.deps, claimed!, new AbortController().signal)).outcome,
    "success",
  );
  const [rotated] = await db
    .sql`select a.refresh_token from external_calendar_connections c
      join calendar_accounts a on a.id = c.account_id where c.id = ${id}`;
  assert(
    rotated.refresh_token.startsWith("enc:v1:") && rotated.refresh_token !== stored.refresh_token,
  );

  // Key rotation: new key first, old key second; rotate-keys re-seals; the old key can then go.
  const key2 = newKey();
  const rotation = await runCli(["connections", "rotate-keys", "--json"], {
    ...env,
    CALSYNC_ENCRYPTION_KEY: `${key2},${key1}`,
  });
  assertEquals(rotation.code, 0, rotation.stderr);
  assertEquals(JSON.parse(rotation.stdout).resealed, 1);
  const onlyNew = createHarness(db.sql, { ...env, CALSYNC_ENCRYPTION_KEY: key2 });
  await db
    .sql`update external_calendar_connections set sync_needed = true, due_at = now() where id = ${id}`;
  onlyNew.deps.tokens.invalidate(id);
  const again = await claimOne(db.sql, id);
  assertEquals(
    (await runSync(onlyNew.deps, again!, new AbortController().signal)).outcome,
    "success",
  );

  // A key that cannot open the token is a clear, classified failure.
  const wrong = createHarness(db.sql, { ...env, CALSYNC_ENCRYPTION_KEY: newKey() });
  await db
    .sql`update external_calendar_connections set sync_needed = true, due_at = now() where id = ${id}`;
  const third = await claimOne(db.sql, id);
  assertEquals(
    (await runSync(wrong.deps, third!, new AbortController().signal)).outcome,
    "failure",
  );
  const row = await connectionRow(db.sql, id);
  assertStringIncludes(String(row.last_error?.message), "not in CALSYNC_ENCRYPTION_KEY");

  const listed = await runCli(["connections", "list", "--json"], env);
  assert(
    !listed.stdout.includes("enc:v1:") && !listed.stdout.includes("m-rt"),
    "the CLI printed a token",
  );
});
