/**
 * @module The overview: connections by state per provider, the stalest connections, drift
 * repairs, the optional breaker and subscriber sections, and the database's state. Rendered as
 * a fragment the page's script polls, so it refreshes itself; a database that does not answer
 * is said, not thrown.
 */
import { html } from "hono/html";
import type { Metrics } from "../metrics/metrics.ts";
import { type Sql, withDeadline } from "../storage/client.ts";
import {
  CONSOLE_STATES,
  providerOverview,
  type ProviderOverviewRow,
  stalestConnections,
} from "../storage/connection_views.ts";
import { logger } from "../log/setup.ts";
import { CONSOLE_PREFIX, type Html, stateLabel, timeCell } from "./console_layout.ts";
import { subscriberLagSection } from "./subscriber_section.ts";
import { providerBreakersSection } from "./breaker_section.ts";

const log = logger("console");

/** What the overview shows when the database answered. */
export type OverviewData = {
  providers: ProviderOverviewRow[];
  stalest: { success: string | null; verification: string | null };
  breakers: Html | null;
  subscribers: Html | null;
};

/** The overview's data, or why the database could not give it. */
export type OverviewResult =
  | { database: "up"; data: OverviewData }
  | { database: "down"; reason: string };

/** Reads the overview within `deadlineMs`; a missing or failing database is a result. */
export async function loadOverview(
  sql: Sql | null,
  deadlineMs: number,
): Promise<OverviewResult> {
  if (sql === null) return { database: "down", reason: "the database is not open yet" };
  try {
    return await withDeadline(
      (async () => ({
        database: "up" as const,
        data: {
          providers: await providerOverview(sql),
          stalest: await stalestConnections(sql),
          breakers: await providerBreakersSection(sql),
          subscribers: await subscriberLagSection(sql),
        },
      }))(),
      deadlineMs,
      "The console overview",
    );
  } catch (error) {
    log.error("Cannot read the console overview: {error_message}", {
      kind: "database",
      error_message: (error as Error).message,
    });
    return { database: "down", reason: (error as Error).message };
  }
}

/** Drift repairs counted by this process (`calendar_sync_drift_repairs_total`), by provider. */
export async function driftRepairs(metrics: Metrics | undefined): Promise<Map<string, number>> {
  const totals = new Map<string, number>();
  if (!metrics) return totals;
  for (const value of (await metrics.driftRepairs.get()).values) {
    const provider = String(value.labels.provider ?? "");
    totals.set(provider, (totals.get(provider) ?? 0) + value.value);
  }
  return totals;
}

function providerTable(rows: ProviderOverviewRow[], now: number, repairs: Map<string, number>) {
  const link = (provider: string, state: string, n: number) =>
    n === 0
      ? html`<span class="muted">0</span>`
      : html`<a href="${CONSOLE_PREFIX}/connections?${new URLSearchParams({
        provider,
        state,
      })}">${n}</a>`;
  return html`
    <table>
      <caption>Connections by state, per provider</caption>
      <thead>
        <tr><th scope="col">Provider</th>${CONSOLE_STATES.map((s) =>
          html`<th scope="col" class="num">${stateLabel(s)}</th>`
        )}<th scope="col" class="num">total</th><th scope="col">oldest successful sync</th>
          <th scope="col">oldest verification</th><th scope="col" class="num">drift repairs</th></tr>
      </thead>
      <tbody>${rows.map((row) =>
        html`<tr><th scope="row">${row.provider_name} <span class="muted">(${row.kind}${
          row.allowlisted ? "" : ", not allowlisted"
        })</span></th>${
          CONSOLE_STATES.map((s) =>
            html`<td class="num">${link(row.provider_name, s, row.counts[s])}</td>`
          )
        }<td class="num">${row.total}</td><td>${timeCell(row.oldest_success_at, now)}</td>
        <td>${timeCell(row.oldest_verified_at, now)}</td>
        <td class="num">${repairs.get(row.kind) ?? 0}</td></tr>`
      )}</tbody>
    </table>
  `;
}

/** The overview fragment (also the body of the page's live region). */
export function renderOverview(
  result: OverviewResult,
  now: number,
  repairs: Map<string, number>,
): Html {
  const checked = html`<p class="muted">Updated <time datetime="${new Date(now).toISOString()}">${
    new Date(now).toISOString()
  }</time></p>`;
  if (result.database === "down") {
    return html`<p class="alert" role="alert"><strong>Database down</strong>: ${result.reason}.
      The daemon keeps retrying; this page refreshes by itself.</p>${checked}`;
  }
  const { providers, stalest, breakers, subscribers } = result.data;
  const connection = (id: string | null, label: string) =>
    id === null
      ? ""
      : html`<li>${label}: <a href="${CONSOLE_PREFIX}/connections/${id}">${id}</a></li>`;
  return html`<p><span class="state state-active">database up</span></p>
    ${
    providers.length === 0
      ? html`<p>No providers yet (<code>calsync providers add</code>).</p>`
      : providerTable(providers, now, repairs)
  }
    <ul>${connection(stalest.success, "Longest without a successful sync")}${
    connection(stalest.verification, "Longest without a verification")
  }</ul>
    <p class="muted">Drift repairs: rows reconciliations repaired, counted by this process since it
      started (<code>calendar_sync_drift_repairs_total</code>; the last 24 h are in Prometheus).</p>
    ${breakers ?? ""}${subscribers ?? ""}${checked}`;
}

/** The overview page's body: the fragment inside a live region the script refreshes. */
export function overviewBody(fragment: Html): Html {
  return html`
    <div id="overview" aria-live="polite" data-refresh="${CONSOLE_PREFIX}/overview/fragment"
      data-interval="3000">${fragment}</div>
  `;
}
