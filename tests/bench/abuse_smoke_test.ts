import { formatReport, QUICK, runAbuse } from "../../bench/abuse.ts";
import { assert, assertEquals } from "../support/assert.ts";

Deno.test("deno task abuse --quick: no 5xx for bad input, no lingering connection, no late commit, no secret", async () => {
  const report = await runAbuse(QUICK);
  const table = formatReport(report, QUICK);
  assertEquals(report.serverErrorsForBadInput, 0, table);
  assertEquals(report.connectionsOpenAfterTimeouts, 0, table);
  assertEquals(report.lateCommitsAfter503, 0, table);
  assert(report.answered503 > 0, `the blackhole produced no 503: ${table}`);
  assertEquals(report.secretsInLogs, 0, table);
  assert(report.logLinesPerJunkBatch <= 3, table);
  assert(report.peakRssMbUnderStalledBodies < 300, table);
});
