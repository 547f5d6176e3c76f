/** @module Runs the drill: sets up, runs each selected scenario for each provider, reports. */
import { outcome } from "./diagnosis.ts";
import { type DrillEnvironment, setUpEnvironment } from "./environment.ts";
import type { ProviderKind, ScenarioName } from "./evidence.ts";
import { createRecorder, emptyResult, mergeResults, type ScenarioResult } from "./records.ts";
import { buildReport, type DrillReport } from "./report.ts";
import { runApiScenario } from "./scenario_api.ts";
import { runDatabaseScenario } from "./scenario_database.ts";
import { runProviderOutageScenario } from "./scenario_provider_outage.ts";
import { runWebhookScenario } from "./scenario_webhook.ts";

/** What to run, against which database. */
export type DrillOptions = {
  scenarios: ScenarioName[];
  providers: ProviderKind[];
  /** The server to create the scratch database on; undefined starts an embedded one. */
  databaseUrl: string | undefined;
  /** Leave the environment running (and the scratch database in place) for inspection. */
  keep: boolean;
  /** Progress lines (stderr in the CLI). */
  progress: (line: string) => void;
  /** Aborting skips the scenarios not yet started; the environment is still torn down. */
  signal?: AbortSignal;
};

/** The finished report, the daemon's log lines, and the environment when `keep` left it up. */
export type DrillRun = {
  report: DrillReport;
  daemonLog: readonly Record<string, unknown>[];
  environment: DrillEnvironment | null;
};

// A scenario that throws is itself a failed check: the drill reports it and goes on.
async function guarded(
  scenario: ScenarioName,
  kinds: readonly ProviderKind[],
  run: () => Promise<ScenarioResult>,
): Promise<ScenarioResult> {
  try {
    return await run();
  } catch (error) {
    const result = emptyResult();
    for (const provider of kinds) {
      createRecorder({ scenario, variant: "run", provider }, result).check(
        "outage",
        "scenario ran to completion",
        outcome(false, `the drill could not finish it: ${(error as Error).message}`, null),
      );
    }
    return result;
  }
}

/** Runs the drill and returns its report; throws only when the environment cannot be set up. */
export async function runDrill(options: DrillOptions): Promise<DrillRun> {
  const startedAt = new Date();
  const { progress } = options;
  progress(`setting up: database, fault proxy, fake providers, daemon under test`);
  const env = await setUpEnvironment({
    databaseUrl: options.databaseUrl,
    kinds: options.providers,
    scenarios: options.scenarios,
  });
  progress(
    `daemon ${env.daemon.url} (pid ${env.daemon.process.pid}) on ${env.db.description}; webhooks ` +
      (env.webhooks.available ? "available" : `unavailable: ${env.webhooks.note}`),
  );
  const results: ScenarioResult[] = [];
  try {
    for (const scenario of options.scenarios) {
      if (options.signal?.aborted) {
        progress(`interrupted: skipping scenario ${scenario}`);
        continue;
      }
      const began = performance.now();
      progress(`scenario ${scenario}: ${options.providers.join(", ")}`);
      if (scenario === "api") {
        // Providers are independent here (own fake, own connection, own metric labels).
        results.push(
          ...await Promise.all(
            options.providers.map((kind) =>
              guarded("api", [kind], () => runApiScenario(env, kind))
            ),
          ),
        );
      } else if (scenario === "database") {
        // The database fails for every provider at once, as it would in production.
        results.push(
          await guarded(
            "database",
            options.providers,
            () => runDatabaseScenario(env, options.providers),
          ),
        );
      } else if (scenario === "outage") {
        // Each provider has its own fake and breaker: their outages are independent.
        results.push(
          ...await Promise.all(
            options.providers.map((kind) =>
              guarded("outage", [kind], () => runProviderOutageScenario(env, kind))
            ),
          ),
        );
      } else {
        // One public webhook address: its outage would mix the providers' retries.
        for (const kind of options.providers) {
          results.push(await guarded("webhook", [kind], () => runWebhookScenario(env, kind)));
        }
      }
      progress(`scenario ${scenario} done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
    }
  } finally {
    if (!options.keep) await env.teardown({ keep: false });
  }
  const merged = mergeResults(results);
  const stray = env.daemon.strayLines;
  if (stray.length > 0) {
    merged.notes.push(`the daemon wrote ${stray.length} non-JSON output lines, e.g. ${stray[0]}`);
  }
  const report = buildReport({
    startedAt,
    finishedAt: new Date(),
    database: env.db.description,
    providers: options.providers,
    scenarios: options.scenarios,
    webhooks: env.webhooks,
    result: merged,
  });
  return { report, daemonLog: env.daemon.logs, environment: options.keep ? env : null };
}
