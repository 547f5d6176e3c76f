/**
 * @module Where a no-op sync's cost goes, in figures that survive a loaded machine: CPU per sync
 * of the daemon, of its PostgreSQL backends and of this process (the fake Google and the log
 * reader), statements per sync by kind (log_statement on the scratch database, read back from
 * the server's log), log lines per sync, and optionally a CPU profile of the daemon.
 *
 *   deno run -A bench/noop_probe.ts [--connections N] [--drains N] [--statements]
 *     [--plans] [--cpu-prof DIR] [--env NAME=VALUE ...]
 *
 * Each drain makes every connection due at once and waits until none is left, as the
 * scheduler section of `deno task bench` does; the first drain of a daemon also refreshes the
 * access tokens (cold), later ones do not (warm).
 */
import postgres from "postgres";
import { openSql } from "../src/storage/client.ts";
import type { Sql } from "../src/storage/client.ts";
import { migrate } from "../src/storage/migrate.ts";
import { startFakeGoogle } from "../testkit/fake_google.ts";
import { createScratchDatabase } from "../testkit/scratch_database.ts";
import { integerFlag, parseFlags } from "../testkit/cli_args.ts";
import { startBenchDaemon, stopDaemons } from "./bench_daemon.ts";
import { processCpuSeconds } from "./cpu_usage.ts";
import {
  countFailing,
  countPending,
  incrementalCursor,
  insertBenchProvider,
  requestAllSyncs,
  seedIdleConnections,
} from "./fixtures.ts";

const SERVER_LOG = "/var/log/postgresql/postgresql-15-main.log";
const DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/postgres";

type Options = {
  connections: number;
  drains: number;
  statements: boolean;
  plans: boolean;
  cpuProfDir: string | null;
  env: Record<string, string>;
};

const USAGE = `Usage: deno run -A bench/noop_probe.ts [--connections N] [--drains N] [--statements]
  [--plans] [--cpu-prof DIR] [--env NAME=VALUE ...]`;

function parseOptions(args: string[]): { options: Options } | { exitCode: number } {
  return parseFlags(args, {
    name: "noop_probe",
    usage: USAGE,
    flags: {
      connections: { type: "string" },
      drains: { type: "string" },
      statements: { type: "boolean" },
      plans: { type: "boolean" },
      "cpu-prof": { type: "string" },
      env: { type: "string", multiple: true },
    },
  }, (values) => ({
    connections: integerFlag(values.connections, "connections", { fallback: 3_000 }),
    drains: integerFlag(values.drains, "drains", { fallback: 2 }),
    statements: values.statements ?? false,
    plans: values.plans ?? false,
    cpuProfDir: values["cpu-prof"] ?? null,
    env: Object.fromEntries((values.env ?? []).map(envPair)),
  }));
}

function envPair(text: string): [string, string] {
  const at = text.indexOf("=");
  if (at <= 0) throw new Error(`--env must be NAME=VALUE: current value is "${text}"`);
  return [text.slice(0, at), text.slice(at + 1)];
}

function loadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
}

/** CPU seconds of every backend of `database` except this process's own ("bench"). */
async function backendCpu(sql: Sql, database: string): Promise<Map<number, number>> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity
    where datname = ${database} and application_name <> 'bench' and pid <> pg_backend_pid()`;
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    const seconds = processCpuSeconds(pid);
    if (seconds !== null) cpu.set(pid, seconds);
  }
  return cpu;
}

function cpuSince(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

/**
 * Statements the server logged for `database` since byte `offset` (log_min_duration_statement =
 * 0), grouped by their text: executions, and the server time of their parse, bind and execute.
 */
async function loggedStatements(database: string, offset: number) {
  const file = await Deno.open(SERVER_LOG);
  await file.seek(offset, Deno.SeekMode.Start);
  const text = new TextDecoder().decode(await new Response(file.readable).arrayBuffer());
  const byKind = new Map<string, { count: number; ms: number }>();
  let total = 0;
  let totalMs = 0;
  const marker = `@${database} LOG:  duration: `;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const at = lines[i].indexOf(marker);
    if (at < 0) continue;
    const match = lines[i].slice(at + marker.length)
      .match(/^([\d.]+) ms {2}(statement|execute|parse|bind)[^:]*: (.*)$/);
    if (!match) continue;
    // A statement's text continues on the lines that start with a tab.
    let statement = match[3];
    while (statement.length < 200 && lines[i + 1]?.startsWith("\t")) statement += lines[++i];
    const kind = statement.replace(/\s+/g, " ").trim().slice(0, 100);
    const entry = byKind.get(kind) ?? { count: 0, ms: 0 };
    const executes = match[2] === "statement" || match[2] === "execute";
    entry.count += executes ? 1 : 0;
    entry.ms += Number(match[1]);
    byKind.set(kind, entry);
    total += executes ? 1 : 0;
    totalMs += Number(match[1]);
  }
  return { total, totalMs, byKind };
}

/** How the claims the server logged since `offset` (auto_explain) scanned the connections. */
async function claimPlans(database: string, offset: number): Promise<Record<string, number>> {
  const file = await Deno.open(SERVER_LOG);
  await file.seek(offset, Deno.SeekMode.Start);
  const text = new TextDecoder().decode(await new Response(file.readable).arrayBuffer());
  const counts: Record<string, number> = {};
  // Each logged plan starts with "duration: ... plan:"; a claim's has LockRows.
  for (const plan of text.split(`@${database} LOG:  duration: `).slice(1)) {
    if (!plan.includes("LockRows") || !plan.includes("external_calendar_connections")) continue;
    const key = /Seq Scan on external_calendar_connections/.test(plan)
      ? "reads the whole table (Seq Scan)"
      : "index scans only";
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

async function main() {
  const parsed = parseOptions(Deno.args);
  if ("exitCode" in parsed) Deno.exit(parsed.exitCode);
  const { options } = parsed;
  const server = Deno.env.get("DATABASE_URL") || DEFAULT_SERVER;
  const scratch = await createScratchDatabase(server, { purpose: "bench", prefix: "noop" });
  console.log(`scratch database ${scratch.name}`);
  const admin = openSql(scratch.url, { max: 2, applicationName: "bench" });
  const google = startFakeGoogle();
  try {
    await migrate(admin);
    google.addRefreshToken("rt-probe");
    const providerId = await insertBenchProvider(admin, "probe");
    const connections = await seedIdleConnections(admin, {
      providerId,
      count: options.connections,
      calendarPrefix: "probe-",
      refreshToken: "rt-probe",
      cursorFor: (calendarId) => incrementalCursor(calendarId),
      syncedBefore: true,
    });
    for (const connection of connections) google.addCalendar(connection.calendarId);
    await admin`vacuum analyze external_calendar_connections`;
    if (options.statements) {
      await admin.unsafe(`alter database "${scratch.name}" set log_min_duration_statement = 0`);
    }
    if (options.plans) {
      // Which plan each claim ran with (the daemon's prepared statements, generic or custom).
      for (
        const setting of [
          "session_preload_libraries = 'auto_explain'",
          "auto_explain.log_min_duration = 0",
          "auto_explain.log_nested_statements = on",
        ]
      ) await admin.unsafe(`alter database "${scratch.name}" set ${setting}`);
    }
    // This process's own polling is not the daemon's cost: its session logs nothing.
    const sql = postgres(scratch.url, {
      max: 2,
      onnotice: () => {},
      connection: {
        application_name: "bench",
        log_min_duration_statement: "-1",
        ...(options.plans ? { "auto_explain.log_min_duration": "-1" } : {}),
      },
    }) as unknown as Sql;
    const env = {
      DATABASE_URL: scratch.url,
      GOOGLE_API_BASE_URL: google.baseUrl,
      GOOGLE_TOKEN_URL: google.tokenUrl,
      // As in the scheduler bench: the fake has no quota, so the default bucket would set the rate.
      GOOGLE_QUOTA_PER_MINUTE: "100000000",
      ...options.env,
    };
    const daemon = await startBenchDaemon(env, { cpuProfDir: options.cpuProfDir ?? undefined });
    try {
      for (let drain = 0; drain < options.drains; drain++) {
        const logOffset = options.statements || options.plans
          ? (await Deno.stat(SERVER_LOG)).size
          : 0;
        const loadBefore = loadAverage();
        const logsBefore = daemon.logs.length;
        const pgBefore = await backendCpu(sql, scratch.name);
        const daemonBefore = processCpuSeconds(daemon.process.pid) ?? 0;
        const selfBefore = processCpuSeconds(Deno.pid) ?? 0;
        const started = performance.now();
        await requestAllSyncs(sql, providerId);
        while ((await countPending(sql, providerId)) > 0) {
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
        const seconds = (performance.now() - started) / 1000;
        const daemonCpu = (processCpuSeconds(daemon.process.pid) ?? 0) - daemonBefore;
        const selfCpu = (processCpuSeconds(Deno.pid) ?? 0) - selfBefore;
        const pgCpu = cpuSince(pgBefore, await backendCpu(sql, scratch.name));
        const failing = await countFailing(sql, providerId);
        const n = options.connections;
        const ms = (s: number) => ((1000 * s) / n).toFixed(3);
        console.log(
          `drain ${drain + 1} (${drain === 0 ? "cold" : "warm"}): ${n} syncs in ` +
            `${seconds.toFixed(2)} s = ${Math.round(n / seconds)}/s; load average before ` +
            `${loadBefore}, after ${loadAverage()}; failing ${failing}`,
        );
        console.log(
          `  CPU ms per sync: daemon ${ms(daemonCpu)}, PostgreSQL backends ${ms(pgCpu)}, ` +
            `fake+probe ${ms(selfCpu)}, total ${ms(daemonCpu + pgCpu + selfCpu)}; daemon log ` +
            `lines per sync ${((daemon.logs.length - logsBefore) / n).toFixed(2)}`,
        );
        if (options.plans) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          console.log(
            `  claim plans: ${JSON.stringify(await claimPlans(scratch.name, logOffset))}`,
          );
        }
        if (options.statements) {
          await new Promise((resolve) => setTimeout(resolve, 500));
          const logged = await loggedStatements(scratch.name, logOffset);
          console.log(
            `  statements per sync: ${(logged.total / n).toFixed(2)}; server time per sync ` +
              `${(logged.totalMs / n).toFixed(3)} ms (per statement kind: executions per sync, ` +
              `server ms per sync)`,
          );
          const kinds = [...logged.byKind].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
          for (const [kind, { count, ms }] of kinds) {
            console.log(
              `    ${(count / n).toFixed(3).padStart(7)} ${
                (ms / n).toFixed(3).padStart(7)
              }  ${kind}`,
            );
          }
        }
      }
    } finally {
      await stopDaemons([daemon]);
      await sql.end({ timeout: 1 });
    }
  } finally {
    await google.close();
    await admin.end({ timeout: 1 });
    await scratch.drop();
  }
}

if (import.meta.main) await main();
