/** @module calsync's entry point: parses the command line and wires the parts together. */
import { parseArgs } from "node:util";
import { ConfigError, loadConfig, readEnv } from "./src/config/config.ts";
import { CommandError, runCommand, UsageError } from "./src/cli/commands.ts";
import { healthcheck } from "./src/cli/healthcheck.ts";
import { USAGE } from "./src/cli/usage.ts";
import { logger, setupLogging } from "./src/log/setup.ts";
import {
  DatabaseUnavailableError,
  EmbeddedDatabaseUnavailableError,
} from "./src/daemon/open_database.ts";
import { serve } from "./src/daemon/serve.ts";

const OPTIONS = {
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  kind: { type: "string" },
  name: { type: "string" },
  allowlisted: { type: "boolean" },
  off: { type: "boolean" },
  provider: { type: "string" },
  calendar: { type: "string" },
  // Kept only to refuse it with the reason (a token in argv is in shell history and `ps`).
  "refresh-token": { type: "string" },
  "refresh-token-file": { type: "string" },
  calendars: { type: "string" },
  label: { type: "string" },
  account: { type: "string" },
  connection: { type: "string" },
  force: { type: "boolean" },
  full: { type: "boolean" },
  from: { type: "string" },
  to: { type: "string" },
  zone: { type: "string" },
  discard: { type: "boolean" },
  after: { type: "string" },
  follow: { type: "boolean" },
  url: { type: "string" },
  secret: { type: "string" },
  since: { type: "string" },
  subscriber: { type: "string" },
} as const;

const encoder = new TextEncoder();
const writeErr = (text: string) => Deno.stderr.writeSync(encoder.encode(text));
const writeOut = (text: string) => Deno.stdout.writeSync(encoder.encode(text));

/** Runs calsync with the given arguments and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args[0] === "drill") {
    // Not a literal specifier, so `deno compile` leaves the drill and its fakes out of the
    // binary unless deploy/compile.ts includes them (CALSYNC_COMPILE_WITH_DRILL=1).
    const drill = "./drills/drill_cli.ts";
    const { runDrillCli } = await import(drill) as {
      runDrillCli(args: string[]): Promise<number>;
    };
    return await runDrillCli(args.slice(1));
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    writeErr(`calsync: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    writeOut(USAGE);
    return 0;
  }
  const command = parsed.positionals.length === 0 ? ["serve"] : parsed.positionals;
  let config;
  try {
    config = loadConfig(readEnv());
  } catch (error) {
    if (error instanceof ConfigError) {
      writeErr(`calsync: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (command.length === 1 && command[0] === "healthcheck") {
    return await healthcheck(config, writeErr);
  }
  if (command.length === 1 && command[0] === "serve") {
    await setupLogging(config.LOG_LEVEL);
    return await serve(config);
  }
  // One-shot commands keep stdout for their output (and --json); logs go to stderr.
  await setupLogging(config.LOG_LEVEL === "info" ? "warning" : config.LOG_LEVEL, writeErr);
  try {
    await runCommand(config, command, parsed.values, { out: writeOut });
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      writeErr(`calsync: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (
      error instanceof CommandError || error instanceof DatabaseUnavailableError ||
      error instanceof EmbeddedDatabaseUnavailableError
    ) {
      writeErr(`calsync: ${error.message}\n`);
      return 1;
    }
    logger("cli").error("Command failed", { error });
    writeErr(`calsync: ${(error as Error).message}\n`);
    return 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
