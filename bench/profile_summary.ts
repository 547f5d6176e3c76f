/**
 * @module Summarises V8 `.cpuprofile` files (`deno run --cpu-prof`, `deno task bench --cpu-prof
 * DIR`) into self-time tables by function and by module, so a hot path's profile can be read
 * and compared in a terminal.
 *
 *   deno task profile-summary --in FILE_OR_DIR [--top N] [--json]
 */
import { integerFlag, parseFlags } from "../testkit/cli_args.ts";

/** The parts of a V8 CPU profile this summary reads. */
export type CpuProfile = {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
};

/** One row of a summary: self time in ms and its share of the busy (non-idle) time. */
export type SelfTime = { name: string; ms: number; share: number };

/** Self time by function and by module; `busyMs` excludes `(idle)`. */
export type ProfileSummary = {
  busyMs: number;
  idleMs: number;
  byFunction: SelfTime[];
  byModule: SelfTime[];
};

/** Adds up the self time of every sample, keyed by function and by module. */
export function summarizeProfiles(profiles: readonly CpuProfile[]): ProfileSummary {
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const profile of profiles) {
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    profile.samples.forEach((id, i) => {
      // A delta is the time until this sample; attributing it to the sample is V8's convention.
      const us = profile.timeDeltas[i] ?? 0;
      const frame = nodes.get(id)?.callFrame;
      if (!frame) return;
      if (frame.functionName === "(idle)") {
        idle += us;
        return;
      }
      busy += us;
      const module = moduleOf(frame.url) ?? frame.functionName;
      const where = frame.url ? ` ${module}:${frame.lineNumber + 1}` : "";
      add(byFunction, `${frame.functionName || "(anonymous)"}${where}`, us);
      add(byModule, module, us);
    });
  }
  return {
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    byFunction: ranked(byFunction, busy),
    byModule: ranked(byModule, busy),
  };
}

/** A short module name: `npm:hono/…/file.js`, `src/http/app.ts`, `ext:deno_http/…`. */
export function moduleOf(url: string): string | null {
  if (!url) return null;
  const npm = url.match(/node_modules\/\.deno\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/);
  if (npm) return `npm:${npm[1]}/${npm[2].split("/").slice(-1)[0]}`;
  const local = url.match(/\/((?:src|bench|testkit|drills)\/.*|main\.ts)$/);
  if (local) return local[1];
  return url.replace(/^file:\/\//, "");
}

function add(into: Map<string, number>, key: string, us: number): void {
  into.set(key, (into.get(key) ?? 0) + us);
}

function ranked(from: Map<string, number>, busy: number): SelfTime[] {
  return [...from].map(([name, us]) => ({ name, ms: us / 1000, share: busy ? us / busy : 0 }))
    .sort((a, b) => b.ms - a.ms);
}

/** The summary as two plain-text tables of the `top` largest entries. */
export function formatSummary(summary: ProfileSummary, top: number): string {
  const table = (title: string, rows: SelfTime[]) =>
    [
      `${title} (self time, share of busy time)`,
      ...rows.slice(0, top).map((r) =>
        `${(r.share * 100).toFixed(1).padStart(5)} %  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`
      ),
    ].join("\n");
  return [
    `busy ${summary.busyMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`,
    table("By function", summary.byFunction),
    table("By module", summary.byModule),
  ].join("\n\n");
}

async function profileFiles(path: string): Promise<string[]> {
  if (!(await Deno.stat(path)).isDirectory) return [path];
  const files: string[] = [];
  for await (const entry of Deno.readDir(path)) {
    if (entry.isFile && entry.name.endsWith(".cpuprofile")) files.push(`${path}/${entry.name}`);
  }
  return files.sort();
}

if (import.meta.main) {
  const parsed = parseFlags(
    Deno.args,
    {
      name: "profile-summary",
      usage: "Usage: deno task profile-summary --in FILE_OR_DIR [--top N] [--json]",
      flags: { in: { type: "string" }, top: { type: "string" }, json: { type: "boolean" } },
    },
    (values) => {
      if (!values.in) throw new Error("--in is required: a .cpuprofile file or a folder of them");
      return {
        path: values.in,
        top: integerFlag(values.top, "top", { fallback: 25 }),
        json: values.json === true,
      };
    },
  );
  if ("exitCode" in parsed) Deno.exit(parsed.exitCode);
  const files = await profileFiles(parsed.options.path);
  const profiles = await Promise.all(
    files.map(async (file) => JSON.parse(await Deno.readTextFile(file)) as CpuProfile),
  );
  const summary = summarizeProfiles(profiles);
  console.log(
    parsed.options.json
      ? JSON.stringify(summary, null, 2)
      : `${files.length} profile(s)\n${formatSummary(summary, parsed.options.top)}`,
  );
}
