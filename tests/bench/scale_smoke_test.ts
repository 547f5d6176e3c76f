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
      "Index Cond: ((provider_id = p_1.id) AND (due_at <= now()))",
      "Sizes of external_calendar_connections",
      "Events: 20,000 rows",
      "Dedupe keys: 20,000 keys",
      "Migration 009 on 2,000 connections",
    ]
  ) assertStringIncludes(stdout, part);
  // Tiny tables may take a bitmap scan; never a sequential scan of the connections.
  assert(
    !stdout.includes("Seq Scan on external_calendar_connections"),
    "the claim scanned the table",
  );
});
