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
import { runSubscriberScenario } from "./scenario_subscriber.ts";
import {
  FRESHNESS_SETTINGS,
  FRESHNESS_VARIANTS,
  runFreshnessScenario,
} from "./scenario_freshness.ts";

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

/** Sets up an environment and says where its daemon runs. */
async function environmentFor(
  options: DrillOptions,
  scenarios: ScenarioName[],
  extra: Pick<Parameters<typeof setUpEnvironment>[0], "settings" | "variants"> = {},
): Promise<DrillEnvironment> {
  options.progress(
    `setting up for ${scenarios.join(", ")}: database, fault proxy, fake providers, daemon`,
  );
  const env = await setUpEnvironment({
    databaseUrl: options.databaseUrl,
    kinds: options.providers,
    scenarios,
    ...extra,
  });
  options.progress(
    `daemon ${env.daemon.url} (pid ${env.daemon.process.pid}) on ${env.db.description}; webhooks ` +
      (env.webhooks.available ? "available" : `unavailable: ${env.webhooks.note}`),
  );
  return env;
}

/**
 * The freshness scenario runs in an environment of its own: its compressed poll and
 * reconciliation intervals would add syncs to every other scenario's evidence.
 */
async function runFreshness(options: DrillOptions, keep: boolean): Promise<{
  result: ScenarioResult;
  env: DrillEnvironment;
}> {
  const env = await environmentFor(options, ["freshness"], {
    settings: FRESHNESS_SETTINGS,
    variants: { freshness: FRESHNESS_VARIANTS },
  });
  try {
    const began = performance.now();
    options.progress(`scenario freshness: ${options.providers.join(", ")}`);
    const result = await guarded(
      "freshness",
      options.providers,
      () => runFreshnessScenario(env, options.providers),
    );
    options.progress(
      `scenario freshness done in ${((performance.now() - began) / 1000).toFixed(1)} s`,
    );
    return { result, env };
  } finally {
    if (!keep) await env.teardown({ keep: false });
  }
}

/** The database server of scenarios that bring their own scratch databases; never a password. */
function describeServer(databaseUrl: string | undefined): string {
  if (databaseUrl === undefined) return "embedded";
  const url = new URL(databaseUrl);
  return `${url.hostname}:${url.port || 5432} (scratch databases)`;
}

/** Runs the drill and returns its report; throws only when the environment cannot be set up. */
export async function runDrill(options: DrillOptions): Promise<DrillRun> {
  const startedAt = new Date();
  // freshness and subscriber bring environments of their own.
  const outageScenarios = options.scenarios.filter((s) => s !== "freshness" && s !== "subscriber");
  const results: ScenarioResult[] = [];
  const logs: Record<string, unknown>[] = [];
  let kept: DrillEnvironment | null = null;
  let webhooks = { available: true, note: "" };
  let database = "";
  const strayLines: string[] = [];
  if (outageScenarios.length > 0) {
    const env = await environmentFor(options, outageScenarios);
    try {
      results.push(...await runOutageScenarios(env, options, outageScenarios));
    } finally {
      if (!options.keep) await env.teardown({ keep: false });
    }
    ({ webhooks, database } = { webhooks: env.webhooks, database: env.db.description });
    logs.push(...env.daemon.logs);
    strayLines.push(...env.daemon.strayLines);
    kept = env;
  }
  if (options.scenarios.includes("freshness") && !options.signal?.aborted) {
    // --keep leaves one environment up: the first one.
    const { result, env } = await runFreshness(options, options.keep && kept === null);
    results.push(result);
    if (!env.webhooks.available) webhooks = env.webhooks;
    database ||= env.db.description;
    logs.push(...env.daemon.logs);
    strayLines.push(...env.daemon.strayLines);
    kept ??= env;
  }
  if (options.scenarios.includes("subscriber") && !options.signal?.aborted) {
    options.progress("scenario subscriber: its own daemon, database and receiver");
    results.push(
      await guarded(
        "subscriber",
        ["google"],
        () => runSubscriberScenario(options.databaseUrl, options.progress),
      ),
    );
  }
  database ||= describeServer(options.databaseUrl);
  const merged = mergeResults(results);
  if (strayLines.length > 0) {
    merged.notes.push(
      `the daemon wrote ${strayLines.length} non-JSON output lines, e.g. ${strayLines[0]}`,
    );
  }
  const report = buildReport({
    startedAt,
    finishedAt: new Date(),
    database,
    providers: options.providers,
    scenarios: options.scenarios,
    webhooks,
    result: merged,
  });
  return { report, daemonLog: logs, environment: options.keep ? kept : null };
}

/** The drill document's three scenarios, in one environment. */
async function runOutageScenarios(
  env: DrillEnvironment,
  options: DrillOptions,
  scenarios: ScenarioName[],
): Promise<ScenarioResult[]> {
  const { progress } = options;
  const results: ScenarioResult[] = [];
  for (const scenario of scenarios) {
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
          options.providers.map((kind) => guarded("api", [kind], () => runApiScenario(env, kind))),
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
  return results;
}
