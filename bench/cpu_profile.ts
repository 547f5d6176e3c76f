/**
 * @module Reads a V8 `.cpuprofile` (from `deno run --cpu-prof`) and lists where the time went:
 * self time per function, and inclusive time per function, so a profile of a bench daemon can
 * be compared before and after a change without a browser.
 *
 *   deno run -A bench/cpu_profile.ts FILE.cpuprofile [--top N]
 */

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};

type Profile = {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
};

/** One function's share of a profile. */
export type ProfileEntry = { name: string; selfMs: number; totalMs: number };

/** A profile's totals and its functions by self time. */
export type ProfileSummary = { sampledMs: number; idleMs: number; entries: ProfileEntry[] };

const NOT_WORK = new Set(["(idle)", "(program)", "(garbage collector)"]);

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url.replace(/^.*\/(node_modules|src|bench|testkit)\//, "$1/")
    .replace(/^file:\/\/.*\//, "");
  return `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`.trim();
}

/** Sums a profile's samples into self and inclusive time per function (recursion counted once). */
export function summarizeProfile(profile: Profile): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const selfMs = new Map<string, number>();
  const totalMs = new Map<string, number>();
  let sampledMs = 0;
  let idleMs = 0;
  profile.samples.forEach((id, i) => {
    const ms = (profile.timeDeltas[i] ?? 0) / 1000;
    const node = byId.get(id);
    if (!node) return;
    sampledMs += ms;
    if (node.callFrame.functionName === "(idle)") idleMs += ms;
    const name = frameName(node);
    selfMs.set(name, (selfMs.get(name) ?? 0) + ms);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = frameName(byId.get(at)!);
      if (seen.has(frame)) continue;
      seen.add(frame);
      totalMs.set(frame, (totalMs.get(frame) ?? 0) + ms);
    }
  });
  const entries = [...selfMs.keys()].map((name) => ({
    name,
    selfMs: selfMs.get(name) ?? 0,
    totalMs: totalMs.get(name) ?? 0,
  }));
  for (const [name, total] of totalMs) {
    if (!selfMs.has(name)) entries.push({ name, selfMs: 0, totalMs: total });
  }
  entries.sort((a, b) => b.selfMs - a.selfMs);
  return { sampledMs, idleMs, entries };
}

/** Prints the top entries by self and by inclusive time, as shares of the busy (non-idle) time. */
export function formatProfile(summary: ProfileSummary, top: number): string {
  const busy = summary.sampledMs - summary.idleMs;
  const pct = (ms: number) => `${((100 * ms) / Math.max(busy, 1e-9)).toFixed(1).padStart(5)} %`;
  const lines = [
    `sampled ${summary.sampledMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms, ` +
    `busy ${busy.toFixed(0)} ms`,
    "top self time (share of busy):",
    ...summary.entries.filter((e) => e.name !== "(idle)").slice(0, top)
      .map((e) => `  ${pct(e.selfMs)}  ${e.selfMs.toFixed(0).padStart(6)} ms  ${e.name}`),
    "top inclusive time (share of busy), JavaScript functions only:",
    ...[...summary.entries]
      .filter((e) => !NOT_WORK.has(e.name.split(" ")[0]) && e.name !== "(root)")
      .sort((a, b) => b.totalMs - a.totalMs).slice(0, top)
      .map((e) => `  ${pct(e.totalMs)}  ${e.totalMs.toFixed(0).padStart(6)} ms  ${e.name}`),
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const [file, flag, value] = Deno.args;
  if (!file) {
    console.error("Usage: deno run -A bench/cpu_profile.ts FILE.cpuprofile [--top N]");
    Deno.exit(2);
  }
  const top = flag === "--top" ? Number(value) : 25;
  const profile = JSON.parse(await Deno.readTextFile(file)) as Profile;
  console.log(formatProfile(summarizeProfile(profile), top));
}
