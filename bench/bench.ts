/**
 * @module `deno task bench`: measures calsync's hot paths beside the machine's own ceilings, in
 * one run on one database server, and prints metric | calsync | ceiling | ratio | notes.
 *
 *   deno task bench [--quick] [--json FILE] [--reps N] [--only SECTION,...] [--deno-load]
 *                   [--cpu-prof DIR]   (the webhook daemon under --cpu-prof; see profile_summary.ts)
 *   deno task bench --scale [--rows N] [--cycles C]   (the tables at N connections, default
 *                                       1,000,000; C claim/complete cycles, default N)
 *
 * Sections: webhooks, webhook_to_sync, full_sync, scheduler, change_feed. The database server is
 * DATABASE_URL, else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres; the run
 * creates a scratch database there and drops it at the end. The webhook load comes from wrk when
 * it is installed (Debian: apt-get install wrk), else (or with --deno-load) from a Deno load
 * generator; the report says which ran.
 */
import { choicesFlag, integerFlag, parseFlags } from "../testkit/cli_args.ts";
import { createScratchDatabase, migrateScratchDatabase } from "../testkit/scratch_database.ts";
import { benchFullSync, type FullSyncSize } from "./full_sync_bench.ts";
import { hasWrk } from "./load_generator.ts";
import { type BenchContext, formatTable, reportDocument, type Row } from "./report.ts";
import { benchScale, type ScalePlan } from "./scale_bench.ts";
import { benchScheduler } from "./scheduler_bench.ts";
import { benchChangeFeed, type ChangeFeedPlan } from "./change_feed_bench.ts";
import { benchWebhookIngestion } from "./webhook_bench.ts";
import { benchWebhookToSync } from "./webhook_to_sync_bench.ts";

/** The sizes of one run. */
export type BenchPlan = {
  fullSync: FullSyncSize[];
  schedulerConnections: number;
  webhookConnections: number;
  webhookSeconds: number;
  webhookToSyncSamples: number;
  reps: number;
  changeFeed: ChangeFeedPlan;
};

/** The sizes: about 5 minutes on a 2-core machine. */
export const FULL_PLAN: BenchPlan = {
  fullSync: [{ key: "small", events: 10_000 }, { key: "large", events: 100_000 }],
  schedulerConnections: 10_000,
  webhookConnections: 1_000,
  webhookSeconds: 5,
  webhookToSyncSamples: 200,
  reps: 3,
  changeFeed: { syncEvents: 10_000, deliveries: 2_000, latencySamples: 200 },
};

/** Small sizes for the smoke test: every metric, none of them meaningful as a figure. */
export const QUICK_PLAN: BenchPlan = {
  fullSync: [{ key: "small", events: 1_000 }, { key: "large", events: 5_000 }],
  schedulerConnections: 300,
  webhookConnections: 50,
  webhookSeconds: 1,
  webhookToSyncSamples: 20,
  reps: 3,
  changeFeed: { syncEvents: 1_000, deliveries: 100, latencySamples: 20 },
};

/** The default server: the machine's own PostgreSQL, as the tests use it. */
const DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres";

const SECTIONS = ["webhooks", "webhook_to_sync", "full_sync", "scheduler", "change_feed"] as const;
type Section = typeof SECTIONS[number];

const FLAGS = {
  quick: { type: "boolean" },
  json: { type: "string" },
  reps: { type: "string" },
  only: { type: "string" },
  "deno-load": { type: "boolean" },
  "cpu-prof": { type: "string" },
  scale: { type: "boolean" },
  rows: { type: "string" },
  cycles: { type: "string" },
} as const;

const USAGE = "Usage: deno task bench [--quick] [--json FILE] [--reps N] " +
  `[--only ${SECTIONS.join(",")}] [--deno-load] [--cpu-prof DIR] | --scale [--rows N] ` +
  "[--cycles C]";

/** Runs the benchmark with command-line arguments; resolves to the exit code. */
export async function runBench(args: string[]): Promise<number> {
  const parsed = parseFlags(
    args,
    { name: "bench", usage: USAGE, flags: FLAGS },
    (values) => {
      const quick = values.quick === true;
      const base = quick ? QUICK_PLAN : FULL_PLAN;
      const rows = integerFlag(values.rows, "rows", { fallback: 1_000_000 });
      return {
        quick,
        json: values.json,
        denoLoad: values["deno-load"] === true,
        cpuProfDir: values["cpu-prof"],
        plan: { ...base, reps: integerFlag(values.reps, "reps", { fallback: base.reps }) },
        only: choicesFlag(values.only, "only", SECTIONS),
        scale: values.scale === true,
        scalePlan: { rows, cycles: integerFlag(values.cycles, "cycles", { fallback: rows }) },
      };
    },
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const { quick, json, denoLoad, plan, only, cpuProfDir } = parsed.options;
  if (parsed.options.scale) return await runScale(parsed.options.scalePlan);
  const started = performance.now();
  const ctx: BenchContext = {
    reps: plan.reps,
    quick,
    denoLoad,
    cpuProfDir,
    log: (message) =>
      console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`),
  };
  const server = Deno.env.get("DATABASE_URL") || Deno.env.get("TEST_DATABASE_URL") ||
    DEFAULT_SERVER;
  // Large enough for the bulk ceilings and the pollers; statements may run for a while.
  const db = await migrateScratchDatabase(
    await createScratchDatabase(server, { purpose: "bench" }),
    { max: 8, statementTimeoutMs: 600_000, applicationName: "bench" },
  );
  ctx.log(`scratch database ${db.description}`);
  const rows: Row[] = [];
  let serverVersion = "unknown";
  try {
    const [version] = await db.sql<{ v: string }[]>`select current_setting('server_version') as v`;
    serverVersion = version.v;
    const run: Record<Section, () => Promise<Row[]>> = {
      webhooks: () =>
        benchWebhookIngestion(ctx, db, {
          connections: plan.webhookConnections,
          seconds: plan.webhookSeconds,
        }),
      webhook_to_sync: () => benchWebhookToSync(ctx, db, plan.webhookToSyncSamples),
      full_sync: () => benchFullSync(ctx, db, plan.fullSync),
      scheduler: () => benchScheduler(ctx, db, plan.schedulerConnections),
      change_feed: () => benchChangeFeed(ctx, db, plan.changeFeed),
    };
    for (const section of SECTIONS) {
      if (!only.includes(section)) continue;
      ctx.log(`${section}: starting`);
      rows.push(...await run[section]());
    }
  } finally {
    await db.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const meta = {
    generatedAt: new Date().toISOString(),
    mode: quick ? "quick" : "full",
    reps: plan.reps,
    durationSeconds: Math.round(seconds),
    machine: {
      cpus: navigator.hardwareConcurrency,
      memoryBytes: Deno.systemMemoryInfo().total,
      os: `${Deno.build.os} ${Deno.osRelease()}`,
      deno: Deno.version.deno,
      postgres: serverVersion,
      loadGenerator: !denoLoad && (await hasWrk()) ? "wrk" : "deno",
    },
    plan,
  };
  console.log(formatTable(rows));
  console.log(
    `\n${rows.length} metrics, median (min–max) of ${plan.reps} runs each, in ` +
      `${Math.round(seconds)} s; ratio: share of the ceiling for throughput, multiple of it ` +
      `for time and latency.`,
  );
  if (json) {
    await Deno.writeTextFile(json, JSON.stringify(reportDocument(meta, rows), null, 2));
    ctx.log(`wrote ${json}`);
  }
  return 0;
}

/** `--scale`: the tables at `rows` connections on scratch databases, printed as Markdown. */
async function runScale(plan: ScalePlan): Promise<number> {
  const started = performance.now();
  const log = (message: string) =>
    console.error(`[bench ${((performance.now() - started) / 1000).toFixed(0)}s] ${message}`);
  const server = Deno.env.get("DATABASE_URL") || Deno.env.get("TEST_DATABASE_URL") ||
    DEFAULT_SERVER;
  const report = await benchScale(server, plan, log);
  console.log(report.lines.join("\n"));
  console.log(
    `\n--scale --rows ${plan.rows} --cycles ${plan.cycles} in ` +
      `${Math.round((performance.now() - started) / 1000)} s`,
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await runBench(Deno.args));
}
