/**
 * @module Ceiling (a) of webhook ingestion: `pgbench` running the webhook's write against the
 * scratch database at the same concurrency, as one CTE statement and as BEGIN/INSERT/UPDATE/COMMIT.
 */
import { SYNC_CHANNEL } from "../src/storage/connections.ts";

/** Where pgbench usually is on Debian; PATH is tried first. */
const PGBENCH_PATHS = ["pgbench", "/usr/bin/pgbench", "/usr/lib/postgresql/15/bin/pgbench"];

/** The two shapes of the webhook write. */
export type WebhookWriteShape = "cte" | "four_statements";

/** What one pgbench run measured. */
export type PgbenchResult = { tps: number; latencyMs: number; failed: number };

/** Finds a runnable pgbench, or null. */
export async function findPgbench(): Promise<string | null> {
  for (const candidate of PGBENCH_PATHS) {
    try {
      const output = await new Deno.Command(candidate, { args: ["--version"], stdout: "null" })
        .output();
      if (output.success) return candidate;
    } catch {
      // Not here; try the next one.
    }
  }
  return null;
}

/**
 * The pgbench script. The CTE is `recordGoogleNotification` (src/storage/webhook_dedupe_keys.ts) with pgbench
 * variables in place of parameters: keep the two in step. Channel ids are `<prefix><n>`.
 */
export function webhookWriteScript(
  shape: WebhookWriteShape,
  channelPrefix: string,
  channels: number,
): string {
  const chan = `('${channelPrefix}' || cast(:c as int))`;
  const key =
    `('google:' || ${chan} || '-p' || cast(:client_id as int) || '-' || cast(:n as bigint))`;
  const head = `\\set c random(1, ${channels})\n\\set n random(1, 4000000000000000)\n`;
  if (shape === "four_statements") {
    // The reference shape: the same rows written in four round trips (and no NOTIFY).
    return head + `BEGIN;
insert into webhook_dedupe_keys (key, provider, connection_id) select ${key}, 'google', connection_id from webhook_channels where provider = 'google' and channel_id = ${chan} on conflict (key) do nothing;
update external_calendar_connections c set sync_requested_seq = c.sync_requested_seq + 1, due_at = ${DUE_AT}, sync_needed = true, updated_at = now() from webhook_channels w where w.provider = 'google' and w.channel_id = ${chan} and c.id = w.connection_id;
COMMIT;
`;
  }
  return head + [
    `with channel as ( select connection_id from webhook_channels where provider = 'google' and channel_id = ${chan} ),`,
    `inserted as ( insert into webhook_dedupe_keys (key, provider, connection_id) select ${key}, 'google', connection_id from channel on conflict (key) do nothing returning connection_id ),`,
    `previous as ( select c.id, c.sync_needed from external_calendar_connections c join inserted on inserted.connection_id = c.id for update of c ),`,
    `requested as ( update external_calendar_connections c set sync_requested_seq = c.sync_requested_seq + 1, due_at = ${DUE_AT}, sync_needed = true, updated_at = now() from previous where c.id = previous.id returning c.id, previous.sync_needed as was_needed )`,
    `select exists (select 1 from channel) as known, exists (select 1 from inserted) as fresh, (select count(pg_notify('${SYNC_CHANNEL}', r.id::text)) from requested r where not r.was_needed)::int as notified;`,
  ].join(" ") + "\n";
}

const DUE_AT = "case when c.lease_owner is not null and c.lease_expires_at > now() " +
  "then c.lease_expires_at else greatest(now(), coalesce(c.backoff_until, now())) end";

/** Runs pgbench with `clients` connections for `seconds` (prepared statements, like postgres.js). */
export async function runPgbench(
  pgbench: string,
  input: { url: string; script: string; clients: number; seconds: number },
): Promise<PgbenchResult> {
  const file = await Deno.makeTempFile({ prefix: "calsync-bench-", suffix: ".sql" });
  try {
    await Deno.writeTextFile(file, input.script);
    const output = await new Deno.Command(pgbench, {
      args: [
        "-n",
        "-M",
        "prepared",
        "-c",
        String(input.clients),
        "-j",
        "2",
        "-T",
        String(input.seconds),
        "-f",
        file,
        input.url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    const tps = text.match(/^tps = ([\d.]+)/m);
    const latency = text.match(/^latency average = ([\d.]+) ms/m);
    const failed = text.match(/^number of failed transactions: (\d+)/m);
    if (!output.success || !tps) {
      throw new Error(
        `pgbench failed (${output.code}): ${new TextDecoder().decode(output.stderr)}`,
      );
    }
    return {
      tps: Number(tps[1]),
      latencyMs: latency ? Number(latency[1]) : Number.NaN,
      failed: failed ? Number(failed[1]) : 0,
    };
  } finally {
    await Deno.remove(file).catch(() => {});
  }
}
