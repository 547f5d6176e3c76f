/** @module Configures LogTape to write JSON Lines to stdout (or a given writer). */
import { configure, getLogger, type Logger, type LogLevel, reset } from "@logtape/logtape";
import { formatJsonLine } from "./json_lines.ts";

/** Something that accepts whole lines; stdout by default, a buffer in tests. */
export type LineWriter = (line: string) => void;

const encoder = new TextEncoder();

/** Writes a line to stdout synchronously so a crash right after still leaves the line behind. */
export function writeStdout(line: string): void {
  const bytes = encoder.encode(line);
  let written = 0;
  while (written < bytes.length) written += Deno.stdout.writeSync(bytes.subarray(written));
}

/** Sets up logging for the process: every `calsync.*` category at `level` and above, as JSON Lines. */
export async function setupLogging(
  level: LogLevel,
  writer: LineWriter = writeStdout,
): Promise<void> {
  await configure({
    reset: true,
    sinks: { jsonl: (record) => writer(formatJsonLine(record)) },
    loggers: [
      { category: ["calsync"], lowestLevel: level, sinks: ["jsonl"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["jsonl"] },
    ],
  });
}

/** Removes the logging configuration (tests call this to leave no state behind). */
export async function teardownLogging(): Promise<void> {
  await reset();
}

/** Returns the logger for a calsync subsystem, e.g. `logger("sync")` logs as `calsync.sync`. */
export function logger(...category: string[]): Logger {
  return getLogger(["calsync", ...category]);
}
