/** @module Captures the daemon's JSON log lines in memory, for tests of what gets logged. */
import type { LogLevel } from "@logtape/logtape";
import { setupLogging, teardownLogging } from "../../src/log/setup.ts";

/** The lines logged since `captureLogs()`; disposing it removes the logging configuration. */
export type CapturedLogs = { lines: string[]; [Symbol.asyncDispose](): Promise<void> };

/** Sends every `calsync.*` line at `level` and above to `lines` until disposed. */
export async function captureLogs(level: LogLevel): Promise<CapturedLogs> {
  const lines: string[] = [];
  await setupLogging(level, (line) => lines.push(line));
  return { lines, [Symbol.asyncDispose]: teardownLogging };
}
