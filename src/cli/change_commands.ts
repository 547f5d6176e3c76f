/** @module `calsync changes`: print the change feed after a sequence number, or follow it. */
import { CommandError, HttpError, UsageError } from "../core/errors.ts";
import { changeJson } from "../feed/change_json.ts";
import { followChanges, readPage } from "../feed/follow.ts";
import type { ChangeRow } from "../storage/change_feed.ts";
import type { CommandHandler, CommandOptions } from "./command_context.ts";

/** A non-negative integer option (a sequence number), or a UsageError naming it. */
export function seqOption(options: CommandOptions, name: string): number | undefined {
  const value = options[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || !/^\d{1,15}$/.test(value.trim())) {
    throw new UsageError(`--${name} must be a sequence number (0 or more), got "${value}"`);
  }
  return Number(value.trim());
}

function line(row: ChangeRow, json: boolean): string {
  if (json) return JSON.stringify(changeJson(row)) + "\n";
  return [
    row.seq,
    row.committed_at.toISOString(),
    row.type,
    row.connection_id ?? "-",
    row.external_event_id ?? "-",
  ].join("  ") + "\n";
}

/**
 * Prints the changes after `--after` up to the head, one per line (`--json`: JSON Lines); with
 * `--follow` keeps printing as changes commit (LISTEN/NOTIFY) until SIGINT/SIGTERM.
 */
export const changesCommand: CommandHandler = async ({ sql, options, out }) => {
  const after = seqOption(options, "after") ?? 0;
  const json = options.json === true;
  const print = (rows: ChangeRow[]) => out(rows.map((row) => line(row, json)).join(""));
  try {
    if (options.follow !== true) {
      let position = after;
      for (;;) {
        const { changes } = await readPage(sql, position, 1_000);
        print(changes);
        if (changes.length < 1_000) return;
        position = changes[changes.length - 1].seq;
      }
    }
    const stop = new AbortController();
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const onSignal = () => stop.abort();
    for (const signal of signals) Deno.addSignalListener(signal, onSignal);
    try {
      await followChanges(sql, { after, signal: stop.signal, pollMs: 2_000 }, print);
    } finally {
      for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
    }
  } catch (error) {
    if (error instanceof HttpError) throw new CommandError(error.message);
    throw error;
  }
};
