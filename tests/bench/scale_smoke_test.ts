import { assert, assertStringIncludes } from "../support/assert.ts";

const BENCH = new URL("../../bench/bench.ts", import.meta.url).pathname;

Deno.test("bench --scale at a tiny size reports every measurement and an index scan for the claim", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BENCH, "--scale", "--rows", "2000"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  assert(output.success, new TextDecoder().decode(output.stderr));
  for (
    const part of [
      "| 2,000 |",
      "EXPLAIN at 2,000 connections:",
      "Sizes of external_calendar_connections",
      "| 200 |",
      "Generated at schema 3",
      "Events: 20,000 rows",
      "Dedupe keys: 20,000 keys",
      "| 005_occurrence_mirror.sql |",
      "| 007_accounts.sql |",
      "| 009_provider_lanes.sql |",
      "| 010_claim_indexes.sql |",
      "Bloat after 2,0",
      "Indexed columns of external_calendar_connections",
      "Webhook ingestion with 2,000 channels stored",
      "random of 1,000 |",
    ]
  ) assertStringIncludes(stdout, part);
  // At this tiny size the planner may pick a bitmap scan (the bench shows the ordered range scan
  // at scale); what it must never do is read the claim's rows without the claim index.
  const plan = stdout.slice(stdout.indexOf("EXPLAIN at 2,000 connections:")).split("\n\n")[0];
  assert(
    /Index Scan (on|using) external_calendar_connections_provider_due_idx/
      .test(plan),
    plan,
  );
});
