/**
 * @module The connections list: filters in the query string, keyset pages from the database,
 * the drill's verification columns and the freshness ages.
 */
import { html } from "hono/html";
import { z } from "zod";
import type { Sql } from "../storage/client.ts";
import {
  type ConnectionListRow,
  CONSOLE_STATES,
  type ConsoleState,
  listConnectionPage,
} from "../storage/connection_views.ts";
import { listProviders } from "../storage/calendar_providers.ts";
import { CONSOLE_PREFIX, type Html, stateBadge, stateLabel, timeCell } from "./console_layout.ts";
import { errorSummary } from "./error_text.ts";

/** Rows per page. */
export const PAGE_SIZE = 50;

const Filters = z.object({
  q: z.string().max(200).optional().catch(undefined),
  provider: z.string().max(200).optional().catch(undefined),
  state: z.enum(CONSOLE_STATES).optional().catch(undefined),
  after: z.string().max(64).optional().catch(undefined),
  before: z.string().max(64).optional().catch(undefined),
});

/** The list's filters, parsed leniently from a query string (bad values are dropped). */
export type ListFilters = z.output<typeof Filters>;

/** Parses the query string; empty values mean "no filter". */
export function parseFilters(query: Record<string, string>): ListFilters {
  const present = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== ""));
  return Filters.parse(present);
}

function pageLink(filters: ListFilters, position: { after?: string; before?: string }): string {
  const params = new URLSearchParams();
  if (filters.q) params.set("q", filters.q);
  if (filters.provider) params.set("provider", filters.provider);
  if (filters.state) params.set("state", filters.state);
  for (const [k, v] of Object.entries(position)) if (v) params.set(k, v);
  return `${CONSOLE_PREFIX}/connections?${params}`;
}

function row(r: ConnectionListRow, now: number): Html {
  return html`
    <tr>
      <td><a href="${CONSOLE_PREFIX}/connections/${r.id}"><code>${r.id}</code></a></td>
      <td>${r.provider_name}</td>
      <td>${r.external_calendar_id}${r.account_label
        ? html`<br><span class="muted">${r.account_label}</span>`
        : ""}</td>
      <td>${stateBadge(r.state)}${r.held_deletions > 0
        ? html`<br><span class="muted">${r.held_deletions} held</span>`
        : ""}</td>
      <td class="num">${r.error_count}</td>
      <td>${errorSummary(r.last_error)}</td>
      <td>${timeCell(r.backoff_until, now)}</td>
      <td>${r.sync_needed ? "yes" : "no"}</td>
      <td>${timeCell(r.last_success_at, now)}</td>
      <td>${timeCell(r.last_notification_at, now)}</td>
      <td>${timeCell(r.last_verified_at, now)}</td>
    </tr>
  `;
}

function filterForm(filters: ListFilters, providers: string[]): Html {
  const option = (value: string, label: string, selected: boolean) =>
    html`
      <option value="${value}" ${selected
        ? html`
          selected
        `
        : ""}>${label}</option>
    `;
  return html`
    <form class="filters" method="get" action="${CONSOLE_PREFIX}/connections"
      role="search">
      <label for="q">Search (id, calendar, account, provider)
          <input id="q" name="q" type="search" value="${filters.q ?? ""}" size="30"></label>
      <label for="provider">Provider
          <select id="provider" name="provider">${option("", "any", !filters.provider)}${providers
            .map((p) => option(p, p, filters.provider === p))}</select></label>
      <label for="state">State
          <select id="state" name="state">${option("", "any", !filters.state)}${CONSOLE_STATES.map((
            s,
          ) => option(s, stateLabel(s), filters.state === s))}</select></label>
      <button type="submit">Filter</button>
    </form>
  `;
}

/** The list page's body for one page of connections. */
export async function connectionsBody(sql: Sql, filters: ListFilters, now: number): Promise<Html> {
  const providers = (await listProviders(sql)).map((p) => p.name);
  const { rows, more } = await listConnectionPage(sql, {
    search: filters.q,
    provider: filters.provider,
    state: filters.state as ConsoleState | undefined,
    after: filters.after,
    before: filters.before,
    limit: PAGE_SIZE,
  });
  const backwards = filters.before !== undefined;
  const first = rows[0]?.id;
  const last = rows.at(-1)?.id;
  const hasPrevious = backwards ? more : filters.after !== undefined;
  const hasNext = backwards ? true : more;
  const nav = html`
    <nav aria-label="Pages">
      <ul class="actions">
        <li><a href="${pageLink(filters, {})}">First page</a></li>
        ${hasPrevious && first
          ? html`<li><a href="${pageLink(filters, { before: first })}" rel="prev">Previous</a></li>`
          : ""}
        ${hasNext && last
          ? html`<li><a href="${pageLink(filters, { after: last })}" rel="next">Next</a></li>`
          : ""}</ul>
    </nav>
  `;
  return html`${filterForm(filters, providers)}
  ${
    rows.length === 0 ? html`<p>No connections match.</p>` : html`
      <table>
        <caption>Connections, ${rows.length} on this page, in id order</caption>
        <thead>
          <tr>
            <th scope="col">id</th>
            <th scope="col">provider</th>
            <th scope="col">calendar</th>
            <th scope="col">state</th>
            <th scope="col" class="num">error_count</th>
            <th scope="col">last_error</th>
            <th scope="col">backoff_until</th>
            <th scope="col">sync_needed</th>
            <th scope="col">last success</th>
            <th scope="col">last notification</th>
            <th scope="col">last verified</th>
          </tr>
        </thead>
        <tbody>${rows.map((r) => row(r, now))}</tbody>
      </table>
    `
  }
  ${nav}`;
}
