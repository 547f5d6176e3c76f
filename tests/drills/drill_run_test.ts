import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const RESULT_LINES = [
  "**External API Outage:** `PASS`",
  "**Database Failure:** `PASS`",
  "**Webhook Outage:** `PASS`",
  "**Recovery Tests:** `PASS`",
  "**Status:** `PASS`",
  "**Dropped Notification Caught By Poll:** `PASS`",
  "**Deleted Calendar Stops Syncing:** `PASS`",
  "**Empty Listing Held By Guard:** `PASS`",
  "**Reconciliation Repairs Drift:** `PASS`",
  "**Subscriber Outage Delivered In Order:** `PASS`",
  "**Provider-Wide Outage Held By Breaker:** `PASS`",
];

Deno.test("deno task drill passes end to end against the machine's PostgreSQL", async () => {
  const out = await Deno.makeTempDir({ prefix: "calsync-drill-report-" });
  try {
    const databaseUrl = Deno.env.get("TEST_DATABASE_URL") ??
      "postgres://postgres@127.0.0.1:5432/postgres";
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "drill", "--out", out],
      env: { DATABASE_URL: databaseUrl, NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(result.stdout);
    const stderr = new TextDecoder().decode(result.stderr);
    const failed = stdout.split("\n").filter((line) => line.startsWith("FAIL")).join("\n");
    assertEquals(result.code, 0, `drill failed:\n${failed}\n${stderr.slice(-2_000)}`);

    const markdown = await Deno.readTextFile(`${out}/drill-report.md`);
    for (const text of [stdout, markdown]) {
      assertStringIncludes(text, "## Drill Results");
      assert(/\*\*Date:\*\* `\d{4}-\d{2}-\d{2}`/.test(text), "a filled-in date");
      for (const line of RESULT_LINES) assertStringIncludes(text, line);
      assert(/\*\*Notes:\*\* `\d+\/\d+ checks passed; [^`]+`/.test(text), "filled-in notes");
    }
    // Every check line is PASS, and each scenario ran for both providers.
    const lines = stdout.split("\n").filter((line) => /^(PASS|FAIL) {2}/.test(line));
    assert(lines.length > 100, `only ${lines.length} check lines`);
    assertEquals(lines.filter((line) => line.startsWith("FAIL")), []);
    for (
      const scenario of [
        "api/503",
        "api/429",
        "database/cut",
        "database/mid-write",
        "database/pool",
        "webhook/outage",
        "freshness/poll",
        "freshness/unavailable",
        "freshness/guard",
        "freshness/reconcile",
        "outage/503-all",
      ]
    ) {
      for (const provider of ["google", "microsoft"]) {
        assert(
          lines.some((l) => l.includes(`  ${scenario} ${provider}  `)),
          `${scenario} ${provider}`,
        );
      }
    }
    assert(lines.some((l) => l.includes("  subscriber/outage google  ")), "subscriber outage");
    // The operators' verification query ran and its rows are in the report.
    assertStringIncludes(stdout, "FROM external_calendar_connections WHERE provider_id = '");

    const json = JSON.parse(await Deno.readTextFile(`${out}/drill-report.json`));
    assertEquals(json.passed, true);
    assertEquals(json.results.status, "PASS");
    assert(json.verification.length >= 12, "verification rows for every scenario");
    // report.html: a timeline per scenario run, each with requests or deliveries and a recovery.
    const page = await Deno.readTextFile(`${out}/report.html`);
    assertStringIncludes(page, "<h2>Drill results</h2>");
    assertEquals((page.match(/<svg\s/g) ?? []).length, json.timelines.length);
    assert(json.timelines.length >= 12, `only ${json.timelines.length} timelines`);
    for (const timeline of json.timelines) {
      const kinds = new Set(timeline.events.map((e: { kind: string }) => e.kind));
      const name = `${timeline.scenario}/${timeline.variant} ${timeline.provider}`;
      assert(kinds.has("fault") && kinds.has("recovery"), `${name}: ${[...kinds]}`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
