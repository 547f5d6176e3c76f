/** @module `calsync drill`: runs the automated outage drill. */

/** Runs the drill with CLI arguments; returns the exit code. */
export function runDrillCli(_args: string[]): Promise<number> {
  console.error("calsync: the drill is not built yet");
  return Promise.resolve(1);
}
