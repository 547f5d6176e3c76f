/** @module The benchmark's rows, the stdout table and the JSON document. */
import type { Summary } from "./stats.ts";

/** One line of the report: calsync's figure beside the ceiling measured in the same run. */
export type Row = {
  /** Stable key, used by the JSON output and the smoke test. */
  id: string;
  metric: string;
  unit: string;
  /** Whether bigger calsync figures are better (throughput) or worse (time, latency). */
  better: "higher" | "lower";
  calsync: Summary | null;
  ceiling: Summary | null;
  notes: string;
};

/** What every benchmark section needs. */
export type BenchContext = {
  reps: number;
  quick: boolean;
  /** Use the Deno load generator even where wrk is installed. */
  denoLoad: boolean;
  /** Where daemons write V8 CPU profiles (`--cpu-prof-dir`); unset: not profiled. */
  cpuProfDir?: string;
  /** Progress lines; they go to stderr so stdout stays the table. */
  log: (message: string) => void;
};

/**
 * calsync relative to its ceiling: a share of it for throughput (1 = at the ceiling), and a
 * multiple of it for time and latency (1 = as fast as the ceiling). Null when either is missing.
 */
export function ratioOf(row: Row): number | null {
  if (!row.calsync || !row.ceiling || row.ceiling.median === 0) return null;
  return row.calsync.median / row.ceiling.median;
}

function number(value: number, whole = false): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  const digits = whole || abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** `median unit (min–max)`, or a dash when not measured. */
export function formatSummary(summary: Summary | null, unit: string): string {
  if (!summary) return "—";
  // Counts (double syncs) read better without decimals.
  const whole = summary.runs.every(Number.isInteger) && Number.isInteger(summary.median);
  const spread = summary.runs.length > 1
    ? ` (${number(summary.min, whole)}–${number(summary.max, whole)})`
    : "";
  return `${number(summary.median, whole)}${unit ? ` ${unit}` : ""}${spread}`;
}

/** The ratio as the table prints it: a percentage of the ceiling, or a multiple of it. */
export function formatRatio(row: Row): string {
  const ratio = ratioOf(row);
  if (ratio === null) return "—";
  return row.better === "higher" ? `${Math.round(ratio * 100)}%` : `${number(ratio)}×`;
}

/** Renders the rows as a Markdown table (readable on a terminal, pasteable into the README). */
export function formatTable(rows: readonly Row[]): string {
  const header = ["metric", "calsync", "ceiling", "ratio", "notes"];
  const cells = rows.map((row) => [
    row.metric,
    formatSummary(row.calsync, row.unit),
    formatSummary(row.ceiling, row.unit),
    formatRatio(row),
    row.notes,
  ]);
  const widths = header.map((title, i) =>
    Math.max(title.length, ...cells.map((line) => line[i].length))
  );
  const line = (values: string[]) =>
    `| ${values.map((value, i) => (i === 4 ? value : value.padEnd(widths[i]))).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (i === 4 ? "---" : "-".repeat(w + 2))).join("|")}|`,
    ...cells.map(line),
  ].join("\n");
}

/** The JSON document `--json` writes: the machine, the run, and every row with its ratio. */
export function reportDocument(
  meta: Record<string, unknown>,
  rows: readonly Row[],
): Record<string, unknown> {
  return {
    ...meta,
    metrics: Object.fromEntries(
      rows.map((row) => [row.id, { ...row, ratio: ratioOf(row), ratioText: formatRatio(row) }]),
    ),
  };
}
