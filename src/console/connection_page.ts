/**
 * @module One connection's page: its state and the drill's columns, the last error (redacted,
 * pretty-printed), its push channels (never their secrets), held deletions, mirrored event
 * count, a week of occurrences, and the actions that apply now.
 */
import { html } from "hono/html";
import type { Sql } from "../storage/client.ts";
import { countEvents, listOccurrences } from "../storage/calendar_events.ts";
import { type ConnectionStatusRow, listConnectionStatus } from "../storage/connections.ts";
import { listHeldDeletions } from "../storage/held_event_deletions.ts";
import { listConnectionChannels } from "../storage/webhook_channels.ts";
import { ACTION_NAMES, ACTIONS } from "./connection_actions.ts";
import { CONSOLE_PREFIX, type Html, stateBadge, timeCell } from "./console_layout.ts";
import { prettyError } from "./error_text.ts";
import { renderWeek, weekStart } from "./week_view.ts";

/** The console state of a status row (active split by backoff). */
export function consoleState(row: ConnectionStatusRow, now: number): string {
  if (row.status !== "active") return row.status;
  return row.backoff_until !== null && row.backoff_until.getTime() > now ? "backing_off" : "active";
}

/** Reads the connection's status row; null when there is none. */
export async function findConnection(sql: Sql, id: string): Promise<ConnectionStatusRow | null> {
  const [row] = await listConnectionStatus(sql, { connectionId: id });
  return row ?? null;
}

/** The live part of the page (state and columns), also served alone for the refresh. */
export function stateFragment(row: ConnectionStatusRow, now: number): Html {
  return html`
      <dl class="fields">
      <dt>State</dt>
      <dd>${stateBadge(consoleState(row, now))}</dd>
      <dt>error_count</dt>
      <dd>${row.error_count}</dd>
      <dt>backoff_until</dt>
      <dd>${timeCell(row.backoff_until, now)}</dd>
      <dt>sync_needed</dt>
      <dd>${row.sync_needed ? "yes" : "no"}</dd>
      <dt>Last successful sync</dt>
      <dd>${timeCell(row.last_success_at, now)}</dd>
      <dt>Last sync attempt</dt>
      <dd>${timeCell(row.last_synced_at, now)}</dd>
      <dt>Last notification</dt>
      <dd>${timeCell(row.last_notification_at, now)}</dd>
      <dt>Last verification</dt>
      <dd>${timeCell(row.last_verified_at, now)}</dd>
      <dt>Next due</dt>
      <dd>${timeCell(row.due_at, now)}</dd>
      <dt>Lease</dt>
      <dd>${row.lease_owner ? html`held until ${timeCell(row.lease_expires_at, now)}` : "none"}</dd>
    </dl>
        <h2>Last error</h2>
    ${row.last_error === null
      ? html`<p class="muted">None.</p>`
      : html`${
        row.error_count === 0
          ? html`<p class="muted">Recorded before the last successful sync.</p>`
          : ""
      }<pre>${prettyError(row.last_error)}</pre>`}
  `;
}

async function channelsSection(sql: Sql, id: string, now: number): Promise<Html> {
  const channels = await listConnectionChannels(sql, id);
  if (channels.length === 0) {
    return html`<p class="muted">No push channel or subscription: polled only.</p>`;
  }
  // Secrets (Google channel token, Graph clientState) are never selected into the page.
  return html`
    <table>
      <thead>
        <tr>
          <th scope="col">channel / subscription id</th>
          <th scope="col">status</th>
          <th scope="col">expires</th>
          <th scope="col">renewed</th>
          <th scope="col" class="num">errors</th>
        </tr>
      </thead>
      <tbody>${channels.map((ch) =>
        html`
          <tr>
            <td><code>${ch.channel_id ?? "(not yet created)"}</code></td>
            <td>${ch.status}</td>
            <td>${timeCell(ch.expires_at, now)}</td>
            <td>${timeCell(ch.renewed_at, now)}</td>
            <td class="num">${ch.error_count}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

function actionsSection(row: ConnectionStatusRow, now: number): Html {
  const available = ACTION_NAMES.filter((name) => ACTIONS[name].applies(row, now));
  if (available.length === 0) return html`<p class="muted">No action applies in this state.</p>`;
  return html`<ul class="actions">${
    available.map((name) =>
      html`<li><a href="${CONSOLE_PREFIX}/connections/${row.id}/actions/${name}">${
        ACTIONS[name].label
      }</a></li>`
    )
  }</ul>`;
}

/** The page's body. */
export async function connectionBody(
  sql: Sql,
  row: ConnectionStatusRow,
  options: { now: number; week: Date; flash: string | null },
): Promise<Html> {
  const start = weekStart(options.week);
  const end = new Date(start.getTime() + 7 * 86_400_000);
  const events = await listOccurrences(sql, row.id, {
    from: start.toISOString(),
    to: end.toISOString(),
    zone: "UTC",
  });
  const held = row.held_deletions > 0 ? await listHeldDeletions(sql, row.id) : [];
  const href = `${CONSOLE_PREFIX}/connections/${row.id}`;
  return html`
    ${options.flash ? html`<p class="notice" role="status">${options.flash}</p>` : ""}
      <p>${row.provider_name} (${row.provider_kind}) · calendar <code>${row
        .external_calendar_id}</code>${row.account_label
        ? html`
          · ${row.account_label}
        `
        : ""}</p>
      <h2>Actions</h2>
      ${actionsSection(row, options.now)}
      <h2>State</h2>
      <div id="connection-state" aria-live="polite" data-refresh="${href}/state"
      data-interval="2000">
        ${stateFragment(row, options.now)}
      </div>
      <h2>Push channel</h2>
      ${await channelsSection(sql, row.id, options.now)}
      <h2>Mirror</h2>
      <p>Mirrored occurrences: ${await countEvents(sql, row.id)}.${held.length > 0
        ? html`
          ${held.length} deletions held: <code>${held.slice(0, 20).join(
            ", ",
          )}</code>${held.length > 20 ? " …" : ""}
        `
        : ""}</p>
      <h2>This week</h2>
      ${renderWeek(start, events, href)}
  `;
}
