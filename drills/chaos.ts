/** @module `deno task chaos`: the chaos soak with a convergence check (see drills/chaos/). */
import { parseArgs } from "node:util";
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

function positive(value: string | undefined, fallback: number, name: string, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer of at least ${min}: got "${value}"`);
  }
  return n;
}

/** Parses the arguments, runs the soak, prints the summary; resolves to the exit code. */
export async function chaosMain(args: string[]): Promise<number> {
  let options;
  try {
    const { values } = parseArgs({
      args,
      options: {
        duration: { type: "string" },
        seed: { type: "string" },
        replicas: { type: "string" },
        connections: { type: "string" },
        "settle-timeout": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const seed = values.seed === undefined ? randomSeed() : positive(values.seed, 0, "seed", 0);
    if (seed > 0xffff_ffff) throw new Error(`--seed must be below 2^32: got "${values.seed}"`);
    options = {
      seed,
      durationMs: positive(values.duration, 60, "duration") * 1000,
      replicas: positive(values.replicas, 3, "replicas", 2),
      connections: positive(values.connections, 32, "connections", 2),
      settleTimeoutMs: positive(values["settle-timeout"], 45, "settle-timeout") * 1000,
    };
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
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
