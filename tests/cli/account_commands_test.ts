import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../../testkit/daemon.ts";
import { connectFixture, followRedirects } from "../support/connect_fixture.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Reads a child's stdout line by line until `match` finds a line; returns it. */
async function readUntil(
  reader: ReadableStreamDefaultReader<string>,
  match: (line: string) => boolean,
): Promise<string> {
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stdout ended before the line: ${buffer}`);
    buffer += value;
    const line = buffer.split("\n").find(match);
    if (line !== undefined) return line;
  }
}

Deno.test("accounts connect prints the URL and completes when the callback lands", async () => {
  await using t = await connectFixture();
  t.google.addUser({
    subject: "77",
    email: "ops@example.com",
    calendars: [
      { id: "ops@example.com", name: "Ops", primary: true },
      { id: "oncall", name: "On call", accessRole: "reader" },
      { id: "holidays", name: "Holidays", accessRole: "reader" },
    ],
  });
  const env = { ...t.env, DATABASE_URL: t.db.url };
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "accounts", "connect", "--provider", "google"],
    env: { ...env, NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const url = await readUntil(stdout, (line) => line.startsWith(t.google.authUrl));
  const page = await followRedirects(url.trim());
  assertEquals(page.status, 200, page.body);
  const rest = await readUntil(stdout, (line) => line.startsWith("Connected account"));
  stdout.releaseLock();
  const status = await child.status;
  await child.stdout.cancel().catch(() => {});
  const stderr = await new Response(child.stderr).text();
  assertEquals(status.code, 0, stderr);
  assertStringIncludes(rest, "ops@example.com");

  // accounts list, calendars list, connections add --account ID --calendar all.
  const accounts = await runCli(["accounts", "list", "--json"], env);
  assertEquals(accounts.code, 0, accounts.stderr);
  const [account] = JSON.parse(accounts.stdout);
  assertEquals([account.email, account.connections, account.status], [
    "ops@example.com",
    1,
    "active",
  ]);
  assert(!accounts.stdout.includes("refresh_token"), "the CLI printed a refresh token");
  const calendars = await runCli(["calendars", "list", "--account", account.id, "--json"], env);
  assertEquals(calendars.code, 0, calendars.stderr);
  assertEquals(
    JSON.parse(calendars.stdout).map((
      c: Record<string, unknown>,
    ) => [c.id, c.primary, c.connected]),
    [["ops@example.com", true, true], ["oncall", false, false], ["holidays", false, false]],
  );
  const added = await runCli(
    ["connections", "add", "--account", account.id, "--calendar", "all", "--json"],
    env,
  );
  assertEquals(added.code, 0, added.stderr);
  assertEquals(
    JSON.parse(added.stdout).map((row: { external_calendar_id: string }) =>
      row.external_calendar_id
    )
      .sort(),
    ["holidays", "oncall"],
  );
  const again = await runCli(
    ["connections", "add", "--account", account.id, "--calendar", "oncall"],
    env,
  );
  assertEquals(again.code, 1);
  assertStringIncludes(again.stderr, "already has a connection");
  const text = await runCli(["calendars", "list", "--account", account.id], env);
  assertStringIncludes(text.stdout, "oncall");

  const removed = await runCli(["accounts", "remove", "--account", account.id], env);
  assertEquals(removed.code, 0, removed.stderr);
  const [left] = await t.db.sql`
    select (select count(*) from calendar_accounts)::int as accounts,
      (select count(*) from external_calendar_connections)::int as connections`;
  assertEquals(left, { accounts: 0, connections: 0 });
});

Deno.test("a refresh token as an argument is refused with the reason; a file is read", async () => {
  await using t = await connectFixture();
  const env = { ...t.env, DATABASE_URL: t.db.url };
  const refused = await runCli([
    "connections",
    "add",
    "--provider",
    "google",
    "--calendar",
    "primary",
    "--refresh-token",
    "1//visible-in-ps",
  ], env);
  assertEquals(refused.code, 2);
  assertStringIncludes(refused.stderr, "shell history");
  assertStringIncludes(refused.stderr, "--refresh-token-file");
  assert(!refused.stderr.includes("1//visible-in-ps"), "the refused token was echoed");
  const reauth = await runCli(
    ["connections", "reauth", "--connection", crypto.randomUUID(), "--refresh-token", "x"],
    env,
  );
  assertEquals(reauth.code, 2);

  const file = await Deno.makeTempFile({ prefix: "calsync-rt-" });
  try {
    await Deno.writeTextFile(file, "1//from-a-file\n");
    for (const label of ["alice@example.com", "bob@example.com"]) {
      // Two users' "primary" on one provider: each token is its own account now.
      const added = await runCli([
        "connections",
        "add",
        "--provider",
        "google",
        "--calendar",
        "primary",
        "--refresh-token-file",
        file,
        "--label",
        label,
      ], env);
      assertEquals(added.code, 0, added.stderr);
    }
    const [stored] = await t.db.sql<{ token: string; accounts: number }[]>`
      select min(refresh_token) as token, count(*)::int as accounts from calendar_accounts`;
    assertEquals(stored, { token: "1//from-a-file", accounts: 2 });
    const empty = await Deno.makeTempFile();
    const unreadable = await runCli([
      "connections",
      "add",
      "--provider",
      "google",
      "--calendar",
      "x",
      "--refresh-token-file",
      empty,
    ], env);
    assertEquals(unreadable.code, 2);
    assertStringIncludes(unreadable.stderr, "must hold one refresh token");
    await Deno.remove(empty);
  } finally {
    await Deno.remove(file);
  }
});
