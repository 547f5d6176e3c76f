/**
 * @module The change feed's subscriber outage as a drill scenario: the subscriber answers 503,
 * then 429 with Retry-After, then recovers (drills/subscriber_outage, which runs its own daemon,
 * database and receiver); every change delivered, in order, duplicates only as the same message.
 */
import { startEmbeddedServer } from "../../testkit/scratch_database.ts";
import { runSubscriberOutage } from "../subscriber_outage/run_subscriber_outage.ts";
import { outcome, type Symptom } from "./diagnosis.ts";
import { createRecorder, emptyResult, type ScenarioResult } from "./records.ts";

/**
 * The drill document's symptom of a failed check: retrying too soon is the backoff's failure; a
 * change lost, reordered, unsigned or uncounted is one the application never hears about.
 */
function symptomOf(check: string): Symptom {
  return check === "503 retried, Retry-After honoured"
    ? "Backoff Not Activated"
    : "Silent Failures";
}

/** Runs the subscriber outage on `databaseUrl`'s server (an embedded one when undefined). */
export async function runSubscriberScenario(
  databaseUrl: string | undefined,
  progress: (line: string) => void,
): Promise<ScenarioResult> {
  const result = emptyResult();
  // The subscriber is the one that fails; Google only feeds the changes.
  const rec = createRecorder(
    { scenario: "subscriber", variant: "outage", provider: "google" },
    result,
  );
  const embedded = databaseUrl === undefined
    ? await startEmbeddedServer("calsync-drill-pg-")
    : null;
  try {
    const checks = await runSubscriberOutage(databaseUrl ?? embedded!.url, progress);
    for (const check of checks) {
      rec.check("recovery", check.name, outcome(check.pass, check.detail, symptomOf(check.name)));
    }
  } finally {
    await embedded?.stop();
    if (embedded) await Deno.remove(embedded.dir, { recursive: true }).catch(() => {});
  }
  return result;
}
