import { assert, assertEquals, assertStringIncludes, assertThrows } from "../support/assert.ts";
import {
  applyEdit,
  copyProject,
  occurrences,
  plantDefect,
  StaleDefectError,
} from "../../drills/mutants/apply.ts";
import { type Defect, DEFECTS } from "../../drills/mutants/defects.ts";
import { allCaught, judge, renderTable } from "../../drills/mutants/table.ts";
import { diagnose } from "../../drills/drill/diagnosis.ts";
import type { CheckRecord } from "../../drills/drill/records.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

function check(pass: boolean, symptom: CheckRecord["diagnosis"]): CheckRecord {
  return {
    scenario: "api",
    variant: "503",
    provider: "google",
    phase: "outage",
    check: "x",
    pass,
    detail: "",
    diagnosis: symptom,
  };
}

Deno.test("every defect's edits apply exactly once to today's src/ (a changed source fails here)", async () => {
  for (const defect of DEFECTS.filter((d) => d.pending === undefined)) {
    assert(defect.edits.length > 0, `${defect.id} has no edits`);
    for (const edit of defect.edits) {
      const text = await Deno.readTextFile(`${ROOT}/${edit.file}`);
      assertEquals(occurrences(text, edit.search), 1, `${defect.id} in ${edit.file}`);
    }
  }
  // The four, eight more, and the pending defects of features still being built.
  assert(DEFECTS.filter((d) => d.pending === undefined).length >= 12);
  assertEquals(new Set(DEFECTS.map((d) => d.id)).size, DEFECTS.length, "ids are unique");
});

Deno.test("an edit whose search text is missing or ambiguous fails loudly instead of not applying", () => {
  const edit = { file: "src/x.ts", search: "a = 1;", replace: "a = 2;" };
  assertEquals(applyEdit("let a = 1;", edit, "d"), "let a = 2;");
  const missing = assertThrows(() => applyEdit("let a = 3;", edit, "d"), StaleDefectError);
  assertStringIncludes(missing.message, "occurs 0 times in src/x.ts");
  assertThrows(() => applyEdit("a = 1; a = 1;", edit, "d"), StaleDefectError, "occurs 2 times");
  // `$&` in a replacement is text, not a pattern.
  assertEquals(applyEdit("a = 1;", { ...edit, replace: "$&$&" }, "d"), "$&$&");
});

Deno.test("a defect is planted in a copy of the project, never in the project itself", async () => {
  const defect = DEFECTS.find((d) => d.id === "backoff-never-grows")!;
  const file = `${ROOT}/${defect.edits[0].file}`;
  const original = await Deno.readTextFile(file);
  const dir = await copyProject(ROOT);
  try {
    await plantDefect(dir, defect);
    const planted = await Deno.readTextFile(`${dir}/${defect.edits[0].file}`);
    assertStringIncludes(planted, defect.edits[0].replace);
    assertEquals(await Deno.readTextFile(file), original);
    const stale: Defect = {
      ...defect,
      id: "stale",
      edits: [{ ...defect.edits[0], search: "nope" }],
    };
    await plantDefect(dir, stale).then(
      () => assert(false, "a stale defect was planted"),
      (error) => assert(error instanceof StaleDefectError),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a mutant counts as caught only with a failing drill and the one right diagnosis", () => {
  const defect = DEFECTS.find((d) => d.id === "sync-failure-not-logged")!;
  const silent = diagnose("Silent Failures");
  const backoff = diagnose("Backoff Not Activated");
  assertEquals(judge(defect, 1, [check(true, null), check(false, silent)]).verdict, "caught");
  assertEquals(judge(defect, 0, [check(true, null)]).verdict, "MISSED");
  // The false "Backoff Not Activated" next to the right diagnosis of issue 16.
  const both = judge(defect, 1, [check(false, silent), check(false, backoff)]);
  assertEquals(both.verdict, "WRONG DIAGNOSIS");
  assertEquals(both.diagnoses, ["Silent Failures", "Backoff Not Activated"]);
  const table = renderTable([both]);
  assertStringIncludes(table, "| `sync-failure-not-logged` | 1 | api/503 |");
  assertEquals(allCaught([both]), false);
});
