/** @module What every operator command receives, and the option checks they share. */
import type { Config } from "../config/config.ts";
import { UsageError } from "../core/errors.ts";
import type { SecretBox } from "../crypto/secret_box.ts";
import type { Sql } from "../storage/client.ts";

/** Where command output goes. */
export type CommandIo = { out: (text: string) => void };

/** Parsed options of a database command. */
export type CommandOptions = Record<string, string | boolean | undefined>;

/** One command's inputs, with the database open and migrated. */
export type CommandContext = {
  config: Config;
  sql: Sql;
  options: CommandOptions;
  secrets: SecretBox;
  /** Writes raw text to stdout (streams such as `changes --follow`). */
  out(text: string): void;
  /** Prints `value` as JSON with `--json`, else `text`. */
  emit(value: unknown, text: string): void;
};

/** A command's body; runs with the database open. */
export type CommandHandler = (context: CommandContext) => Promise<void>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The trimmed value of a required option, or a UsageError naming it. */
export function required(options: CommandOptions, name: string): string {
  const value = options[name];
  if (typeof value !== "string" || value.trim() === "") {
    throw new UsageError(`Missing required option --${name}`);
  }
  return value.trim();
}

/** `value` if it is a connection id (a UUID), else a UsageError naming the option. */
export function uuid(value: string, name: string, what = "a connection id"): string {
  if (!UUID.test(value)) {
    throw new UsageError(`--${name} must be ${what} (a UUID), got "${value}"`);
  }
  return value;
}

/** The required `--connection` option as a checked UUID. */
export function connectionOption(options: CommandOptions): string {
  return uuid(required(options, "connection"), "connection");
}

/** True for the unique violation PostgreSQL raises for a duplicate (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: string }).code === "23505";
}
