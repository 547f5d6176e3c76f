/**
 * @module `deno task abuse`: the hostile-traffic campaign of issue 18 against a local daemon.
 *
 * Starts `calsync serve` (a real subprocess) on a scratch database behind the fault proxy, then:
 * fuzzes malformed requests over raw TCP, holds stalled bodies and slow clients, posts a 1,000-item
 * junk Graph batch, answers deliveries 503 during a database blackhole, and scans every log line
 * for the secrets it planted. Prints one table; `--quick` runs a small version (the suite's smoke).
 */
import { insertProvider } from "../src/storage/calendar_providers.ts";
import { insertConnection } from "../src/storage/connections.ts";
import { insertChannel } from "../src/storage/webhook_channels.ts";
import { type Daemon, startDaemon } from "../testkit/daemon.ts";
import { startFaultProxy } from "../testkit/fault_proxy.ts";
import { createScratchDatabase, migrateScratchDatabase } from "../testkit/scratch_database.ts";

/** How big the campaign is. */
export type AbuseSize = {
  fuzz: number;
  stalledBodies: number;
  slowClients: number;
  lateDeliveries: number;
  timeoutMs: number;
};

/** The full campaign, and the suite's smoke of it. */
export const FULL: AbuseSize = {
  fuzz: 5_000,
  stalledBodies: 1_000,
  slowClients: 300,
  lateDeliveries: 200,
  timeoutMs: 2_000,
};
export const QUICK: AbuseSize = {
  fuzz: 150,
  stalledBodies: 40,
  slowClients: 10,
  lateDeliveries: 20,
  timeoutMs: 300,
};

/** The campaign's figures; the ones named `must*` have a target. */
export type AbuseReport = {
  statuses: Record<string, number>;
  serverErrorsForBadInput: number;
  baselineRssMb: number;
  peakRssMbUnderStalledBodies: number;
  connectionsOpenAfterTimeouts: number;
  logLinesPerJunkBatch: number;
  lateCommitsAfter503: number;
  answered503: number;
  secretsInLogs: number;
  logLines: number;
};

const TOKEN = "AbuseTok3n-Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz0Xc2";
const CLIENT_STATE = "AbuseCl1entState-Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh";
const REFRESH = "1//abuse-refresh-token-Vb4Nm6QpZx8";
const DB_PASSWORD = "abuse-db-passw0rd";
const encoder = new TextEncoder();

/** Progress goes to stderr, so stdout carries only the table. */
function progress(phase: string): void {
  console.error(`abuse: ${phase}`);
}

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** Sends `bytes`, half-closes, and reads until EOF; resolves with the answer text. */
async function exchange(port: number, bytes: Uint8Array): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let text = "";
  try {
    for (let w = 0; w < bytes.length;) w += await conn.write(bytes.subarray(w));
    await conn.closeWrite();
    const buffer = new Uint8Array(65_536);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      text += String.fromCharCode(...buffer.subarray(0, n));
    }
  } catch {
    // A reset after the answer is fine; whatever arrived counts.
  } finally {
    conn.close();
  }
  return text;
}

function statusesOf(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** Resident set size and its peak (VmHWM) of `pid`, in MB. */
async function rssOf(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

function fuzzCase(random: () => number, channelId: string): string {
  const int = (max: number) => Math.floor(random() * max);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)];
  const junk = (n: number) =>
    Array.from({ length: n }, () => String.fromCharCode(int(256))).join("");
  const graph =
    "POST /webhooks/microsoft HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n";
  const google = "POST /webhooks/google HTTP/1.1\r\nHost: x\r\n" +
    `X-Goog-Channel-ID: ${channelId}\r\nX-Goog-Channel-Token: ${TOKEN}\r\n` +
    `X-Goog-Message-Number: ${int(1e9)}\r\nX-Goog-Resource-State: exists\r\n` +
    "X-Goog-Resource-ID: r\r\nX-Goog-Resource-URI: https://x/y\r\n";
  const body = '{"value":[{"subscriptionId":"s","changeType":"updated","resource":"r"}]}';
  return pick([
    () => `${graph}Transfer-Encoding: chunked\r\n\r\n${(body.length + 9).toString(16)}\r\n${body}`,
    () => `${graph}Transfer-Encoding: chunked\r\n\r\n${pick(["zz", "-1", "", "1 1"])}\r\nx\r\n`,
    () => `${graph}Transfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n`,
    () => `${graph}Content-Length: ${body.length + 1 + int(99)}\r\n\r\n${body}`,
    () => `${graph}Content-Length: ${int(body.length)}\r\n\r\n${body}`,
    () => `${graph}Content-Length: ${pick(["-1", "x", "1, 2", "9".repeat(20)])}\r\n\r\n${body}`,
    () => `${graph}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
    () => `GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${junk(1 + int(200))}`,
    () => `${google}\r\n${junk(int(60))}`,
    () => `${google}Transfer-Encoding: chunked\r\n\r\n2000\r\n`,
    () => junk(1 + int(500)),
    () => `GET / HTTP/1.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    () =>
      `${pick(["GET", "G T", "\u0000"])} ${pick(["/", "*", "x"])} ${
        pick(["HTTP/1.1", "HTTP/9"])
      }\r\n\r\n`,
    () => `${graph}Content-Length: ${body.length}\r\n\r\n${body}`,
  ])();
}

/** Runs the campaign and returns its figures. */
export async function runAbuse(size: AbuseSize): Promise<AbuseReport> {
  const database = await migrateScratchDatabase(
    await createScratchDatabase(
      Deno.env.get("DATABASE_URL") || Deno.env.get("TEST_DATABASE_URL") ||
        "postgres://postgres@127.0.0.1:5432/postgres",
      { purpose: "bench", prefix: "abuse" },
    ),
    { max: 4 },
  );
  const target = new URL(database.url);
  const proxy = await startFaultProxy({
    targetHostname: target.hostname,
    targetPort: Number(target.port || 5432),
  });
  let daemon: Daemon | null = null;
  try {
    const google = await insertProvider(database.sql, {
      kind: "google",
      name: "g",
      allowlisted: false,
    });
    const graph = await insertProvider(database.sql, {
      kind: "microsoft",
      name: "m",
      allowlisted: false,
    });
    const g = await insertConnection(database.sql, {
      providerId: google.id,
      externalCalendarId: "primary",
      refreshToken: REFRESH,
      accountLabel: null,
    });
    const m = await insertConnection(database.sql, {
      providerId: graph.id,
      externalCalendarId: "primary",
      refreshToken: REFRESH,
      accountLabel: null,
    });
    const channelId = crypto.randomUUID();
    const subscriptionId = crypto.randomUUID();
    await insertChannel(database.sql, {
      connectionId: g.id,
      provider: "google",
      channelId,
      secret: TOKEN,
    });
    await insertChannel(database.sql, {
      connectionId: m.id,
      provider: "microsoft",
      channelId: subscriptionId,
      secret: CLIENT_STATE,
    });
    const viaProxy = new URL(proxy.url(database.url));
    viaProxy.password = DB_PASSWORD; // Trust auth ignores it; the scan below looks for it.
    const ms = String(size.timeoutMs);
    daemon = await startDaemon({
      DATABASE_URL: viaProxy.href,
      LOG_LEVEL: "info",
      HTTP_HEADER_TIMEOUT_MS: ms,
      HTTP_BODY_TIMEOUT_MS: ms,
      HTTP_IDLE_TIMEOUT_MS: ms,
      HTTP_MAX_CONNECTIONS: "4096",
      WEBHOOK_RESPONSE_DEADLINE_MS: "500",
      SCHEDULER_POLL_INTERVAL_MS: "3600000",
    });
    const { port } = daemon;
    const live = daemon;
    const waitReady = async () => {
      for (;;) {
        const response = await fetch(`${live.url}/readyz`);
        await response.body?.cancel();
        if (response.status === 200) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await waitReady();
    const baseline = await rssOf(daemon.process.pid);

    progress("malformed requests");
    // 1. Malformed requests, eight at a time.
    const random = prng(20_260_518);
    const statuses: Record<string, number> = {};
    let serverErrors = 0;
    const wires = Array.from({ length: size.fuzz }, () => fuzzCase(random, channelId));
    for (let i = 0; i < wires.length; i += 8) {
      const answers = await Promise.all(
        wires.slice(i, i + 8).map((w) =>
          exchange(port, Uint8Array.from(w, (c) => c.charCodeAt(0) & 0xff))
        ),
      );
      for (const status of answers.flatMap(statusesOf)) {
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status >= 500) serverErrors++;
      }
    }

    progress("stalled bodies");
    // 2. Stalled bodies: each declares 1 MiB and sends all but its last byte.
    const stalled: Deno.TcpConn[] = [];
    const part = new Uint8Array(1_048_575).fill(97);
    const head = encoder.encode(
      "POST /webhooks/microsoft HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n" +
        "Content-Length: 1048576\r\n\r\n",
    );
    await Promise.all(Array.from({ length: size.stalledBodies }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      stalled.push(conn);
      try {
        await conn.write(head);
        for (let w = 0; w < part.length;) w += await conn.write(part.subarray(w));
      } catch {
        // Refused (byte budget) or cut: the daemon closed it, which is the point.
      }
    }));
    const underStalled = await rssOf(daemon.process.pid);
    for (const conn of stalled) conn.close();

    progress("slow clients");
    // 3. Slow clients: idle, slow head, slow body; all must be closed by the daemon's deadlines.
    const slow = await Promise.all(Array.from({ length: size.slowClients * 3 }, async (_, i) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const kind = i % 3;
      if (kind === 1) {
        await conn.write(encoder.encode("POST /webhooks/google HTTP/1.1\r\nHost: x\r\n"));
      }
      if (kind === 2) {
        await conn.write(encoder.encode(
          "POST /webhooks/microsoft HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{",
        ));
      }
      return conn;
    }));
    // Each read ends at the daemon's close; a bound far past the deadlines catches one that never does.
    const bound = size.timeoutMs * 5 + 5_000;
    const stillOpen = (await Promise.all(slow.map(async (conn) => {
      const buffer = new Uint8Array(4_096);
      const timer = setTimeout(() => conn.close(), bound);
      try {
        for (;;) if ((await conn.read(buffer)) === null) return 0;
      } catch {
        return 1; // Closed by the bound above: still open after the timeouts.
      } finally {
        clearTimeout(timer);
        try {
          conn.close();
        } catch {
          // Closed by the bound.
        }
      }
    }))).reduce((sum: number, n) => sum + n, 0);

    progress("junk batch");
    // 4. One 1,000-item junk Graph batch, between two refusals whose log lines mark its start
    // and end (the daemon writes its lines in order; they reach us through a pipe).
    const mark = async (name: string) => {
      await exchange(port, encoder.encode(`GET / HTTP/1.1\r\n${name}: a\u0001b\r\n\r\n`));
      for (;;) {
        const at = live.logs.findIndex((line) => String(line.message).includes(`Header ${name} `));
        if (at >= 0) return at;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const from = await mark("X-Abuse-Before");
    const value = Array.from(
      { length: 1_000 },
      (_, i) =>
        i % 3 === 0 ? { subscriptionId: "bad id!", changeType: "updated", resource: "r" } : {
          subscriptionId: i % 3 === 1 ? crypto.randomUUID() : subscriptionId,
          changeType: "updated",
          resource: `Users/u/Events/e${i}`,
          clientState: `forged-${i}`,
        },
    );
    const junk = await fetch(`${daemon.url}/webhooks/microsoft`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ value }),
    });
    await junk.body?.cancel();
    const to = await mark("X-Abuse-After");
    const batchLines = to - from - 1;

    progress("database blackhole");
    // 5. Deliveries during a database blackhole: every 503 must stay uncommitted.
    proxy.blackhole(true);
    const numbers = Array.from({ length: size.lateDeliveries }, (_, i) => 10_000 + i);
    const answered = await Promise.all(
      numbers.map((n) => deliverGoogle(live.url, channelId, n).catch(() => 0)),
    );
    proxy.blackhole(false);
    const refused = numbers.filter((_, i) => answered[i] === 503);
    let probe = 900_000;
    while ((await deliverGoogle(live.url, channelId, probe++).catch(() => 0)) !== 200) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Stopping the daemon ends its pool, which waits for every statement it still holds.
    await daemon.stop();
    const [{ late }] = await database.sql<{ late: number }[]>`
      select count(*)::int as late from webhook_dedupe_keys
      where key = any(${refused.map((n) => `google:${channelId}:${n}`)}::text[])`;

    const text = [...daemon.logs.map((line) => JSON.stringify(line)), ...daemon.strayLines].join(
      "\n",
    );
    const secrets = [TOKEN, CLIENT_STATE, REFRESH, DB_PASSWORD].filter((s) =>
      text.includes(s)
    ).length;
    return {
      statuses,
      serverErrorsForBadInput: serverErrors,
      baselineRssMb: Math.round(baseline.rss),
      peakRssMbUnderStalledBodies: Math.round(Math.max(underStalled.peak, underStalled.rss)),
      connectionsOpenAfterTimeouts: stillOpen,
      logLinesPerJunkBatch: batchLines,
      lateCommitsAfter503: late,
      answered503: refused.length,
      secretsInLogs: secrets,
      logLines: daemon.logs.length,
    };
  } finally {
    await daemon?.stop();
    await proxy.close();
    await database.drop();
  }
}

async function deliverGoogle(url: string, channelId: string, n: number): Promise<number> {
  const response = await fetch(`${url}/webhooks/google`, {
    signal: AbortSignal.timeout(10_000),
    method: "POST",
    headers: {
      "x-goog-channel-id": channelId,
      "x-goog-channel-token": TOKEN,
      "x-goog-message-number": String(n),
      "x-goog-resource-state": "exists",
      "x-goog-resource-id": "r",
      "x-goog-resource-uri": "https://www.googleapis.com/calendar/v3/calendars/primary/events",
    },
  });
  await response.body?.cancel();
  return response.status;
}

/** The report as the README quotes it. */
export function formatReport(report: AbuseReport, size: AbuseSize): string {
  const rows: [string, string, string][] = [
    [
      "requests by status",
      Object.entries(report.statuses).map(([s, n]) => `${s}: ${n}`).join(", "),
      "",
    ],
    ["5xx for bad input", String(report.serverErrorsForBadInput), "0"],
    [
      `peak RSS under ${size.stalledBodies} stalled 1 MiB bodies`,
      `${report.peakRssMbUnderStalledBodies} MB (idle ${report.baselineRssMb} MB)`,
      "< 300 MB",
    ],
    [
      `connections open after the timeouts (of ${size.slowClients * 3})`,
      String(report.connectionsOpenAfterTimeouts),
      "0",
    ],
    ["log lines per 1,000-item junk batch", String(report.logLinesPerJunkBatch), "a few"],
    [`late commits after 503s (of ${report.answered503})`, String(report.lateCommitsAfter503), "0"],
    [`secrets found in logs (${report.logLines} lines)`, String(report.secretsInLogs), "0"],
  ];
  const lines = ["| figure | measured | target |", "| --- | --- | --- |"];
  for (const [figure, measured, goal] of rows) lines.push(`| ${figure} | ${measured} | ${goal} |`);
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const size = Deno.args.includes("--quick") ? QUICK : FULL;
  const report = await runAbuse(size);
  console.log(formatReport(report, size));
  const failed = report.serverErrorsForBadInput > 0 || report.peakRssMbUnderStalledBodies >= 300 ||
    report.connectionsOpenAfterTimeouts > 0 || report.lateCommitsAfter503 > 0 ||
    report.secretsInLogs > 0;
  Deno.exit(failed ? 1 : 0);
}
