/**
 * @module Builds the single calsync binary with least-privilege permissions baked in.
 *
 * `deno compile` downloads its runtime base (denort) from Deno's release server; where that is
 * unreachable, point `DENORT_BIN` at a denort binary of the same Deno version.
 *
 * Build-time settings (environment):
 * - `CALSYNC_ALLOW_NET`: comma list of host[:port] the binary may reach (providers, database,
 *   listen address). Unset: `DEFAULT_ALLOW_NET` (the providers' default hosts, a local database,
 *   and port 8080): a binary that must reach another database or listen elsewhere is built with
 *   its own list, so a compromised process cannot reach arbitrary hosts.
 * - `CALSYNC_ALLOW_READ`: comma list of paths the binary may read. Unset: `DEFAULT_ALLOW_READ`
 *   (the embedded migrations, `/etc/calsync` and systemd's credentials directory, where
 *   `CALSYNC_ENCRYPTION_KEY_FILE` points).
 * - `CALSYNC_COMPILE_WITH_DRILL=1`: also grant what `calsync drill` needs (spawning itself,
 *   temporary files); the default binary cannot run programs or write files.
 * - `--print`: print the command instead of running it.
 */
import { CONFIG_VARIABLES } from "../src/config/config.ts";

/** Hosts the binary may reach unless `CALSYNC_ALLOW_NET` names others. */
export const DEFAULT_ALLOW_NET: readonly string[] = [
  "www.googleapis.com:443",
  "oauth2.googleapis.com:443",
  "graph.microsoft.com:443",
  "login.microsoftonline.com:443",
  "127.0.0.1:5432",
  "localhost:5432",
  // The default listen address, and `calsync healthcheck` reaching it.
  "0.0.0.0:8080",
  "127.0.0.1:8080",
];

/** Paths the binary may read unless `CALSYNC_ALLOW_READ` names others. */
export function defaultAllowRead(): string[] {
  return [
    new URL("../migrations", import.meta.url).pathname,
    "/etc/calsync",
    "/run/credentials",
  ];
}

/** V8 settings baked into the binary and used by `deno task start`. */
export const V8_FLAGS = "--max-old-space-size=512,--max-semi-space-size=2";

/** The `deno compile` arguments for the current build settings. */
export function compileArgs(env: Record<string, string | undefined>): string[] {
  const allowNet = env.CALSYNC_ALLOW_NET?.trim() || DEFAULT_ALLOW_NET.join(",");
  const allowRead = env.CALSYNC_ALLOW_READ?.trim() || defaultAllowRead().join(",");
  const withDrill = env.CALSYNC_COMPILE_WITH_DRILL === "1";
  const args = [
    "compile",
    "--output",
    env.CALSYNC_OUTPUT ?? "dist/calsync",
    "--include",
    "migrations",
    `--allow-net=${allowNet}`,
    // postgres.js reads PG* variables at start; everything else is calsync's own, by name.
    `--allow-env=${[...CONFIG_VARIABLES, "PG*"].join(",")}`,
    `--allow-read=${allowRead}`,
    "--allow-sys=hostname",
    // A small young generation and a capped old one keep peak RSS of a 100k-event full sync near
    // 170 MB instead of ~280 MB at about the same speed (`deno task bench`); chunked writes bound
    // the live heap far below the cap.
    `--v8-flags=${V8_FLAGS}`,
  ];
  // main.ts loads the drill by a computed specifier, so only this build carries it and its fakes.
  if (withDrill) {
    args.push("--allow-run", "--allow-write", "--include", "drills", "--include", "testkit");
  }
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
