/** @module Runs `main.ts` as a real subprocess and captures its JSON log lines. */

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** Runs a one-shot CLI command; resolves with its exit code and output. */
export async function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A daemon subprocess. */
export type Daemon = {
  port: number;
  url: string;
  process: Deno.ChildProcess;
  /** Parsed JSON log lines so far. */
  logs: Record<string, unknown>[];
  /** Non-JSON stdout lines (there should be none). */
  strayLines: string[];
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
};

/** Starts `main.ts serve` on a free port and waits until it listens. */
export async function startDaemon(env: Record<string, string>): Promise<Daemon> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "serve"],
    env: { NO_COLOR: "1", PORT: "0", HOST: "127.0.0.1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const logs: Record<string, unknown>[] = [];
  const strayLines: string[] = [];
  let resolvePort: (port: number) => void = () => {};
  const portPromise = new Promise<number>((resolve) => (resolvePort = resolve));
  const reading = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        try {
          const record = JSON.parse(line);
          logs.push(record);
          if (
            typeof record.port === "number" && record.category === "calsync.http" &&
            record.server === "main"
          ) {
            resolvePort(record.port);
          }
        } catch {
          strayLines.push(line);
        }
      }
    }
  })();
  const stderrText = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  const draining = (async () => {
    for (;;) {
      const { done, value } = await stderrText.read();
      if (done) break;
      if (value.trim()) strayLines.push(`[stderr] ${value.trim()}`);
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error("daemon did not start listening within 20 s")),
      20_000,
    );
  });
  let port: number;
  try {
    port = await Promise.race([portPromise, timeout]);
    clearTimeout(timer);
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    await Promise.allSettled([reading, draining]);
    throw new Error(`${(error as Error).message}; output: ${strayLines.join("\n")}`);
  }
  let stopped: Promise<Deno.CommandStatus> | null = null;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    process: child,
    logs,
    strayLines,
    stop(signal: Deno.Signal = "SIGTERM") {
      stopped ??= (async () => {
        try {
          child.kill(signal);
        } catch {
          // Already exited.
        }
        const status = await child.status;
        await Promise.allSettled([reading, draining]);
        return status;
      })();
      return stopped;
    },
  };
}
