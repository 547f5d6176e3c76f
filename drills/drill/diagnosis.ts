/** @module The drill document's failure scenarios, and the result type every drill check returns. */

/** A failure scenario named in the drill document's "Failure Scenarios" section. */
export type Symptom = "Backoff Not Activated" | "Partial State Written" | "Silent Failures";

/** A failure scenario with the symptoms and actions the document lists for it. */
export type Diagnosis = {
  symptom: Symptom;
  symptoms: readonly string[];
  actions: readonly string[];
};

/** What one check concluded: pass or fail, the values it saw, and (on failure) the diagnosis. */
export type CheckOutcome = {
  pass: boolean;
  /** The evidence: the values seen, written for an operator. */
  detail: string;
  /** The matching failure scenario of the document; null when it names none for this check. */
  diagnosis: Diagnosis | null;
};

// Copied from shared/outage-drill.md, "Failure Scenarios", so the report speaks its words.
const SCENARIOS: Record<Symptom, Diagnosis> = {
  "Backoff Not Activated": {
    symptom: "Backoff Not Activated",
    symptoms: [
      "Sync continues retrying immediately on failure",
      "No `backoff_until` set",
      "Rate limiting from external provider",
    ],
    actions: [
      "Verify backoff logic in sync code",
      "Check error handling for 503/429 responses",
      "Review backoff calculation",
    ],
  },
  "Partial State Written": {
    symptom: "Partial State Written",
    symptoms: ["Some rows created but operation failed", "Inconsistent database state"],
    actions: [
      "Verify transaction boundaries",
      "Check for explicit transaction rollback on error",
      "Review error handling in sync code",
    ],
  },
  "Silent Failures": {
    symptom: "Silent Failures",
    symptoms: ["Operation fails but no error logged", "Metrics don't reflect failures"],
    actions: [
      "Verify error logging in all code paths",
      "Check structured logging implementation",
      "Review metrics increment logic",
    ],
  },
};

/** Returns the document's failure scenario for a symptom name. */
export function diagnose(symptom: Symptom): Diagnosis {
  return SCENARIOS[symptom];
}

/** Builds a check outcome: a passing one carries no diagnosis, a failing one the given one. */
export function outcome(pass: boolean, detail: string, symptom: Symptom | null): CheckOutcome {
  return { pass, detail, diagnosis: pass || symptom === null ? null : diagnose(symptom) };
}
