/** @module Renders CLI results as aligned text tables. */

function cell(value: unknown): string {
  if (value === null || value === undefined) return "-";
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** Formats rows as a table with a header line; an empty list says so. */
export function formatTable(rows: readonly Record<string, unknown>[], columns: string[]): string {
  if (rows.length === 0) return "(none)\n";
  const cells = rows.map((row) => columns.map((column) => cell(row[column])));
  const widths = columns.map((column, i) =>
    Math.max(column.length, ...cells.map((line) => line[i].length))
  );
  const line = (values: string[]) =>
    values.map((value, i) => value.padEnd(widths[i])).join("  ").trimEnd();
  return [line(columns), ...cells.map(line)].join("\n") + "\n";
}

/** How long ago `at` was, as `45s ago`, `12m ago`, `3h ago`, `2d ago`; `never` for null. */
export function formatAge(at: Date | null, now: number): string {
  if (at === null) return "never";
  const seconds = Math.round((now - at.getTime()) / 1000);
  if (seconds < 0) return `in ${formatSpan(-seconds)}`;
  return `${formatSpan(seconds)} ago`;
}

function formatSpan(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
