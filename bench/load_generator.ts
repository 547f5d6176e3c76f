/**
 * @module Closed-loop HTTP load at fixed concurrency: `wrk` when installed, else a careful Deno
 * fallback (fixed workers, keep-alive, per-request latency). Every request is a distinct Google
 * push delivery, so nothing is deduplicated away.
 */
import { percentile } from "./stats.ts";

/** One Google channel the load cycles through. */
export type LoadChannel = { channelId: string; token: string; resourceId: string; uri: string };

/** What one load run measured. */
export type LoadResult = {
  tool: "wrk" | "deno";
  requests: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** Share of responses that were 2xx (errors and timeouts count as not 2xx). */
  share2xx: number;
};

/** Options of one run; `run` keeps message numbers distinct across runs. */
export type LoadOptions = {
  url: string;
  channels: readonly LoadChannel[];
  concurrency: number;
  seconds: number;
  run: number;
};

/** True when `wrk` is on PATH. */
export async function hasWrk(): Promise<boolean> {
  try {
    const status = await new Deno.Command("wrk", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    // wrk prints its usage and exits 1 for --version; a missing binary throws instead.
    return status.code === 0 || status.code === 1;
  } catch {
    return false;
  }
}

/** Runs the load with `wrk` if available, else with the Deno fallback. */
export async function runLoad(options: LoadOptions, useWrk: boolean): Promise<LoadResult> {
  return useWrk ? await runWrk(options) : await runDenoLoad(options);
}

// Four distinct strings per channel row, well under LuaJIT's per-function limit.
const LUA_ROWS_PER_FUNCTION = 10_000;

function luaString(text: string): string {
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The wrk script: round-robins channels, numbers messages `run`/thread/counter, reports JSON. */
function wrkScript(options: LoadOptions): string {
  const rows = options.channels.map((c) =>
    `{${luaString(c.channelId)},${luaString(c.token)},${luaString(c.resourceId)},${
      luaString(c.uri)
    }}`
  );
  // LuaJIT allows 65,536 constants per function: each chunk of rows is a function of its own.
  const chunks: string[] = [];
  for (let i = 0; i < rows.length; i += LUA_ROWS_PER_FUNCTION) {
    chunks.push(
      `;(function() add({${rows.slice(i, i + LUA_ROWS_PER_FUNCTION).join(",\n")}}) end)()`,
    );
  }
  return `
local channels = {}
local function add(rows) for i = 1, #rows do channels[#channels + 1] = rows[i] end end
${chunks.join("\n")}
local threads = {}
local next_tid = 1
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
  table.insert(threads, thread)
end
local counter = 0
function request()
  counter = counter + 1
  local c = channels[((counter * 7 + tid * 13) % #channels) + 1]
  local headers = {
    ["Content-Length"] = "0",
    ["X-Goog-Channel-ID"] = c[1],
    ["X-Goog-Channel-Token"] = c[2],
    ["X-Goog-Resource-ID"] = c[3],
    ["X-Goog-Resource-URI"] = c[4],
    ["X-Goog-Resource-State"] = "exists",
    ["X-Goog-Message-Number"] = string.format("%d%02d%010d", ${options.run + 1}, tid, counter),
  }
  return wrk.format("POST", nil, headers, nil)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;
}

async function runWrk(options: LoadOptions): Promise<LoadResult> {
  const script = await Deno.makeTempFile({ prefix: "calsync-bench-", suffix: ".lua" });
  try {
    await Deno.writeTextFile(script, wrkScript(options));
    const output = await new Deno.Command("wrk", {
      args: [
        "-t2",
        `-c${options.concurrency}`,
        `-d${options.seconds}s`,
        "--timeout",
        "5s",
        "-s",
        script,
        options.url,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout);
    const line = text.split("\n").find((l) => l.startsWith("BENCH_JSON "));
    if (!output.success || !line) {
      throw new Error(
        `wrk failed (${output.code}): ${text}${new TextDecoder().decode(output.stderr)}`,
      );
    }
    const r = JSON.parse(line.slice("BENCH_JSON ".length));
    // wrk counts non-2xx/3xx answers in `status`; socket errors and timeouts separately.
    const failed = r.status + r.timeout + r.connect + r.read + r.write;
    return {
      tool: "wrk",
      requests: r.requests,
      requestsPerSecond: r.requests / (r.duration_us / 1e6),
      p50Ms: r.p50_us / 1000,
      p99Ms: r.p99_us / 1000,
      share2xx: r.requests === 0 ? 0 : Math.max(0, r.requests - failed) / r.requests,
    };
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}

/** The fallback: `concurrency` workers, each one request at a time on a kept-alive client. */
async function runDenoLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  let ok = 0;
  let counter = 0;
  const stopAt = performance.now() + options.seconds * 1000;
  const started = performance.now();
  async function worker(worker: number) {
    // One client per worker: a kept-alive connection each, like wrk's connections.
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 1 });
    try {
      while (performance.now() < stopAt) {
        const n = ++counter;
        const c = options.channels[(n * 7 + worker * 13) % options.channels.length];
        const sent = performance.now();
        try {
          const response = await fetch(options.url, {
            method: "POST",
            client,
            headers: {
              "x-goog-channel-id": c.channelId,
              "x-goog-channel-token": c.token,
              "x-goog-resource-id": c.resourceId,
              "x-goog-resource-uri": c.uri,
              "x-goog-resource-state": "exists",
              "x-goog-message-number": `${options.run + 1}${String(n).padStart(12, "0")}`,
            },
            signal: AbortSignal.timeout(5_000),
          });
          await response.body?.cancel();
          if (response.status >= 200 && response.status < 300) ok++;
        } catch {
          // Counted as a request that did not get a 2xx.
        }
        latencies.push(performance.now() - sent);
      }
    } finally {
      client.close();
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => worker(i)));
  const seconds = (performance.now() - started) / 1000;
  return {
    tool: "deno",
    requests: latencies.length,
    requestsPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    share2xx: latencies.length === 0 ? 0 : ok / latencies.length,
  };
}
