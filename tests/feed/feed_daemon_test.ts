import { openSql } from "../../src/storage/client.ts";
import { startFakeGoogle } from "../../testkit/fake_google.ts";
import { runCli, startDaemon } from "../../testkit/daemon.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";
import { assert, assertEquals, waitFor } from "../support/assert.ts";
import { startReceiver } from "../../testkit/subscriber_receiver.ts";

Deno.test("calsync serve delivers a sync's changes to a subscriber added with the CLI, signed, in order", async () => {
  const google = startFakeGoogle({ refreshTokens: ["1//g"] });
  const receiver = startReceiver();
  const database = await createTestDatabase("feed_daemon");
  const sql = openSql(database.url, { max: 2 });
  // With a key, the CLI seals the subscriber's secret and the daemon opens it to sign.
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const env = { DATABASE_URL: database.url, CALSYNC_ENCRYPTION_KEY: key };
  const daemon = await startDaemon({
    ...env,
    PORT: "0",
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    SCHEDULER_POLL_INTERVAL_MS: "200",
    SUBSCRIBER_BACKOFF_BASE_MS: "20",
    SUBSCRIBER_BACKOFF_MAX_MS: "100",
  }, { readiness: "scheduler" });
  try {
    const added = await runCli(["subscribers", "add", "--url", receiver.url, "--json"], env);
    assertEquals(added.code, 0, added.stderr);
    receiver.secrets.push(JSON.parse(added.stdout).secret);
    const [stored] = await sql<{ secret: string }[]>`select secret from change_subscribers`;
    assert(stored.secret.startsWith("enc:v1:"), "the signing secret is sealed at rest");
    receiver.answer({ status: 503 });
    for (let i = 0; i < 3; i++) google.putEvent("primary", { summary: `e${i}` });
    const provider = await runCli(
      ["providers", "add", "--kind", "google", "--name", "g", "--allowlisted", "--json"],
      env,
    );
    assertEquals(provider.code, 0, provider.stderr);
    const connection = await runCli(
      [
        "connections",
        "add",
        "--provider",
        "g",
        "--calendar",
        "primary",
        "--refresh-token-file",
        "-",
      ],
      env,
      { stdin: "1//g\n" },
    );
    assertEquals(connection.code, 0, connection.stderr);
    // Three events and the first success; the first attempt fails and is retried.
    await waitFor(() => receiver.received.length === 5, {
      timeoutMs: 20_000,
      what: "four changes delivered after one 503",
    });
    const delivered = receiver.received.slice(1);
    assertEquals(delivered.map((r) => r.seq), [1, 2, 3, 4]);
    assertEquals(receiver.received[0].id, delivered[0].id);
    assert(receiver.received.every((r) => r.verified[0]), "a signature did not verify");
    const types = delivered.map((r) => JSON.parse(r.body).type);
    assertEquals(types.filter((t) => t === "event.created").length, 3);
    assertEquals(types.at(-1), "connection.first_synced");
    // Counted once the answer is in, which may be just after the receiver saw the request.
    await waitFor(async () => {
      const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
      return /calsync_subscriber_deliveries_total\{[^}]*result="success"[^}]*\} 4/.test(metrics);
    }, { what: "four successful deliveries counted" });
  } finally {
    await daemon.stop();
    await sql.end({ timeout: 1 });
    await receiver.close();
    await google.close();
    await database.drop();
  }
});
