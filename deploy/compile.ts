/**
 * @module Builds the single calsync binary with least-privilege permissions baked in.
 *
 * `deno compile` downloads its runtime base (denort) from Deno's release server; where that is
 * unreachable, point `DENORT_BIN` at a denort binary of the same Deno version.
 *
 * Build-time settings (environment):
 * - `CALSYNC_ALLOW_NET`: comma list of host[:port] the binary may reach (providers, database,
 *   listen address). Unset: any host, because provider and database URLs are runtime config.
 * - `CALSYNC_COMPILE_WITH_DRILL=1`: also grant what `calsync drill` needs (spawning itself,
 *   temporary files); the default binary cannot run programs or write files.
 * - `--print`: print the command instead of running it.
 */
import { CONFIG_VARIABLES } from "../src/config/config.ts";

/** V8 settings baked into the binary and used by `deno task start`. */
export const V8_FLAGS = "--max-old-space-size=512,--max-semi-space-size=2";

/** The `deno compile` arguments for the current build settings. */
export function compileArgs(env: Record<string, string | undefined>): string[] {
  const allowNet = env.CALSYNC_ALLOW_NET?.trim();
  const withDrill = env.CALSYNC_COMPILE_WITH_DRILL === "1";
  const args = [
    "compile",
    "--output",
    env.CALSYNC_OUTPUT ?? "dist/calsync",
    "--include",
    "migrations",
    allowNet ? `--allow-net=${allowNet}` : "--allow-net",
    // postgres.js reads PG* variables at start; everything else is calsync's own, by name.
    `--allow-env=${[...CONFIG_VARIABLES, "PG*"].join(",")}`,
    "--allow-read",
    "--allow-sys=hostname",
    // A small young generation and a capped old one keep peak RSS of a 100k-event full sync near
    // 170 MB instead of ~280 MB at about the same speed (`deno task bench`); chunked writes bound
    // the live heap far below the cap.
    `--v8-flags=${V8_FLAGS}`,
  ];
  if (withDrill) args.push("--allow-run", "--allow-write");
  args.push("main.ts");
  return args;
}

if (import.meta.main) {
  const args = compileArgs(Deno.env.toObject());
  if (Deno.args.includes("--print")) {
    console.log(["deno", ...args].join(" "));
  } else {
    const status = await new Deno.Command(Deno.execPath(), { args, stdin: "null" }).spawn().status;
    if (!status.success) {
      console.error(
        "calsync: deno compile failed. It downloads its runtime base from Deno's release " +
          "server; without access, set DENORT_BIN to a denort binary of the same version.",
      );
    }
    Deno.exit(status.code);
  }
}
