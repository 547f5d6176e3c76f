/** @module Copies the project to a scratch directory and plants one defect there by exact edits. */
import type { Defect, Edit } from "./defects.ts";

// Not copied: history, build output, local data; node_modules is linked (large, read-only here).
const SKIPPED = new Set([".git", "node_modules", "data", "dist"]);

/** Thrown when an edit does not apply exactly once: the source changed and the defect is stale. */
export class StaleDefectError extends Error {
  override name = "StaleDefectError";
  readonly code = "STALE_DEFECT";
}

/** Counts the occurrences of `search` in `text`. */
export function occurrences(text: string, search: string): number {
  if (search.length === 0) return 0;
  let count = 0;
  for (let at = text.indexOf(search); at >= 0; at = text.indexOf(search, at + search.length)) {
    count++;
  }
  return count;
}

/** Applies one edit to a file's text; throws unless `search` occurs exactly once. */
export function applyEdit(text: string, edit: Edit, defectId: string): string {
  const found = occurrences(text, edit.search);
  if (found !== 1) {
    throw new StaleDefectError(
      `Cannot plant defect "${defectId}" as its search text occurs ${found} times in ` +
        `${edit.file} (expected exactly once): ${JSON.stringify(edit.search.slice(0, 80))}`,
    );
  }
  return text.replace(edit.search, () => edit.replace);
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (SKIPPED.has(entry.name)) continue;
    const source = `${from}/${entry.name}`;
    const target = `${to}/${entry.name}`;
    if (entry.isDirectory) await copyTree(source, target);
    else if (entry.isFile) await Deno.copyFile(source, target);
  }
}

/** Copies the project at `root` into a new temporary directory; returns its path. */
export async function copyProject(root: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "calsync-mutant-" });
  await copyTree(root, dir);
  const modules = `${root}/node_modules`;
  const linked = await Deno.stat(modules).then(() => true, () => false);
  if (linked) await Deno.symlink(modules, `${dir}/node_modules`);
  return dir;
}

/** Plants `defect` in the project copy at `dir`; every edit must apply exactly once. */
export async function plantDefect(dir: string, defect: Defect): Promise<void> {
  if (defect.pending !== undefined || defect.edits.length === 0) {
    throw new StaleDefectError(`Cannot plant defect "${defect.id}": it has no edits yet`);
  }
  // All edits are checked before any file is written, so a stale defect leaves the copy as it was.
  const texts = new Map<string, string>();
  for (const edit of defect.edits) {
    const before = texts.get(edit.file) ?? await Deno.readTextFile(`${dir}/${edit.file}`);
    texts.set(edit.file, applyEdit(before, edit, defect.id));
  }
  for (const [file, text] of texts) await Deno.writeTextFile(`${dir}/${file}`, text);
}
