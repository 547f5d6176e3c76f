import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../../testkit/daemon.ts";
import { createTestDatabase } from "../../testkit/scratch_database.ts";

Deno.test("CLI: providers, connections, sync and status against a real database", async () => {
  const database = await createTestDatabase("cli");
  const env = { DATABASE_URL: database.url };
  try {
    const added = await runCli([
      "providers",
      "add",
      "--kind",
      "google",
      "--name",
      "work",
      "--allowlisted",
      "--json",
    ], env);
    assertEquals(added.code, 0, added.stderr);
    const provider = JSON.parse(added.stdout);
    assertEquals([provider.kind, provider.name, provider.allowlisted], ["google", "work", true]);

    const duplicate = await runCli(["providers", "add", "--kind", "google", "--name", "work"], env);
    assertEquals(duplicate.code, 1);
    assertStringIncludes(duplicate.stderr, 'A provider named "work" already exists');

    const connection = await runCli(
      [
        "connections",
        "add",
        "--provider",
        "work",
        "--calendar",
        "primary",
        "--refresh-token-file",
        "-",
        "--account",
        "ops@example.com",
      ],
      env,
      { stdin: "1//secret-refresh\n" },
    );
    assertEquals(connection.code, 0, connection.stderr);
    const id = connection.stdout.trim();
    assert(/^[0-9a-f-]{36}$/.test(id), `expected an id, got ${connection.stdout}`);

    const list = await runCli(["connections", "list", "--json"], env);
    assertEquals(list.code, 0, list.stderr);
    assert(!list.stdout.includes("secret-refresh"), "the CLI printed a refresh token");

    const sync = await runCli(["sync", "--connection", id], env);
    assertEquals(sync.code, 0, sync.stderr);

    const status = await runCli(["status", "--connection", id, "--json"], env);
    assertEquals(status.code, 0, status.stderr);
    const [row] = JSON.parse(status.stdout);
    assertEquals(
      [
        row.id,
        row.provider_id,
        row.error_count,
        row.last_error,
        row.backoff_until,
        row.sync_needed,
      ],
      [id, provider.id, 0, null, null, true],
    );
    const text = await runCli(["status"], env);
    for (
      const column of [
        "id",
        "provider_id",
        "error_count",
        "last_error",
        "backoff_until",
        "sync_needed",
      ]
    ) {
      assertStringIncludes(text.stdout, column);
    }

    const removed = await runCli(["connections", "remove", "--connection", id], env);
    assertEquals(removed.code, 0, removed.stderr);
    const gone = await runCli(["status", "--connection", id], env);
    assertEquals(gone.code, 1);
  } finally {
    await database.drop();
  }
});

Deno.test("CLI: bad arguments exit 2 with usage on stderr", async () => {
  const env = { DATABASE_URL: "postgres://127.0.0.1:1/x" };
  for (
    const args of [
      ["frobnicate"],
      ["providers", "add", "--kind", "yahoo", "--name", "x"],
      ["sync", "--connection", "not-a-uuid"],
      ["status", "--no-such-flag"],
    ]
  ) {
    const result = await runCli(args, env);
    assertEquals(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assertStringIncludes(result.stderr, "Usage:");
  }
});

Deno.test("CLI: invalid configuration exits 2 naming each variable, no secrets", async () => {
  const result = await runCli(["status"], {
    PORT: "-1",
    DATABASE_URL: "http://user:hunter2@db",
    SYNC_CONCURRENCY: "lots",
  });
  assertEquals(result.code, 2);
  for (const name of ["PORT", "DATABASE_URL", "SYNC_CONCURRENCY"]) {
    assertStringIncludes(result.stderr, name);
  }
  assert(!result.stderr.includes("hunter2"));
});

Deno.test("CLI: an unreachable database is one line naming host and port, not a stack trace", async () => {
  const result = await runCli(["status"], {
    DATABASE_URL: "postgres://calsync:pw-123@127.0.0.1:1/calsync",
  });
  assertEquals(result.code, 1);
  assertStringIncludes(result.stderr, "Cannot reach the database at 127.0.0.1:1/calsync");
  assert(!result.stderr.includes("pw-123"), "the password leaked");
  assert(!result.stderr.includes("    at "), `stack trace printed: ${result.stderr}`);
});
