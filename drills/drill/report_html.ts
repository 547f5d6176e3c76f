/**
 * @module The drill report as one self-contained HTML file (`report.html`): the results block,
 * every check with its evidence, and per scenario run an SVG timeline. No script, styles inline;
 * every value is escaped by hono/html (evidence quotes provider and daemon text).
 */
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { CheckRecord, VerificationRecord } from "./records.ts";
import { checkName, type DrillReport, renderResultsBlock, type Verdict } from "./report.ts";
import type { Timeline, TimelineEvent, TimelineKind } from "./timeline.ts";

type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

const LANES: { kinds: TimelineKind[]; label: string }[] = [
  { kinds: ["fault"], label: "fault injected" },
  { kinds: ["request"], label: "provider requests" },
  { kinds: ["failure", "recovery"], label: "sync runs" },
  { kinds: ["backoff"], label: "backoff_until" },
  { kinds: ["webhook"], label: "webhook deliveries" },
];

const WIDTH = 960;
const GUTTER = 170;
const LANE = 30;
const TOP = 24;
const OK = "#1a7f37";
const BAD = "#cf222e";
const BACKOFF = "#d4a72c";
const FAULT = "#8c959f";

/** The time span a timeline covers: first moment to last end, at least one second. */
export function timelineSpan(events: readonly TimelineEvent[]): { from: number; to: number } {
  if (events.length === 0) return { from: 0, to: 1_000 };
  const from = Math.min(...events.map((e) => e.at));
  const to = Math.max(...events.map((e) => e.until ?? e.at));
  return { from, to: Math.max(to, from + 1_000) };
}

function mark(e: TimelineEvent, x: (t: number) => number, y: number): Html {
  const title = html`<title>${e.label} at ${new Date(e.at).toISOString()}</title>`;
  if (e.until !== undefined) {
    const fill = e.kind === "backoff" ? BACKOFF : FAULT;
    const w = Math.max(2, x(e.until) - x(e.at));
    return html`
      <rect x="${x(e.at).toFixed(1)}" y="${y - 8}" width="${w.toFixed(
        1,
      )}" height="16" fill="${fill}"
        fill-opacity="0.55" stroke="${fill}">${title}</rect>
    `;
  }
  const cx = x(e.at).toFixed(1);
  if (e.kind === "failure") {
    const a = x(e.at);
    return html`
      <path
        d="M${a - 6} ${y - 6}L${a + 6} ${y + 6}M${a + 6} ${y - 6}L${a - 6} ${y + 6}"
        stroke="${BAD}" stroke-width="3">${title}</path>
    `;
  }
  if (e.kind === "recovery") {
    const a = x(e.at);
    return html`
      <polygon
        points="${a},${y - 8} ${a + 8},${y} ${a},${y + 8} ${a - 8},${y}"
        fill="${OK}">${title}</polygon>
    `;
  }
  return html`<circle cx="${cx}" cy="${y}" r="5" fill="${e.ok ? OK : BAD}">${title}</circle>`;
}

/** One scenario run's timeline as an SVG: a lane per kind of event, seconds from its start. */
export function timelineSvg(timeline: Timeline, id: string): Html {
  const { from, to } = timelineSpan(timeline.events);
  const x = (t: number) => GUTTER + ((t - from) / (to - from)) * (WIDTH - GUTTER - 20);
  const height = TOP + LANES.length * LANE + 10;
  const ticks = Array.from({ length: 6 }, (_, i) => from + ((to - from) * i) / 5);
  const name = `${timeline.scenario}/${timeline.variant} ${timeline.provider}`;
  return html`
    <svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="${id}-title"
      viewBox="0 0 ${WIDTH} ${height}" width="100%" class="timeline">
        <title id="${id}-title">Timeline of ${name}: ${timeline.events
          .length} events over ${((to - from) / 1000).toFixed(1)} s</title>
        ${ticks.map((t) =>
          html`
            <line x1="${x(t)}" x2="${x(t)}" y1="${TOP - 6}" y2="${height - 6}" stroke="#8884" />
            <text x="${x(t)}" y="${TOP -
              10}" font-size="11" text-anchor="middle">+${((t - from) / 1000).toFixed(1)} s</text>
          `
        )}
        ${LANES.map((lane, i) => {
          const y = TOP + i * LANE + LANE / 2;
          const events = timeline.events.filter((e) => lane.kinds.includes(e.kind));
          return html`
            <text x="8" y="${y + 4}" font-size="12">${lane.label}</text>
                    <line x1="${GUTTER}" x2="${WIDTH - 20}" y1="${y}" y2="${y}" stroke="#8886" />
                    ${events.map((e) => mark(e, x, y))}
          `;
        })}
      </svg>
  `;
}

function verdictCell(verdict: Verdict | boolean): Html {
  const text = typeof verdict === "boolean" ? (verdict ? "PASS" : "FAIL") : verdict;
  return html`<td class="${
    text === "PASS" ? "pass" : text === "FAIL" ? "fail" : "muted"
  }">${text}</td>`;
}

function checksTable(checks: readonly CheckRecord[]): Html {
  return html`
    <table>
      <thead>
        <tr>
          <th scope="col">check</th>
          <th scope="col">phase</th>
          <th scope="col">verdict</th>
          <th scope="col">evidence</th>
        </tr>
      </thead>
      <tbody>${checks.map((c) =>
        html`<tr><td>${checkName(c)}</td><td>${c.phase}</td>${verdictCell(c.pass)}<td>${c.detail}${
          c.diagnosis
            ? html`<div class="diagnosis"><strong>${c.diagnosis.symptom}</strong>: ${
              c.diagnosis.symptoms.join("; ")
            }. Actions: ${c.diagnosis.actions.join("; ")}.</div>`
            : ""
        }</td></tr>`
      )}</tbody>
    </table>
  `;
}

function verificationTable(record: VerificationRecord): Html {
  const columns = ["id", "error_count", "last_error", "backoff_until", "sync_needed"];
  const text = (value: unknown) =>
    value === null || value === undefined
      ? "null"
      : value instanceof Date
      ? value.toISOString()
      : typeof value === "object"
      ? JSON.stringify(value)
      : String(value);
  return html`
    <h3>${record.scenario}/${record.variant} ${record.provider}, ${record.phase === "outage"
      ? "during the fault"
      : "after recovery"}</h3>
    <table>
      <thead>
        <tr>${columns.map((c) => html`<th scope="col">${c}</th>`)}</tr>
      </thead>
      <tbody>${record.rows.map((row) =>
        html`<tr>${
          columns.map((c) => html`<td>${text((row as Record<string, unknown>)[c])}</td>`)
        }</tr>`
      )}</tbody>
    </table>
  `;
}

const STYLE = `body{font:15px/1.45 system-ui,sans-serif;margin:1rem 2rem;max-width:80rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}th,td{text-align:left;
padding:.2rem .5rem;border-bottom:1px solid #8883;vertical-align:top;overflow-wrap:anywhere}.pass{color:${OK};
font-weight:600}.fail{color:${BAD};font-weight:600}.muted{color:#6e7781}.diagnosis{color:${BAD}}
pre{background:#8881;padding:.5rem;overflow:auto}.legend span{margin-right:1rem}
svg.timeline{border:1px solid #8883;margin-bottom:1rem}`;

/** The whole report.html. */
export async function renderHtmlReport(report: DrillReport): Promise<string> {
  const r = report.results;
  const rows: [string, Verdict | string][] = [
    ["Date", r.date],
    ["External API Outage", r.externalApiOutage],
    ["Database Failure", r.databaseFailure],
    ["Webhook Outage", r.webhookOutage],
    ["Recovery Tests", r.recoveryTests],
    ["Status", r.status],
  ];
  const page = html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <title>calsync drill report ${r.date}</title>
        <style>${STYLE}</style>
      </head>
      <body>
    <h1>calsync outage drill: ${r.status}</h1>
    <p>Started ${report.startedAt}, took ${(report.durationMs / 1000).toFixed(1)} s. Database
    ${report.database}; providers ${report.providers.join(", ")}; scenarios
    ${report.scenarios.join(", ")}.</p>
    <h2>Drill results</h2>
    <table><tbody>${rows.map(([name, value]) =>
      html`<tr><th scope="row">${name}</th>${
        name === "Date" ? html`<td>${value}</td>` : verdictCell(value as Verdict)
      }</tr>`
    )}<tr><th scope="row">Notes</th><td>${r.notes}</td></tr></tbody></table>
    <details><summary>The results block as Markdown</summary><pre>${renderResultsBlock(
      r,
    )}</pre></details>
    <h2>Timelines</h2>
    <p class="legend"><span style="color:${FAULT}">■ fault window</span>
    <span style="color:${OK}">● answered / delivered</span><span style="color:${BAD}">● failed</span>
    <span style="color:${BAD}">✕ sync failed</span><span style="color:${BACKOFF}">■ backoff window</span>
    <span style="color:${OK}">◆ sync succeeded</span></p>
    ${report.timelines.length === 0
      ? html`<p class="muted">No timeline recorded.</p>`
      : report.timelines.map((t, i) =>
        html`<h3>${t.scenario}/${t.variant} ${t.provider}</h3>${timelineSvg(t, `timeline-${i}`)}`
      )}
    <h2>Checks</h2>
    ${checksTable(report.checks)}
    <h2>Verification query</h2>
    ${report.verification.map(verificationTable)}
    ${report.notes.length === 0 ? "" : html`
      <h2>Notes</h2>
      <ul>${report.notes.map((n) => html`<li>${n}</li>`)}</ul>
    `}
      </body>
    </html>
  `;
  return (await page).toString();
}
