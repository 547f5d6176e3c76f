/**
 * @module Runs calsync as a real subprocess, `serve` or a one-shot command, for tests, drills and
 * the bench, and captures the daemon's JSON log lines.
 */
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "./wait.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

// Variables a Deno child needs to find its cache and temp space; with `clearEnv` nothing else is
// inherited, so an operator's own calsync settings (or PG* variables) cannot change the child.
const INHERITED = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "TZ"];

/** One parsed JSON log line of the daemon. */
export type LogLine = Record<string, unknown>;

/** How a calsync subprocess is started. */
export type LaunchOptions = {
  /**
   * Give the child only `env` plus the few variables Deno needs (PATH, HOME, DENO_DIR, ...);
   * false (default): the caller's environment with `env` over it.
   */
  clearEnv?: boolean;
  /**
   * `main.ts` (default): `deno run -A main.ts`. `self`: the calsync that is running, i.e. its
   * compiled binary, or the main.ts (or bundle) Deno runs, falling back to main.ts.
   */
  program?: "main.ts" | "self";
  /** Text written to the child's stdin (then closed); default: no stdin. */
  stdin?: string;
  /** Flags for `deno run` before the entry point (e.g. `--cpu-prof`); ignored for a binary. */
  denoFlags?: readonly string[];
};

/** How startDaemon starts, waits for and stops the daemon. */
export type DaemonOptions = LaunchOptions & {
  /**
   * What to wait for once it listens: nothing more (`listening`, default), its "Scheduler
   * started" line (`scheduler`), or `/readyz` answering 200 (`readyz`).
   */
  readiness?: "listening" | "scheduler" | "readyz";
  /** How long it may take to listen; default 20 s. */
  listenTimeoutMs?: number;
  /** How long `readiness` may take after it listens; default 30 s. */
  readyTimeoutMs?: number;
  /** stop() SIGKILLs a daemon still running this long after its signal; default: it waits. */
  killAfterMs?: number;
};

/** A daemon subprocess. */
export type Daemon = {
  port: number;
  url: string;
  process: Deno.ChildProcess;
  /** Parsed JSON log lines so far, in order. */
  readonly logs: LogLine[];
  /** Non-blank output lines that were not JSON, stderr ones as `[stderr] ...`: there should be none. */
  readonly strayLines: string[];
  alive(): boolean;
  /** The current end of the log, to look only at lines written after it. */
  mark(): number;
  logsSince(mark: number): LogLine[];
  /** Waits for a line matching `match` written after `since` (default: any); null on timeout. */
  waitForLog(
    match: (line: LogLine) => boolean,
    options: { since?: number; timeoutMs: number },
  ): Promise<LogLine | null>;
  /** GET /healthz: the status, or null when nothing answers. */
  health(): Promise<number | null>;
  /** Sends `signal` (default SIGTERM) once and resolves when the process and its output end. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
};

/** Runs a one-shot calsync command; resolves with its exit code, output and duration. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
  options: LaunchOptions = {},
): Promise<{ code: number; stdout: string; stderr: string; durationMs: number }> {
  const started = performance.now();
  const output = options.stdin === undefined
    ? await command(args, env, options).output()
    : await withStdin(command(args, env, options).spawn(), options.stdin);
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    durationMs: Math.round(performance.now() - started),
  };
}

/** Starts `calsync serve` on a free loopback port and waits until it listens (and `readiness`). */
export async function startDaemon(
  env: Record<string, string>,
  options: DaemonOptions = {},
): Promise<Daemon> {
  const child = command(["serve"], { HOST: "127.0.0.1", PORT: "0", ...env }, options).spawn();
  const logs: LogLine[] = [];
  const strayLines: string[] = [];
  let exited = false;
  const status = child.status.finally(() => (exited = true));
  const reading = Promise.all([
    readLines(child.stdout, (line) => {
      const record = parseObject(line);
      if (record) logs.push(record);
      else if (line.trim()) strayLines.push(line);
    }),
    readLines(child.stderr, (line) => {
      if (line.trim()) strayLines.push(`[stderr] ${line}`);
    }),
  ]).catch(() => {});

  const listenTimeoutMs = options.listenTimeoutMs ?? 20_000;
  const listening = await waitFor(
    () => exited ? "exited" : logs.find(isListeningLine),
    { timeoutMs: listenTimeoutMs },
  );
  if (listening === null || listening === "exited") {
    if (!exited) child.kill("SIGKILL");
    await status;
    await reading;
    const output = [...logs.map((l) => JSON.stringify(l)), ...strayLines].slice(-20).join("\n");
    const why = exited ? "it exited" : `within ${listenTimeoutMs / 1000} s`;
    throw new Error(`Cannot start the daemon: it did not listen (${why}); output:\n${output}`);
  }
  const port = Number(listening.port);
  const url = `http://127.0.0.1:${port}`;
  const httpStatus = async (path: string) => {
    try {
      const response = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(2_000) });
      await response.body?.cancel();
      return response.status;
    } catch {
      return null;
    }
  };
  let stopped: Promise<Deno.CommandStatus> | null = null;
  const daemon: Daemon = {
    port,
    url,
    process: child,
    logs,
    strayLines,
    alive: () => !exited,
    mark: () => logs.length,
    logsSince: (mark) => logs.slice(mark),
    waitForLog: (match, { since = 0, timeoutMs }) =>
      waitFor(() => logs.slice(since).find(match), { timeoutMs, intervalMs: 10 }),
    health: () => httpStatus("/healthz"),
    stop(signal = "SIGTERM") {
      stopped ??= (async () => {
        if (!exited) kill(child, signal);
        const timer = options.killAfterMs === undefined
          ? undefined
          : setTimeout(() => kill(child, "SIGKILL"), options.killAfterMs);
        const result = await status.finally(() => clearTimeout(timer));
        await reading;
        return result;
      })();
      return stopped;
    },
  };

  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  if (options.readiness === "scheduler") {
    await waitForScheduler(daemon, readyTimeoutMs).catch(async (error) => {
      await daemon.stop();
      throw error;
    });
  } else if (options.readiness === "readyz") {
    const ready = await waitFor(async () => (await httpStatus("/readyz")) === 200, {
      timeoutMs: readyTimeoutMs,
      intervalMs: 50,
    });
    if (ready === null) {
      await daemon.stop("SIGKILL");
      throw new Error(`Daemon on port ${port} was not ready within ${readyTimeoutMs / 1000} s`);
    }
  }
  return daemon;
}

/** Waits for the daemon's "Scheduler started" line; rejects on a fatal line or after `timeoutMs`. */
export async function waitForScheduler(daemon: Daemon, timeoutMs = 30_000): Promise<void> {
  const line = await daemon.waitForLog(
    (line) => line.message === "Scheduler started" || line.level === "fatal",
    { timeoutMs },
  );
  if (line === null || line.level === "fatal") {
    const why = line === null ? `nothing within ${timeoutMs / 1000} s` : JSON.stringify(line);
    throw new Error(`Cannot start the daemon: its scheduler did not start (${why})`);
  }
}

function command(
  args: string[],
  env: Record<string, string>,
  options: LaunchOptions,
): Deno.Command {
  const exec = Deno.execPath();
  const isDeno = /^deno(\.exe)?$/.test(basename(exec));
  // The entry point that is running (main.ts, or a bundle of it); tests fall back to main.ts.
  const entry = options.program === "self" && /(main\.ts|\.js)$/.test(Deno.mainModule)
    ? fileURLToPath(Deno.mainModule)
    : MAIN;
  const base: Record<string, string> = { NO_COLOR: "1" };
  for (const name of options.clearEnv ? INHERITED : []) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  return new Deno.Command(exec, {
    args: options.program === "self" && !isDeno
      ? args
      : ["run", "-A", ...(options.denoFlags ?? []), entry, ...args],
    env: { ...base, ...env },
    clearEnv: options.clearEnv === true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
}

// The main server's "listening" line; a metrics server logs one too, with another `server`.
function isListeningLine(line: LogLine): boolean {
  return line.category === "calsync.http" && line.server === "main" &&
    typeof line.port === "number";
}

function parseObject(line: string): LogLine | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as LogLine
      : null;
  } catch {
    return null;
  }
}

async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void) {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
  }
  if (buffer) onLine(buffer);
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Exited meanwhile.
  }
}

async function withStdin(child: Deno.ChildProcess, text: string): Promise<Deno.CommandOutput> {
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  return await child.output();
}
