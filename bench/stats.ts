/** @module Summaries of repeated measurements: median with min and max, and percentiles. */

/** A measurement repeated several times: the median and the spread of the runs. */
export type Summary = { median: number; min: number; max: number; runs: number[] };

/** Summarises repeated runs; the median of an even count is the mean of the middle two. */
export function summarize(runs: readonly number[]): Summary {
  if (runs.length === 0) {
    throw new RangeError("Cannot summarize measurements as 'runs' must not be empty");
  }
  const sorted = [...runs].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], runs: [...runs] };
}

/** The `p`-th percentile (0-100) of values, nearest-rank; values need not be sorted. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Runs `measure` `times` times in sequence and returns the values it produced. */
export async function repeat<T>(times: number, measure: (run: number) => Promise<T>): Promise<T[]> {
  const values: T[] = [];
  for (let run = 0; run < times; run++) values.push(await measure(run));
  return values;
}

/** The largest value (0 for none); a loop, since spreading 100k+ values overflows the stack. */
export function maximum(values: readonly number[]): number {
  let max = 0;
  for (const value of values) if (value > max) max = value;
  return max;
}
