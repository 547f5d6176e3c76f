import { type CpuProfile, moduleOf, summarizeProfiles } from "../../bench/profile_summary.ts";
import { assertEquals } from "../support/assert.ts";

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 9 });

Deno.test("summarizeProfiles() ranks self time by function and module, idle apart", () => {
  const app = "file:///x/src/http/app.ts";
  const pg = "file:///x/node_modules/.deno/postgres@3.4.9/node_modules/postgres/src/query.js";
  const profile: CpuProfile = {
    nodes: [
      { id: 1, callFrame: frame("(root)"), children: [2, 3, 4] },
      { id: 2, callFrame: frame("handle", app) },
      { id: 3, callFrame: frame("Query", pg) },
      { id: 4, callFrame: frame("(idle)") },
    ],
    samples: [2, 3, 3, 4, 2, 3],
    timeDeltas: [1_000, 2_000, 2_000, 5_000, 1_000, 2_000],
  };
  const summary = summarizeProfiles([profile]);
  assertEquals(summary.busyMs, 8);
  assertEquals(summary.idleMs, 5);
  assertEquals(summary.byFunction.map((r) => [r.name, r.ms]), [
    ["Query npm:postgres/query.js:10", 6],
    ["handle src/http/app.ts:10", 2],
  ]);
  assertEquals(summary.byModule.map((r) => [r.name, r.share]), [
    ["npm:postgres/query.js", 0.75],
    ["src/http/app.ts", 0.25],
  ]);
});

Deno.test("moduleOf() shortens npm, project and extension URLs", () => {
  assertEquals(
    moduleOf(
      "file:///w/node_modules/.deno/@logtape+logtape@2.4.2/node_modules/@logtape/logtape/dist/logger.js",
    ),
    "npm:@logtape/logtape/logger.js",
  );
  assertEquals(moduleOf("file:///w/wt/src/webhooks/routes.ts"), "src/webhooks/routes.ts");
  assertEquals(moduleOf("ext:deno_http/00_serve.ts"), "ext:deno_http/00_serve.ts");
  assertEquals(moduleOf(""), null);
});
