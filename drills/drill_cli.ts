/** @module `calsync drill`: runs the automated outage drill and prints the filled-in results block. */
import { parseArgs } from "node:util";
import { join } from "node:path";
import type { DrillEnvironment } from "./drill/environment.ts";
import type { ProviderKind, ScenarioName } from "./drill/evidence.ts";
import { renderMarkdown, renderText } from "./drill/report_render.ts";
import { runDrill } from "./drill/run_drill.ts";

const USAGE = `Usage: calsync drill [--scenario api|database|webhook] [--provider google|microsoft]
                    [--out DIR] [--keep]

Runs shared/outage-drill.md end to end against a real daemon (main.ts serve), fake Google and
Microsoft servers, a fault-injecting database proxy and a webhook gate. Uses a scratch database
on DATABASE_URL's server (created and dropped), or an embedded PostgreSQL when it is unset.

  --scenario  one scenario, or a comma-separated list (default: all three)
  --provider  one provider, or a comma-separated list (default: both)
  --out DIR   also write DIR/drill-report.md, DIR/drill-report.json and the daemon's log
              lines as DIR/daemon-log.jsonl
  --keep      leave everything running for inspection until Ctrl-C (the database stays)

Exit codes: 0 every check passed, 1 a check failed or the drill could not run, 2 bad arguments.
`;

const SCENARIOS: readonly ScenarioName[] = ["api", "database", "webhook"];
const PROVIDERS: readonly ProviderKind[] = ["google", "microsoft"];

const encoder = new TextEncoder();
const write = (stream: { writeSync(p: Uint8Array): number }, text: string) => {
  const bytes = encoder.encode(text);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
};

function pick<T extends string>(value: string | undefined, all: readonly T[], name: string): T[] {
  if (value === undefined || value === "all") return [...all];
  const picked = value.split(",").map((item) => item.trim()).filter(Boolean);
  const unknown = picked.filter((item) => !(all as readonly string[]).includes(item));
  if (picked.length === 0 || unknown.length > 0) {
    throw new Error(`--${name} must be one or more of ${all.join(", ")}: got "${value}"`);
  }
  // Keep the document's order whatever order was typed.
  return all.filter((item) => picked.includes(item));
}

function inspectionHelp(env: DrillEnvironment): string {
  const query = "SELECT id, provider_id, error_count, last_error, backoff_until, sync_needed " +
    "FROM external_calendar_connections;";
  const fakes = [...env.providers.values()].map((p) =>
    `  fake ${p.kind}: ${Object.values(p.env)[0]}`
  );
  return [
    "",
    "--keep: the drill environment stays up until Ctrl-C.",
    `  daemon:      ${env.daemon.url} (pid ${env.daemon.process.pid}); curl ${env.daemon.url}/metrics`,
    `  database:    psql '${env.db.roleUrl}'`,
    `  verify:      psql '${env.db.roleUrl}' -c '${query}'`,
    `  fault proxy: 127.0.0.1:${env.proxy.port} (the daemon's DATABASE_URL)`,
    `  webhooks:    ${env.gate.url} (the daemon's CALSYNC_PUBLIC_URL)`,
    ...fakes,
    `After Ctrl-C the processes stop; the scratch database stays. Drop it with:`,
    `  DROP DATABASE "${env.db.name}" WITH (FORCE); DROP ROLE "${env.db.name}";`,
    ...(env.db.embeddedDir
      ? [`  (embedded server data in ${env.db.embeddedDir}; stop it with pg_ctl stop -D ...)`]
      : []),
    "",
  ].join("\n");
}

function waitForInterrupt(): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      resolve();
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
}

/** Runs the drill with CLI arguments; returns the exit code. */
export async function runDrillCli(args: string[]): Promise<number> {
  let scenarios: ScenarioName[];
  let providers: ProviderKind[];
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        scenario: { type: "string" },
        provider: { type: "string" },
        out: { type: "string" },
        keep: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }).values;
    scenarios = pick(values.scenario, SCENARIOS, "scenario");
    providers = pick(values.provider, PROVIDERS, "provider");
  } catch (error) {
    write(Deno.stderr, `calsync drill: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    write(Deno.stdout, USAGE);
    return 0;
  }
  const keep = values.keep === true;
  // Ctrl-C stops the drill between scenarios and still drops what it created; a second one
  // leaves at once.
  const interrupted = new AbortController();
  const onSignal = () => {
    if (interrupted.signal.aborted) Deno.exit(130);
    write(Deno.stderr, "[drill] interrupted: finishing the current scenario, then cleaning up\n");
    interrupted.abort();
  };
  Deno.addSignalListener("SIGINT", onSignal);
  let run;
  try {
    run = await runDrill({
      scenarios,
      providers,
      databaseUrl: Deno.env.get("DATABASE_URL") || undefined,
      keep,
      progress: (line) => write(Deno.stderr, `[drill] ${line}\n`),
      signal: interrupted.signal,
    });
  } catch (error) {
    write(Deno.stderr, `calsync drill: cannot run the drill: ${(error as Error).message}\n`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  if (interrupted.signal.aborted) {
    write(Deno.stderr, "[drill] interrupted: the report covers only what ran\n");
  }
  const { report, daemonLog, environment } = run;
  write(Deno.stdout, renderText(report));
  if (values.out) {
    await Deno.mkdir(values.out, { recursive: true });
    await Deno.writeTextFile(join(values.out, "drill-report.md"), renderMarkdown(report));
    await Deno.writeTextFile(
      join(values.out, "drill-report.json"),
      JSON.stringify(report, null, 2) + "\n",
    );
    // The daemon's own JSON log lines, for whoever has to explain a failed check.
    await Deno.writeTextFile(
      join(values.out, "daemon-log.jsonl"),
      daemonLog.map((line) => JSON.stringify(line)).join("\n") + "\n",
    );
    write(
      Deno.stderr,
      `[drill] report written to ${values.out}/drill-report.{md,json} (daemon log: daemon-log.jsonl)\n`,
    );
  }
  if (environment) {
    write(Deno.stderr, inspectionHelp(environment));
    await waitForInterrupt();
    await environment.teardown({ keep: true });
  }
  return report.passed && !interrupted.signal.aborted ? 0 : 1;
}
