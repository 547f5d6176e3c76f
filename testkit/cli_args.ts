/** @module Flag parsing for the bench, the drill and the chaos soak: --help, usage, exit code 2. */
import { parseArgs } from "node:util";

/** The flags a command takes, besides --help/-h, which every command gets. */
export type FlagSpec = Record<string, { type: "string" | "boolean"; multiple?: boolean }>;

/** The parsed flags: a string or boolean per given flag (a list of them if `multiple`). */
export type FlagValues<S extends FlagSpec> = {
  [K in keyof S]?: S[K] extends { multiple: true } ? FlagValue<S[K]>[] : FlagValue<S[K]>;
};

type FlagValue<F extends FlagSpec[string]> = F["type"] extends "boolean" ? boolean : string;

/** A command's name (the prefix of its error lines), usage text and flags. */
export type CommandSpec<S extends FlagSpec> = { name: string; usage: string; flags: S };

/**
 * Parses `args` and hands the values to `read`, which checks them and may throw. On --help it
 * prints the usage to stdout (exit 0); on a bad flag, or an error thrown by `read`, it prints
 * `<name>: <message>` and the usage to stderr (exit 2). Either way the caller returns `exitCode`.
 */
export function parseFlags<S extends FlagSpec, R>(
  args: string[],
  spec: CommandSpec<S>,
  read: (values: FlagValues<S>) => R,
): { options: R } | { exitCode: number } {
  const usage = spec.usage.endsWith("\n") ? spec.usage : `${spec.usage}\n`;
  let options: R;
  try {
    const values: Record<string, unknown> = parseArgs({
      args,
      options: { ...spec.flags, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }).values;
    if (values.help === true) {
      writeAll(Deno.stdout, usage);
      return { exitCode: 0 };
    }
    options = read(values as FlagValues<S>);
  } catch (error) {
    writeAll(Deno.stderr, `${spec.name}: ${explain(error, spec.flags)}\n\n${usage}`);
    return { exitCode: 2 };
  }
  return { options };
}

/**
 * Reads an integer flag: `fallback` when absent, else a whole number from `min` (default 1) to
 * `max` (default none); throws naming the flag otherwise.
 */
export function integerFlag(
  value: string | undefined,
  name: string,
  bounds: { fallback: number; min?: number; max?: number },
): number {
  if (value === undefined) return bounds.fallback;
  const { min = 1, max } = bounds;
  const n = Number(value);
  if (!/^-?\d+$/.test(value) || n < min || (max !== undefined && n > max)) {
    const range = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new Error(`--${name} must be an integer ${range}: current value is "${value}"`);
  }
  return n;
}

/**
 * Reads a comma-separated list of choices: all of them when absent or `all`, in the order of
 * `choices` whatever order was typed; throws on an unknown or empty list.
 */
export function choicesFlag<T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
): T[] {
  if (value === undefined || value === "all") return [...choices];
  const picked = value.split(",").map((item) => item.trim()).filter(Boolean);
  const unknown = picked.filter((item) => !(choices as readonly string[]).includes(item));
  if (picked.length === 0 || unknown.length > 0) {
    throw new Error(
      `--${name} must be one or more of ${choices.join(", ")}: current value is "${value}"`,
    );
  }
  return choices.filter((item) => picked.includes(item));
}

// parseArgs says "Unknown option '--x'"; naming the flags that exist saves a look at the usage.
function explain(error: unknown, flags: FlagSpec): string {
  const message = error instanceof Error ? error.message : String(error);
  if ((error as { code?: string }).code !== "ERR_PARSE_ARGS_UNKNOWN_OPTION") return message;
  const known = [...Object.keys(flags), "help"].map((flag) => `--${flag}`).join(", ");
  return `${message}; the options are ${known}`;
}

/** Writes all of `text` synchronously, so a Deno.exit right after it loses nothing. */
export function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = new TextEncoder().encode(text);
  let written = 0;
  while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
}
