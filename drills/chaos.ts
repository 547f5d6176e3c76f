/** @module `deno task chaos`: the chaos soak with a convergence check (see drills/chaos/). */
import { integerFlag, parseFlags } from "../testkit/cli_args.ts";
import { randomSeed } from "./chaos/prng.ts";
import { renderSummary } from "./chaos/report.ts";
import { runChaos } from "./chaos/run_chaos.ts";

const USAGE = `Usage: deno task chaos [--duration S] [--seed N] [--replicas N] [--connections N]
                       [--settle-timeout S]

Runs several calsync replicas (main.ts serve) on one scratch database, each behind its own
fault proxy, with many connections on the fake Google and Microsoft servers whose calendars keep
changing and whose pushes arrive duplicated and retried. For --duration seconds it injects
random faults drawn from a seeded PRNG (provider 503/429/hang/malformed/410, database resets,
refused connects and mid-transaction cuts, the webhook endpoint down, one replica SIGKILLed and
restarted), then lets calsync settle and checks convergence. Uses a scratch database on
DATABASE_URL's server (created and dropped), or an embedded PostgreSQL when it is unset.

  --duration S        seconds of fault injection (default 60)
  --seed N            replays a run's fault schedule (default: random, printed)
  --replicas N        daemon replicas, at least 2 (default 3)
  --connections N     connections, split over both providers, at least 2 (default 32)
  --settle-timeout S  how long calsync may take to converge afterwards (default 45)

Exit codes: 0 every check passed, 1 a violation or the soak could not run, 2 bad arguments.
`;

const FLAGS = {
  duration: { type: "string" },
  seed: { type: "string" },
  replicas: { type: "string" },
  connections: { type: "string" },
  "settle-timeout": { type: "string" },
} as const;

/** Parses the arguments, runs the soak, prints the summary; resolves to the exit code. */
export async function chaosMain(args: string[]): Promise<number> {
  const parsed = parseFlags(
    args,
    { name: "chaos", usage: USAGE, flags: FLAGS },
    (values) => ({
      seed: integerFlag(values.seed, "seed", { fallback: randomSeed(), min: 0, max: 0xffff_ffff }),
      durationMs: integerFlag(values.duration, "duration", { fallback: 60 }) * 1000,
      replicas: integerFlag(values.replicas, "replicas", { fallback: 3, min: 2 }),
      connections: integerFlag(values.connections, "connections", { fallback: 32, min: 2 }),
      settleTimeoutMs: integerFlag(values["settle-timeout"], "settle-timeout", { fallback: 45 }) *
        1000,
    }),
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const options = parsed.options;
  // The seed first, so even a run that crashes can be replayed.
  console.log(`seed: ${options.seed}`);
  try {
    const outcome = await runChaos({
      ...options,
      databaseUrl: Deno.env.get("DATABASE_URL") || undefined,
      pushDuplicateRate: 0.3,
      log: (text) => console.error(`[chaos] ${text}`),
    });
    // The timeline goes to stderr with the progress lines: what to look at when replaying.
    for (const f of outcome.figures.injection.timeline) {
      console.error(`[chaos] +${(f.at / 1000).toFixed(1)} s ${f.kind} ${f.detail}`);
    }
    console.log(renderSummary(outcome.figures, outcome.checks));
    return outcome.passed ? 0 : 1;
  } catch (error) {
    console.error(`Cannot run the chaos soak: ${(error as Error).stack ?? error}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await chaosMain(Deno.args));
