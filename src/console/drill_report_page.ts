/**
 * @module The latest drill report (`report.html`, written by `calsync drill --out DIR`) from
 * `CALSYNC_DRILL_REPORT_DIR`: the directory itself or its newest subdirectory holding one.
 */
import { join } from "node:path";
import { html } from "hono/html";
import { CONSOLE_PREFIX, type Html } from "./console_layout.ts";

/** The report file the drill writes. */
export const REPORT_FILE = "report.html";

/** The newest `report.html` in `dir` or one level below it, with its time; null when none. */
export async function latestReport(dir: string): Promise<{ path: string; at: Date } | null> {
  const candidates = [join(dir, REPORT_FILE)];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isDirectory) candidates.push(join(dir, entry.name, REPORT_FILE));
    }
  } catch {
    return null;
  }
  let best: { path: string; at: Date } | null = null;
  for (const path of candidates) {
    const info = await Deno.stat(path).catch(() => null);
    if (!info?.isFile || !info.mtime) continue;
    if (best === null || info.mtime > best.at) best = { path, at: info.mtime };
  }
  return best;
}

/** The drill page's body: where the report comes from, and the report in a sandboxed frame. */
export function drillBody(dir: string | null, report: { path: string; at: Date } | null): Html {
  if (dir === null) {
    return html`<p>No drill report directory is configured: set
      <code>CALSYNC_DRILL_REPORT_DIR</code> to the folder <code>calsync drill --out</code>
      writes to.</p>`;
  }
  if (report === null) {
    return html`<p>No <code>${REPORT_FILE}</code> in <code>${dir}</code> yet: run
      <code>deno task drill --out ${dir}</code>.</p>`;
  }
  return html`
    <p>Latest report: <code>${report.path}</code>, written
        <time datetime="${report.at.toISOString()}">${report.at.toISOString()}</time>.
        <a href="${CONSOLE_PREFIX}/drill/report.html">Open it alone</a>.</p>
    <iframe class="report" title="Drill report" sandbox src="${CONSOLE_PREFIX}/drill/report.html"></iframe>
  `;
}
