/**
 * @module The subscriber outage drill: a real daemon delivers a changing calendar's feed to a
 * subscriber that answers 503, then 429 with Retry-After, then recovers. Prints a results block
 * with PASS/FAIL per check; exit code 0 when every check passed.
 *
 *   deno task drill-subscribers        (DATABASE_URL's server, else the machine's PostgreSQL)
 */
import { openSql, type Sql } from "../../src/storage/client.ts";
import { feedBounds } from "../../src/storage/change_feed.ts";
import { type FakeGoogle, startFakeGoogle } from "../../testkit/fake_google.ts";
import { runCli, startDaemon } from "../../testkit/daemon.ts";
import { createScratchDatabase } from "../../testkit/scratch_database.ts";
import { type Receiver, startReceiver } from "../../testkit/subscriber_receiver.ts";
import { waitFor as poll } from "../../testkit/wait.ts";
import { type Check, checkDeliveries, checkReplayEqualsMirror } from "./checks.ts";
import { occurrenceKey } from "../../src/feed/replay.ts";

const RETRY_AFTER_S = 2;

type Drill = {
  sql: Sql;
  env: Record<string, string>;
  receiver: Receiver;
  subscriberId: string;
  /** Adds three events at the fake and syncs them; resolves once their changes committed. */
  change(what: string): Promise<void>;
};

/** Runs the drill; resolves to its checks. */
export async function runSubscriberOutage(
  serverUrl: string,
  log: (line: string) => void,
): Promise<Check[]> {
  const db = await createScratchDatabase(serverUrl, { purpose: "drill", prefix: "subscribers" });
  const google = startFakeGoogle({ refreshTokens: ["drill-rt"] });
  const receiver = startReceiver();
  const sql = openSql(db.url, { max: 2 });
  const env = { DATABASE_URL: db.url };
  const daemon = await startDaemon({
    ...env,
    PORT: "0",
    GOOGLE_API_BASE_URL: google.baseUrl,
    GOOGLE_TOKEN_URL: google.tokenUrl,
    SCHEDULER_POLL_INTERVAL_MS: "200",
    SUBSCRIBER_BACKOFF_BASE_MS: "100",
    SUBSCRIBER_BACKOFF_MAX_MS: "400",
  }, { readiness: "scheduler" });
  try {
    const drill = await setUp(sql, env, receiver, google);
    await outage(drill, log);
    const expected = (await sql<{ seq: number }[]>`
      select seq::float8 as seq from change_feed order by seq`).map((row) => row.seq);
    const checks = checkDeliveries(receiver.received, expected, RETRY_AFTER_S * 1000);
    const mirror = await sql<{ connection_id: string; external_event_id: string }[]>`
      select connection_id, external_event_id from external_calendar_events`;
    checks.push(checkReplayEqualsMirror(
      receiver.received,
      mirror.map((row) => occurrenceKey(row.connection_id, row.external_event_id)),
    ));
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    checks.push({
      name: "metrics count each result",
      pass: ["server_error", "rate_limited", "success"].every((result) =>
        metrics.includes(`result="${result}"`)
      ),
      detail: "calsync_subscriber_deliveries_total has server_error, rate_limited, success",
    });
    return checks;
  } finally {
    await daemon.stop();
    await sql.end({ timeout: 1 });
    await receiver.close();
    await google.close();
    await db.drop();
  }
}

/** A subscriber (added before anything changes), a provider and a connection, by the CLI. */
async function setUp(
  sql: Sql,
  env: Record<string, string>,
  receiver: Receiver,
  google: FakeGoogle,
): Promise<Drill> {
  const subscriber = JSON.parse(
    await cli(["subscribers", "add", "--url", receiver.url, "--json"], env),
  );
  receiver.secrets.push(subscriber.secret);
  await cli(["providers", "add", "--kind", "google", "--name", "drill", "--allowlisted"], env);
  const connection = (await cli(
    [
      "connections",
      "add",
      "--provider",
      "drill",
      "--calendar",
      "primary",
      "--refresh-token-file",
      "-",
    ],
    env,
    "drill-rt\n",
  )).trim();
  let n = 0;
  return {
    sql,
    env,
    receiver,
    subscriberId: subscriber.id,
    async change(what) {
      for (let i = 0; i < 3; i++) google.putEvent("primary", { summary: `${what} ${n++}` });
      await cli(["sync", "--connection", connection], env);
      // Waits for the mirror, not the feed: a feed that failed to record the changes is what
      // the checks are there to find, not a reason for the drill to stop.
      await waitFor(async () => {
        const [row] = await sql<{ n: number }[]>`
          select count(*)::int as n from external_calendar_events
          where title like ${`${what} %`}`;
        return row.n === 3;
      }, { timeoutMs: 20_000, what: `the ${what} changes to commit` });
    },
  };
}

/** 503 for a while, then 429 with Retry-After, then 200, the calendar changing throughout. */
async function outage(drill: Drill, log: (line: string) => void): Promise<void> {
  const { receiver } = drill;
  const attempts = (status: number) => receiver.received.filter((r) => r.status === status);
  log("phase 1: the subscriber answers 503");
  receiver.fallback = { status: 503 };
  await drill.change("during 503");
  await waitFor(() => attempts(503).length >= 4, { timeoutMs: 20_000, what: "503 attempts" });
  log(`phase 2: 429 with Retry-After: ${RETRY_AFTER_S}`);
  receiver.fallback = { status: 429, retryAfter: String(RETRY_AFTER_S) };
  await drill.change("during 429");
  await waitFor(() => attempts(429).length >= 2, { timeoutMs: 20_000, what: "429 attempts" });
  log("phase 3: the subscriber recovers");
  receiver.fallback = { status: 200 };
  await drill.change("after recovery");
  const head = (await feedBounds(drill.sql)).head;
  await waitFor(async () => await ackedSeq(drill.sql, drill.subscriberId) >= head, {
    timeoutMs: 30_000,
    what: `the subscriber to acknowledge ${head}`,
  });
}

async function waitFor(
  probe: () => boolean | Promise<boolean>,
  options: { timeoutMs: number; what: string },
): Promise<void> {
  const found = await poll(async () => (await probe()) || null, { timeoutMs: options.timeoutMs });
  if (!found) throw new Error(`Timed out waiting for ${options.what}`);
}

async function cli(
  args: string[],
  env: Record<string, string>,
  stdin?: string,
): Promise<string> {
  const result = await runCli(args, env, { stdin });
  if (result.code !== 0) throw new Error(`calsync ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

async function ackedSeq(sql: Sql, id: string): Promise<number> {
  const [row] = await sql<{ acked: number }[]>`
    select acked_seq::float8 as acked from change_subscribers where id = ${id}`;
  return row?.acked ?? 0;
}

/** The results block. */
export function renderChecks(checks: readonly Check[]): string {
  const lines = checks.map((c) => `- [${c.pass ? "PASS" : "FAIL"}] ${c.name}: ${c.detail}`);
  const verdict = checks.every((c) => c.pass) ? "PASS" : "FAIL";
  return `## Drill Results: subscriber outage (${verdict})\n\n${lines.join("\n")}\n`;
}

if (import.meta.main) {
  const server = Deno.env.get("DATABASE_URL") || Deno.env.get("TEST_DATABASE_URL") ||
    "postgres://postgres@127.0.0.1:5432/postgres";
  const checks = await runSubscriberOutage(server, (line) => console.error(`[drill] ${line}`));
  console.log(renderChecks(checks));
  Deno.exit(checks.every((c) => c.pass) ? 0 : 1);
}
