/** @module Secrets the CLI reads from a file or stdin, never from its arguments. */
import { UsageError } from "../core/errors.ts";
import type { CommandOptions } from "./command_context.ts";

/** Why a secret on the command line is refused: said every time it is tried. */
export const SECRET_ARGUMENT_REFUSED = "--refresh-token TOKEN is refused: a token on the command " +
  "line lands in shell history and in `ps` for every user of the machine. Use " +
  "--refresh-token-file PATH (a file only you can read) or --refresh-token-file - (stdin)";

/** Throws the refusal when the argument form of a secret was used. */
export function refuseSecretArguments(options: CommandOptions): void {
  if (options["refresh-token"] !== undefined) throw new UsageError(SECRET_ARGUMENT_REFUSED);
}

/** The refresh token from `--refresh-token-file` (`-` reads stdin), trailing newline dropped. */
export async function readRefreshTokenFile(
  options: CommandOptions,
  stdin: ReadableStream<Uint8Array> = Deno.stdin.readable,
): Promise<string> {
  const path = options["refresh-token-file"];
  if (typeof path !== "string" || path === "") {
    throw new UsageError("Missing required option --refresh-token-file PATH (or - for stdin)");
  }
  let text: string;
  try {
    text = path === "-" ? await new Response(stdin).text() : await Deno.readTextFile(path);
  } catch (error) {
    throw new UsageError(`Cannot read --refresh-token-file ${path}: ${(error as Error).message}`);
  }
  const token = text.replace(/\r?\n$/, "").trim();
  if (token === "" || /\s/.test(token)) {
    throw new UsageError(`--refresh-token-file ${path} must hold one refresh token`);
  }
  return token;
}
