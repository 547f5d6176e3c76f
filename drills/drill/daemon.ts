/** @module Runs the real `calsync serve` as a subprocess, capturing its JSON log lines, and CLI commands. */
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import type { CommandResult, LogLine } from "./evidence.ts";
import { waitFor } from "../../testkit/wait.ts";

/** The daemon under test. */
export type DrillDaemon = {
  url: string;
  port: number;
  pid: number;
  /** Parsed JSON log lines so far, in order. */
  readonly logs: LogLine[];
  /** Output lines that were not JSON (stderr included): there should be none. */
  readonly stray: string[];
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
  stop(): Promise<Deno.CommandStatus>;
};

const STOP_GRACE_MS = 15_000;

// Variables a Deno child needs to find its cache and temp space; nothing else is inherited, so
// an operator's own calsync settings (or PG* variables) cannot change the drill's daemon.
const INHERITED = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR", "LANG", "TZ"];

function childEnv(env: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = { NO_COLOR: "1" };
  for (const name of INHERITED) {
    const value = Deno.env.get(name);
    if (value !== undefined) base[name] = value;
  }
  return { ...base, ...env };
}

/** The program and arguments that run calsync: `deno run -A main.ts` or the compiled binary. */
export function calsyncCommand(args: string[]): { command: string; args: string[] } {
  const exec = Deno.execPath();
  if (!/^deno(\.exe)?$/.test(basename(exec))) return { command: exec, args };
  // The entry point that is running (main.ts, or a bundle of it); tests fall back to main.ts.
  const entry = /(main\.ts|\.js)$/.test(Deno.mainModule)
    ? Deno.mainModule
    : new URL("../../main.ts", import.meta.url).href;
  return { command: exec, args: ["run", "-A", fileURLToPath(entry), ...args] };
}

/** Runs a one-shot calsync command with exactly `env`; resolves with its exit code and stderr. */
export async function runCalsync(
  args: string[],
  env: Record<string, string>,
): Promise<CommandResult & { stdout: string }> {
  const { command, args: full } = calsyncCommand(args);
  const started = performance.now();
  const output = await new Deno.Command(command, {
    args: full,
    env: childEnv(env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    durationMs: Math.round(performance.now() - started),
  };
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

/** Starts `calsync serve` with exactly `env` (plus PORT=0) and waits until it listens. */
export async function startDrillDaemon(env: Record<string, string>): Promise<DrillDaemon> {
  const { command, args } = calsyncCommand(["serve"]);
  const child = new Deno.Command(command, {
    args,
    env: childEnv({ HOST: "127.0.0.1", PORT: "0", ...env }),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: LogLine[] = [];
  const stray: string[] = [];
  let exited = false;
  const status = child.status.finally(() => (exited = true));
  const reading = Promise.all([
    readLines(child.stdout, (line) => {
      try {
        logs.push(JSON.parse(line));
      } catch {
        if (line.trim()) stray.push(line);
      }
    }),
    readLines(child.stderr, (line) => {
      if (line.trim()) stray.push(`[stderr] ${line}`);
    }),
  ]).catch(() => {});

  const listening = await waitFor(
    () =>
      exited ? "exited" : logs.find((l) => l.category === "calsync.http" && l.port !== undefined),
    { timeoutMs: 30_000 },
  );
  if (listening === null || listening === "exited") {
    if (!exited) child.kill("SIGKILL");
    await status;
    await reading;
    const output = [...logs.map((l) => JSON.stringify(l)), ...stray].slice(-20).join("\n");
    throw new Error(`Cannot start the daemon under test: it did not listen; output:\n${output}`);
  }
  const port = Number(listening.port);
  const url = `http://127.0.0.1:${port}`;
  let stopped: Promise<Deno.CommandStatus> | null = null;
  return {
    url,
    port,
    pid: child.pid,
    logs,
    stray,
    alive: () => !exited,
    mark: () => logs.length,
    logsSince: (mark) => logs.slice(mark),
    waitForLog: (match, options) =>
      waitFor(() => logs.slice(options.since ?? 0).find(match), {
        timeoutMs: options.timeoutMs,
        intervalMs: 10,
      }),
    async health() {
      try {
        const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) });
        await response.body?.cancel();
        return response.status;
      } catch {
        return null;
      }
    },
    stop() {
      stopped ??= (async () => {
        if (!exited) {
          try {
            child.kill("SIGTERM");
          } catch {
            // Exited meanwhile.
          }
        }
        // Its own shutdown deadline is a few seconds; a daemon that outlives it is killed.
        const timer = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch {
            // Exited meanwhile.
          }
        }, STOP_GRACE_MS);
        const result = await status.finally(() => clearTimeout(timer));
        await reading;
        return result;
      })();
      return stopped;
    },
  };
}
