/** @module `calsync drill`: runs the automated outage drill and prints the filled-in results block. */
import { join } from "node:path";
import { choicesFlag, parseFlags, writeAll } from "../testkit/cli_args.ts";
import type { DrillEnvironment } from "./drill/environment.ts";
import type { ProviderKind, ScenarioName } from "./drill/evidence.ts";
import { renderMarkdown, renderText } from "./drill/report_render.ts";
import { runDrill } from "./drill/run_drill.ts";
import { renderHtmlReport } from "./drill/report_html.ts";

const USAGE = `Usage: calsync drill [--scenario api|database|webhook|freshness|subscriber|outage]
                    [--provider google|microsoft]
                    [--out DIR] [--keep]

Runs shared/outage-drill.md end to end against a real daemon (main.ts serve), fake Google and
Microsoft servers, a fault-injecting database proxy and a webhook gate. Uses a scratch database
on DATABASE_URL's server (created and dropped), or an embedded PostgreSQL when it is unset.

  --scenario  one scenario, or a comma-separated list (default: all of
              api,database,webhook,freshness,subscriber,outage; freshness runs in an environment
              of its own with poll and reconciliation intervals of seconds; subscriber, a
              change-feed subscriber answering 503 then 429, runs its own daemon; outage is the
              provider-wide outage of 200 connections per provider)
  --provider  one provider, or a comma-separated list (default: both)
  --out DIR   also write DIR/drill-report.md, DIR/drill-report.json, DIR/report.html (checks,
              evidence and a timeline per scenario) and the daemon's log lines as
              DIR/daemon-log.jsonl
  --keep      leave everything running for inspection until Ctrl-C (the database stays)

Exit codes: 0 every check passed, 1 a check failed or the drill could not run, 2 bad arguments.
`;

const SCENARIOS: readonly ScenarioName[] = [
  "api",
  "database",
  "webhook",
  "freshness",
  "subscriber",
  "outage",
];
const DEFAULT_SCENARIOS = SCENARIOS.join(",");
const PROVIDERS: readonly ProviderKind[] = ["google", "microsoft"];

const FLAGS = {
  scenario: { type: "string" },
  provider: { type: "string" },
  out: { type: "string" },
  keep: { type: "boolean" },
} as const;

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
  const parsed = parseFlags(
    args,
    { name: "calsync drill", usage: USAGE, flags: FLAGS },
    (values) => ({
      // In the document's order whatever order was typed.
      scenarios: choicesFlag(values.scenario ?? DEFAULT_SCENARIOS, "scenario", SCENARIOS),
      providers: choicesFlag(values.provider, "provider", PROVIDERS),
      out: values.out,
      keep: values.keep === true,
    }),
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const { scenarios, providers, out, keep } = parsed.options;
  // Ctrl-C stops the drill between scenarios and still drops what it created; a second one
  // leaves at once.
  const interrupted = new AbortController();
  const onSignal = () => {
    if (interrupted.signal.aborted) Deno.exit(130);
    writeAll(
      Deno.stderr,
      "[drill] interrupted: finishing the current scenario, then cleaning up\n",
    );
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
      progress: (line) => writeAll(Deno.stderr, `[drill] ${line}\n`),
      signal: interrupted.signal,
    });
  } catch (error) {
    writeAll(Deno.stderr, `calsync drill: cannot run the drill: ${(error as Error).message}\n`);
    return 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
  }
  if (interrupted.signal.aborted) {
    writeAll(Deno.stderr, "[drill] interrupted: the report covers only what ran\n");
  }
  const { report, daemonLog, environment } = run;
  writeAll(Deno.stdout, renderText(report));
  if (out) {
    await Deno.mkdir(out, { recursive: true });
    await Deno.writeTextFile(join(out, "drill-report.md"), renderMarkdown(report));
    await Deno.writeTextFile(
      join(out, "drill-report.json"),
      JSON.stringify(report, null, 2) + "\n",
    );
    await Deno.writeTextFile(join(out, "report.html"), await renderHtmlReport(report));
    // The daemon's own JSON log lines, for whoever has to explain a failed check.
    await Deno.writeTextFile(
      join(out, "daemon-log.jsonl"),
      daemonLog.map((line) => JSON.stringify(line)).join("\n") + "\n",
    );
    writeAll(
      Deno.stderr,
      `[drill] report written to ${out}/drill-report.{md,json} and ${out}/report.html ` +
        "(daemon log: daemon-log.jsonl)\n",
    );
  }
  if (environment) {
    writeAll(Deno.stderr, inspectionHelp(environment));
    await waitForInterrupt();
    await environment.teardown({ keep: true });
  }
  return report.passed && !interrupted.signal.aborted ? 0 : 1;
}
