/**
 * @module `deno task drill-mutants`: plants each defect of `defects.ts` in a scratch copy of the
 * project, runs the whole drill there, and prints the table (defect, drill exit code, scenario
 * that failed, diagnosis). Exits 1 unless every defect was caught with its right diagnosis.
 * Mutants run one after another: each drill is a daemon, fakes and a database of its own.
 */
import { parseFlags, writeAll } from "../../testkit/cli_args.ts";
import type { CheckRecord } from "../drill/records.ts";
import { copyProject, plantDefect, StaleDefectError } from "./apply.ts";
import { type Defect, DEFECTS } from "./defects.ts";
import { allCaught, judge, type MutantRow, notRun, renderTable } from "./table.ts";

const USAGE = `Usage: deno task drill-mutants [--only ID,ID] [--keep]

Plants each defect the drill claims to catch in a scratch copy of the project, runs the drill
there against DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), and prints
defect, drill exit code, the scenario that failed and the diagnosis.

  --only IDS  run only these defects (comma-separated ids from drills/mutants/defects.ts)
  --keep      keep each scratch copy and its drill report (paths go to stderr)
`;

const FLAGS = { only: { type: "string" }, keep: { type: "boolean" } } as const;

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

type Options = { only: string[] | null; keep: boolean };

function readOptions(values: { only?: string; keep?: boolean }): Options {
  const only = values.only === undefined ? null : values.only.split(",").map((s) => s.trim());
  const unknown = (only ?? []).filter((id) => !DEFECTS.some((d) => d.id === id));
  if (unknown.length > 0) throw new Error(`Unknown defect ids: ${unknown.join(", ")}`);
  return { only, keep: values.keep === true };
}

/** Runs the drill in `dir`; resolves to its exit code and the checks of its JSON report. */
async function drillIn(dir: string): Promise<{ code: number; checks: CheckRecord[] }> {
  const out = `${dir}/.mutant-report`;
  const databaseUrl = Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
  const result = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${dir}/main.ts`, "drill", "--out", out],
    cwd: dir,
    env: { DATABASE_URL: databaseUrl, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const report = await Deno.readTextFile(`${out}/drill-report.json`).then(
    (text) => JSON.parse(text) as { checks: CheckRecord[] },
    () => null,
  );
  if (report === null) {
    const tail = new TextDecoder().decode(result.stderr).slice(-400);
    throw new Error(`The drill wrote no report (exit ${result.code}): ${tail}`);
  }
  return { code: result.code, checks: report.checks };
}

async function runOne(defect: Defect, options: Options): Promise<MutantRow> {
  if (defect.pending !== undefined) return notRun(defect, "pending", defect.pending);
  const dir = await copyProject(ROOT);
  try {
    await plantDefect(dir, defect);
    const { code, checks } = await drillIn(dir);
    return judge(defect, code, checks);
  } catch (error) {
    if (error instanceof StaleDefectError) return notRun(defect, "STALE", error.message);
    throw error;
  } finally {
    if (options.keep) writeAll(Deno.stderr, `[mutants] ${defect.id}: kept ${dir}\n`);
    else await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the mutation table; returns the exit code. */
export async function runMutantsCli(args: string[]): Promise<number> {
  const parsed = parseFlags(
    args,
    { name: "drill-mutants", usage: USAGE, flags: FLAGS },
    readOptions,
  );
  if ("exitCode" in parsed) return parsed.exitCode;
  const { options } = parsed;
  const defects = DEFECTS.filter((d) => options.only === null || options.only.includes(d.id));
  const rows: MutantRow[] = [];
  for (const defect of defects) {
    const began = performance.now();
    const row = await runOne(defect, options);
    rows.push(row);
    const seconds = ((performance.now() - began) / 1000).toFixed(1);
    writeAll(
      Deno.stderr,
      `[mutants] ${defect.id}: ${row.verdict} in ${seconds} s` +
        (row.note ? ` (${row.note})` : "") + "\n",
    );
  }
  writeAll(Deno.stdout, `${renderTable(rows)}\n`);
  return allCaught(rows) ? 0 : 1;
}

if (import.meta.main) Deno.exit(await runMutantsCli(Deno.args));
