import { assert, assertEquals, assertStringIncludes } from "../support/assert.ts";
import { renderHtmlReport, timelineSpan } from "../../drills/drill/report_html.ts";
import { apiOutageEvents, deliveryEvents } from "../../drills/drill/timeline.ts";
import type { ApiOutageEvidence, ConnectionState } from "../../drills/drill/evidence.ts";
import { sampleDrillReport } from "../support/drill_report_sample.ts";

Deno.test("report.html holds the results, every check with its evidence, an SVG per timeline", async () => {
  const page = await renderHtmlReport(sampleDrillReport());
  assertStringIncludes(page, "<h2>Drill results</h2>");
  assertStringIncludes(page, "backoff_until = +5 s");
  assertStringIncludes(page, "Partial State Written");
  assertEquals((page.match(/<svg\s/g) ?? []).length, 2);
  // Two failures (crosses), two backoff windows, one fault window, recoveries as diamonds.
  assertEquals((page.match(/<path\s+d="M/g) ?? []).length, 2);
  assertEquals((page.match(/<polygon\s/g) ?? []).length, 2);
  assertStringIncludes(page, "**Status:** `FAIL`");
  assert(!page.includes("<script"), "evidence text must be escaped and no script shipped");
  assertStringIncludes(page, "&lt;script&gt;");
});

Deno.test("a timeline spans its first moment to its last window's end", () => {
  assertEquals(
    timelineSpan([
      { kind: "request", at: 10_000, ok: true, label: "" },
      { kind: "backoff", at: 11_000, until: 20_000, ok: false, label: "" },
    ]),
    { from: 10_000, to: 20_000 },
  );
  assertEquals(timelineSpan([{ kind: "request", at: 5, ok: true, label: "" }]), {
    from: 5,
    to: 1_005,
  });
});

const row = (state: Partial<ConnectionState>): ConnectionState => ({
  errorCount: 0,
  lastError: null,
  backoffUntil: null,
  syncNeeded: true,
  lastSuccessAt: null,
  syncCursor: null,
  status: "active",
  leaseOwner: null,
  ...state,
});

Deno.test("an API outage becomes requests, a failure and backoff window per failed run, a recovery", () => {
  const evidence = {
    injectedStatus: 503,
    successBefore: 1_000,
    providerRequests: [{ at: 2_000, status: 503 }, { at: 6_000, status: 200 }],
    runs: [
      {
        claimedAt: 1_900,
        requestsBefore: 1,
        end: {
          at: 2_100,
          state: row({
            errorCount: 1,
            backoffUntil: new Date(5_000),
            lastSuccessAt: new Date(1_000),
          }),
        },
      },
      {
        claimedAt: 5_900,
        requestsBefore: 0,
        end: { at: 6_100, state: row({ lastSuccessAt: new Date(6_100) }) },
      },
    ],
  } as unknown as ApiOutageEvidence;
  const events = apiOutageEvents(evidence);
  assertEquals(events.map((e) => e.kind).sort(), [
    "backoff",
    "failure",
    "fault",
    "recovery",
    "request",
    "request",
  ]);
  assertEquals(events.find((e) => e.kind === "backoff")?.until, 5_000);
  assertEquals(events.find((e) => e.kind === "recovery")?.at, 6_100);
  assertEquals(
    deliveryEvents([{ attempt: 2, status: "error", at: 1 }]).map((e) => [e.ok, e.label]),
    [[false, "delivery attempt 2: connection refused"]],
  );
});
