/** @module The operator kit under deploy/: alert rules, their unit tests, dashboard and runbook. */
import { createMetrics } from "../../src/metrics/metrics.ts";
import { assert, assertEquals } from "../support/assert.ts";

const root = new URL("../../deploy/", import.meta.url);
const alertsPath = new URL("prometheus/alerts.yml", root);
const alertsTestPath = new URL("prometheus/alerts_test.yml", root);
const dashboardPath = new URL("grafana/calsync-dashboard.json", root);
const runbookPath = new URL("RUNBOOK.md", root);

/** One alerting rule as read from alerts.yml. */
type AlertRule = {
  name: string;
  expr: string;
  hasFor: boolean;
  severity: string | null;
  annotations: Record<string, string>;
};

/**
 * Reads the alerting rules of alerts.yml. There is no YAML parser on our machines (JSR is
 * unreachable), so this reads the file's own layout strictly: `- alert:` starts a rule, `expr:` is
 * inline or a block scalar, annotations are single-line. The promtool test below cross-checks the
 * rule count.
 */
function parseAlertRules(text: string): AlertRule[] {
  const lines = text.split("\n");
  const rules: AlertRule[] = [];
  let section: "labels" | "annotations" | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const start = line.match(/^\s*- alert:\s*(\S+)\s*$/);
    if (start) {
      rules.push({ name: start[1], expr: "", hasFor: false, severity: null, annotations: {} });
      section = null;
      continue;
    }
    const rule = rules.at(-1);
    if (!rule || /^\s*(#.*)?$/.test(line)) continue;
    const field = line.match(/^(\s*)([a-z_]+):\s*(.*)$/);
    if (!field) continue;
    const [, indent, key, value] = field;
    if (key === "expr") {
      if (/^[>|][-+]?$/.test(value)) {
        const body: string[] = [];
        while (
          i + 1 < lines.length &&
          (lines[i + 1].trim() === "" || lines[i + 1].search(/\S/) > indent.length)
        ) {
          body.push(lines[++i].trim());
        }
        rule.expr = body.join(" ").trim();
      } else {
        rule.expr = value.trim();
      }
      section = null;
    } else if (key === "for") {
      rule.hasFor = value.trim() !== "";
    } else if (key === "labels" || key === "annotations") {
      section = key;
    } else if (section === "labels" && key === "severity") {
      rule.severity = value.trim();
    } else if (section === "annotations") {
      rule.annotations[key] = value.trim().replace(/^"(.*)"$/, "$1");
    }
  }
  return rules;
}

const PROMQL_WORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "inf",
  "nan",
]);

/** The metric names a PromQL expression (or a Grafana `label_values(...)` query) selects. */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/^\s*label_values\((.*),\s*\w+\s*\)\s*$/, "$1")
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\$\{?\w+\}?/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = [];
  for (const match of stripped.matchAll(/(?<![\w.:$])[a-zA-Z_:][\w:]*(?=\s*(\()?)/g)) {
    if (match[1] === "(") continue; // a function call
    if (PROMQL_WORDS.has(match[0].toLowerCase())) continue;
    names.push(match[0]);
  }
  return names;
}

/** Every series name calsync exports: histograms as their _bucket/_sum/_count series. */
async function exportedSeriesNames(): Promise<Set<string>> {
  const { registry } = createMetrics();
  const names = new Set<string>(["up"]);
  for (const metric of await registry.getMetricsAsJSON()) {
    if (String(metric.type) === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(metric.name + suffix);
    } else {
      names.add(metric.name);
    }
  }
  return names;
}

/** GitHub's anchor for a Markdown heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-");
}

function runbookAnchors(markdown: string): Set<string> {
  return new Set(
    [...markdown.matchAll(/^#{1,6}\s+(.+)$/gm)].map((match) => slug(match[1])),
  );
}

/** Every `expr` of the dashboard's targets and every query of its query variables. */
function dashboardExpressions(dashboard: Record<string, unknown>): string[] {
  const expressions: string[] = [];
  const visit = (panels: unknown) => {
    for (const panel of (panels ?? []) as Record<string, unknown>[]) {
      for (const target of (panel.targets ?? []) as { expr?: string }[]) {
        if (target.expr) expressions.push(target.expr);
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  const variables = (dashboard.templating as { list?: Record<string, unknown>[] })?.list ?? [];
  for (const variable of variables) {
    if (variable.type !== "query") continue;
    const query = variable.query as string | { query?: string };
    const text = typeof query === "string" ? query : query?.query;
    if (text) expressions.push(text);
  }
  return expressions;
}

async function promtoolInstalled(): Promise<boolean> {
  const which = await new Deno.Command("sh", { args: ["-c", "command -v promtool"] }).output();
  return which.success;
}

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command("promtool", { args, stdout: "piped", stderr: "piped" })
    .output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    output: decoder.decode(result.stdout) + decoder.decode(result.stderr),
  };
}

Deno.test("the PromQL reader finds metric names and only metric names", () => {
  assertEquals(
    metricNames(
      'histogram_quantile(0.99, sum by (le, provider) (rate(foo_bucket{job="$job", a=~"x|y"}[$__rate_interval])))',
    ),
    ["foo_bucket"],
  );
  assertEquals(
    metricNames(
      '(sum(increase(a_total{outcome="success"}[30m])) or vector(0)) == 0 and on () max(b{state="due"}) > 0',
    ),
    ["a_total", "b"],
  );
  assertEquals(metricNames("sum(rate(x[5m] offset 1h)) by (job) > bool 1e3"), ["x"]);
  assertEquals(metricNames('label_values(calsync_database_up{job="$job"}, instance)'), [
    "calsync_database_up",
  ]);
  assertEquals(metricNames("time() - process_start_time_seconds"), ["process_start_time_seconds"]);
});

Deno.test("alert rules pass promtool check rules and their unit tests (when promtool is installed)", async (t) => {
  if (!(await promtoolInstalled())) {
    await t.step({ name: "promtool not installed: skipped", ignore: true, fn: () => {} });
    return;
  }
  const rules = parseAlertRules(await Deno.readTextFile(alertsPath));
  await t.step("promtool check rules", async () => {
    const result = await promtool("check", "rules", alertsPath.pathname);
    assertEquals(result.code, 0, `promtool check rules: ${result.output}`);
    const found = result.output.match(/SUCCESS: (\d+) rules found/);
    assert(found, `unexpected promtool output: ${result.output}`);
    assertEquals(Number(found[1]), rules.length, "rules read by this test vs promtool");
  });
  await t.step("promtool test rules", async () => {
    const result = await promtool("test", "rules", alertsTestPath.pathname);
    assertEquals(result.code, 0, `promtool test rules: ${result.output}`);
  });
  await t.step("every alert has a unit test", async () => {
    const tests = await Deno.readTextFile(alertsTestPath);
    const tested = new Set([...tests.matchAll(/alertname:\s*(\S+)/g)].map((match) => match[1]));
    const untested = rules.map((rule) => rule.name).filter((name) => !tested.has(name));
    assertEquals(untested, [], "alerts without a promtool test");
  });
});

Deno.test("alert rules use only metrics calsync exports, with for, severity, annotations and a runbook section", async () => {
  const text = await Deno.readTextFile(alertsPath);
  const rules = parseAlertRules(text);
  assertEquals(rules.length, [...text.matchAll(/^\s*- alert:/gm)].length, "alerts read");
  assert(rules.length >= 8, `expected at least 8 alerts, read ${rules.length}`);
  const exported = await exportedSeriesNames();
  const anchors = runbookAnchors(await Deno.readTextFile(runbookPath));
  const problems: string[] = [];
  for (const rule of rules) {
    const names = metricNames(rule.expr);
    if (names.length === 0) problems.push(`${rule.name}: no metric in expr "${rule.expr}"`);
    for (const name of names) {
      if (!exported.has(name)) problems.push(`${rule.name}: unknown metric ${name}`);
    }
    if (!rule.hasFor) problems.push(`${rule.name}: no for:`);
    if (!["warning", "critical"].includes(rule.severity ?? "")) {
      problems.push(`${rule.name}: severity ${rule.severity}`);
    }
    for (const key of ["summary", "description", "runbook_url"]) {
      if (!rule.annotations[key]) problems.push(`${rule.name}: no ${key} annotation`);
    }
    const expected = `deploy/RUNBOOK.md#${slug(rule.name)}`;
    if (rule.annotations.runbook_url !== expected) {
      problems.push(`${rule.name}: runbook_url ${rule.annotations.runbook_url}, want ${expected}`);
    }
    if (!anchors.has(slug(rule.name))) {
      problems.push(`${rule.name}: no "## ${rule.name}" in RUNBOOK.md`);
    }
  }
  assertEquals(problems, []);
});

Deno.test("the runbook's links to its own sections resolve", async () => {
  const markdown = await Deno.readTextFile(runbookPath);
  const anchors = runbookAnchors(markdown);
  const broken = [...markdown.matchAll(/\]\(#([^)]+)\)/g)]
    .map((match) => match[1])
    .filter((anchor) => !anchors.has(anchor));
  assertEquals(broken, []);
});

Deno.test("the Grafana dashboard queries only metrics calsync exports, through ${DS_PROMETHEUS}", async () => {
  const dashboard = JSON.parse(await Deno.readTextFile(dashboardPath));
  assert(dashboard.schemaVersion >= 36, `schemaVersion ${dashboard.schemaVersion}`);
  const inputs = (dashboard.__inputs ?? []) as { name: string; type: string }[];
  assert(inputs.some((input) => input.name === "DS_PROMETHEUS" && input.type === "datasource"));
  const variables = dashboard.templating.list as { name: string; type: string }[];
  assert(variables.some((v) => v.name === "DS_PROMETHEUS" && v.type === "datasource"));

  const exported = await exportedSeriesNames();
  const problems: string[] = [];
  const used = new Set<string>();
  const ids = new Set<number>();
  for (const panel of dashboard.panels as Record<string, unknown>[]) {
    if (ids.has(panel.id as number)) problems.push(`duplicate panel id ${panel.id}`);
    ids.add(panel.id as number);
    if (panel.type === "row") continue;
    const targets = (panel.targets ?? []) as { expr?: string; datasource?: { uid?: string } }[];
    if (targets.length === 0) problems.push(`panel "${panel.title}" has no queries`);
    const uids = [panel.datasource, ...targets.map((target) => target.datasource)]
      .map((source) => (source as { uid?: string } | undefined)?.uid);
    if (uids.some((uid) => uid !== "${DS_PROMETHEUS}")) {
      problems.push(`panel "${panel.title}" does not use \${DS_PROMETHEUS}`);
    }
  }
  for (const expr of dashboardExpressions(dashboard)) {
    const names = metricNames(expr);
    if (names.length === 0) problems.push(`no metric in "${expr}"`);
    for (const name of names) {
      used.add(name);
      if (!exported.has(name)) problems.push(`unknown metric ${name} in "${expr}"`);
    }
  }
  assertEquals(problems, []);
  const wanted = [
    "calendar_sync_runs_total",
    "calendar_sync_failures_total",
    "calendar_sync_duration_seconds_bucket",
    "calendar_sync_events_written_total",
    "calendar_sync_connections",
    "calendar_webhook_notifications_total",
    "calendar_webhook_duration_seconds_bucket",
    "calsync_database_up",
    "calendar_scheduler_errors_total",
    "process_resident_memory_bytes",
  ];
  assertEquals(wanted.filter((name) => !used.has(name)), [], "metrics without a panel");
});

Deno.test("the container image carries neither the fakes nor curl, and checks health with the binary", async () => {
  const dockerfile = await Deno.readTextFile(new URL("../../Dockerfile", import.meta.url));
  const copies = dockerfile.split("\n").filter((line) => line.startsWith("COPY"));
  for (const fake of ["testkit", "drills"]) {
    assert(!copies.some((line) => line.includes(fake)), `${fake}/ is copied into the build`);
  }
  assert(!/\bcurl\b/.test(dockerfile.replace(/^#.*$/gm, "")), "curl is in the image");
  assert(/HEALTHCHECK[\s\S]*calsync", "healthcheck"/.test(dockerfile), "no binary health check");
});

Deno.test("the production module graph of main.ts reaches neither testkit/ nor drills/", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../../main.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "null",
  }).output();
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  const fakes = graph.modules.map((m) => m.specifier).filter((s) => /\/(testkit|drills)\//.test(s));
  assertEquals(fakes, []);
});

Deno.test("the systemd unit caps memory and files, hides /proc, and loads secrets as credentials", async () => {
  const unit = await Deno.readTextFile(new URL("calsync.service", root));
  const settings = new Map<string, string[]>();
  for (const line of unit.split("\n")) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (match) settings.set(match[1], [...(settings.get(match[1]) ?? []), match[2]]);
  }
  assert(/^\d+[KMG]$/.test(settings.get("MemoryMax")?.[0] ?? ""), "MemoryMax");
  assert(
    Number(settings.get("LimitNOFILE")?.[0]) > 1_024,
    "LimitNOFILE above HTTP_MAX_CONNECTIONS",
  );
  assertEquals(settings.get("ProtectProc"), ["invisible"]);
  const credentials = settings.get("LoadCredential") ?? [];
  assert(credentials.some((c) => c.startsWith("database_url:")), "DATABASE_URL as a credential");
  const environment = settings.get("Environment") ?? [];
  assert(environment.includes("DATABASE_URL_FILE=%d/database_url"), environment.join(" "));
  assert(!settings.has("MemoryDenyWriteExecute"), "breaks V8's JIT");
});
