import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../../testkit/daemon.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { addBareConnection, insertEvents } from "../support/feed_fixture.ts";

Deno.test("calsync subscribers: add prints the secret once; list, pause, resume, replay, remove", async () => {
  await using db = await createMigratedDatabase("subscribers_cli");
  const connection = await addBareConnection(db.sql);
  await insertEvents(db.sql, connection, 3);
  const env = { DATABASE_URL: db.url };
  const added = await runCli(
    ["subscribers", "add", "--url", "https://hooks.example.com/calsync", "--json"],
    env,
  );
  assertEquals(added.code, 0, added.stderr);
  const subscriber = JSON.parse(added.stdout);
  assert(/^whsec_[A-Za-z0-9+/=]{32}$/.test(subscriber.secret), subscriber.secret);
  assertEquals(subscriber.acked_seq, 3, "a new subscriber starts at the head");
  const from = await runCli(
    ["subscribers", "add", "--url", "https://h.example.com/", "--from", "2", "--json"],
    env,
  );
  assertEquals(JSON.parse(from.stdout).acked_seq, 1);

  const list = await runCli(["subscribers", "list", "--json"], env);
  assertEquals(list.code, 0, list.stderr);
  assert(!list.stdout.includes(subscriber.secret), "list printed a secret");
  assertEquals(JSON.parse(list.stdout).length, 2);

  const id = subscriber.id;
  const paused = await runCli(["subscribers", "pause", "--subscriber", id, "--json"], env);
  assertEquals(JSON.parse(paused.stdout).status, "paused");
  const resumed = await runCli(["subscribers", "resume", "--subscriber", id, "--json"], env);
  assertEquals(JSON.parse(resumed.stdout).status, "active");
  const replay = await runCli([
    "subscribers",
    "replay",
    "--subscriber",
    id,
    "--from",
    "2",
    "--json",
  ], env);
  assertEquals(JSON.parse(replay.stdout).acked_seq, 1);
  const since = await runCli(
    ["subscribers", "replay", "--subscriber", id, "--since", "2000-01-01T00:00:00Z", "--json"],
    env,
  );
  assertEquals(JSON.parse(since.stdout).acked_seq, 0);
  const both = await runCli(["subscribers", "replay", "--subscriber", id], env);
  assertEquals(both.code, 2);
  const badSecret = await runCli(
    ["subscribers", "add", "--url", "https://x.example.com/", "--secret", "nope"],
    env,
  );
  assertEquals(badSecret.code, 2);
  assertStringIncludes(badSecret.stderr, "whsec_");
  const removed = await runCli(["subscribers", "remove", "--subscriber", id], env);
  assertEquals(removed.code, 0, removed.stderr);
  const again = await runCli(["subscribers", "remove", "--subscriber", id], env);
  assertEquals(again.code, 1);
});

Deno.test("calsync subscribers: secrets are stored sealed; rotate-keys re-seals current and previous", async () => {
  await using db = await createMigratedDatabase("subscribers_sealed");
  const [oldKey, newKey] = [1, 2].map(() =>
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
  );
  const env = { DATABASE_URL: db.url, CALSYNC_ENCRYPTION_KEY: oldKey };
  const added = await runCli(
    ["subscribers", "add", "--url", "https://h.example.com/", "--json"],
    env,
  );
  const { id, secret } = JSON.parse(added.stdout);
  const rotated = await runCli(["subscribers", "rotate-secret", "--subscriber", id, "--json"], env);
  assertEquals(rotated.code, 0, rotated.stderr);
  const stored = async () =>
    (await db.sql<{ secret: string; previous_secret: string }[]>`
      select secret, previous_secret from change_subscribers where id = ${id}`)[0];
  const before = await stored();
  for (const value of [before.secret, before.previous_secret]) {
    assert(value.startsWith("enc:v1:") && !value.includes(secret), value);
  }
  const rotation = await runCli(["connections", "rotate-keys", "--json"], {
    ...env,
    CALSYNC_ENCRYPTION_KEY: `${newKey},${oldKey}`,
  });
  assertEquals(rotation.code, 0, rotation.stderr);
  assertEquals(JSON.parse(rotation.stdout).subscriber_secrets_resealed, 2);
  const after = await stored();
  assert(after.secret !== before.secret && after.previous_secret !== before.previous_secret);
});
