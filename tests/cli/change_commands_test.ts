import { assertEquals, assertStringIncludes } from "../support/assert.ts";
import { runCli } from "../../testkit/daemon.ts";
import { createMigratedDatabase } from "../../testkit/scratch_database.ts";
import { addBareConnection, insertEvents } from "../support/feed_fixture.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

Deno.test("calsync changes --after prints the feed; --follow prints changes as they commit", async () => {
  await using db = await createMigratedDatabase("changes_cli");
  const id = await addBareConnection(db.sql);
  await insertEvents(db.sql, id, 3);
  const env = { DATABASE_URL: db.url };
  const listed = await runCli(["changes", "--after", "1", "--json"], env);
  assertEquals(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assertEquals(lines.map((c) => [c.seq, c.type, c.external_event_id]), [
    [2, "event.created", "e1"],
    [3, "event.created", "e2"],
  ]);
  const bad = await runCli(["changes", "--after", "x"], env);
  assertEquals(bad.code, 2);

  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "changes", "--after", "3", "--follow", "--json"],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  // Writes keep coming until the follower (started asynchronously) has printed one of them.
  const writer = (async () => {
    for (let n = 0; !text.includes('"seq"') && n < 200; n++) {
      await insertEvents(db.sql, id, 1, `late${n}-`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  await writer;
  child.kill("SIGTERM");
  // Cancelling the reader cancels the piped stdout as well.
  await reader.cancel().catch(() => {});
  const status = await child.status;
  const stderr = await new Response(child.stderr).text();
  assertEquals(status.code, 0, stderr);
  const first = JSON.parse(text.split("\n")[0]);
  assertEquals(first.seq, 4);
  assertStringIncludes(first.external_event_id, "late");
});
