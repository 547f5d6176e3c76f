import { assert, assertEquals } from "../support/assert.ts";

const BENCH = new URL("../../bench/bench.ts", import.meta.url).pathname;
const SERVER = Deno.env.get("TEST_DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** Every metric a run reports; a quick run must produce all of them. */
const METRICS = [
  "webhook_rps",
  "webhook_rps_vs_bare",
  "webhook_pgbench_four_statements_tps",
  "webhook_p50_ms",
  "webhook_p99_ms",
  "webhook_share_2xx",
  "webhook_to_sync_p50_ms",
  "webhook_to_sync_p99_ms",
  "webhook_send_to_sync_p50_ms",
  "webhook_send_to_sync_p99_ms",
  "full_sync_small_events_per_s",
  "full_sync_small_peak_rss_mb",
  "full_sync_large_events_per_s",
  "full_sync_large_peak_rss_mb",
  "full_sync_large_peak_rss_mb_lean_v8",
  "scheduler_syncs_per_s_warm1",
  "scheduler_drain_s_warm1",
  "scheduler_syncs_per_s_cold1",
  "scheduler_drain_s_cold1",
  "scheduler_syncs_per_s_cold3",
  "scheduler_drain_s_cold3",
  "scheduler_double_syncs",
  "change_feed_full_sync_events_per_s",
  "change_feed_deliveries_per_s",
  "change_feed_commit_to_delivery_p50_ms",
  "change_feed_commit_to_delivery_p99_ms",
  "change_feed_follow_p99_ms",
];

type Summary = { median: number; min: number; max: number; runs: number[] };
type Metric = { calsync: Summary | null; ceiling: Summary | null };

async function answers(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  try {
    const conn = await Deno.connect({ hostname, port: Number(port || 5432) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("deno task bench --quick measures every metric and finds no concurrent double sync", async (t) => {
  if (!(await answers(SERVER))) {
    await t.step({ name: `no PostgreSQL answers at ${SERVER}: skipped`, ignore: true, fn() {} });
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "calsync-bench-smoke-" });
  const json = `${dir}/bench.json`;
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BENCH, "--quick", "--json", json],
      // The bench picks DATABASE_URL first: point it at the test server, whatever is set.
      env: { NO_COLOR: "1", DATABASE_URL: SERVER },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assertEquals(output.code, 0, `bench exited ${output.code}:\n${stderr.slice(-3_000)}`);
    assert(stdout.includes("| metric"), "the table goes to stdout");

    const report = JSON.parse(await Deno.readTextFile(json));
    assertEquals(report.mode, "quick");
    const metrics: Record<string, Metric> = report.metrics;
    assertEquals(Object.keys(metrics).sort(), [...METRICS].sort());
    for (const id of METRICS) {
      const metric = metrics[id];
      const measured = [metric.calsync, metric.ceiling].filter((s) => s !== null) as Summary[];
      assert(measured.length > 0, `${id} has neither a calsync figure nor a ceiling`);
      for (const summary of measured) {
        assert(summary.runs.length >= 3, `${id} was measured ${summary.runs.length} times`);
        assert(summary.runs.every(Number.isFinite), `${id} has a non-finite run`);
      }
    }
    assertEquals(metrics.scheduler_double_syncs.calsync?.max, 0, "concurrent double syncs");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
