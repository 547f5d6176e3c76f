/**
 * @module The operator's actions on one connection: which apply in which state, the confirm
 * form each needs, and doing them through the same storage and sync functions the CLI uses.
 */
import { html } from "hono/html";
import type { ConnectionStatusRow } from "../storage/connections.ts";
import { requestSync } from "../storage/connections.ts";
import type { Sql } from "../storage/client.ts";
import { releaseDeletions } from "../sync/release_deletions.ts";
import { CONSOLE_PREFIX, type Html } from "./console_layout.ts";

/** The actions, by the name in their URL. */
export const ACTION_NAMES = [
  "sync",
  "full-resync",
  "force",
  "release-deletions",
  "re-enable",
] as const;

/** One of ACTION_NAMES. */
export type ActionName = (typeof ACTION_NAMES)[number];

function backingOff(row: ConnectionStatusRow, now: number): boolean {
  return row.status === "active" && row.backoff_until !== null &&
    row.backoff_until.getTime() > now;
}

/** What each action is called, what it does, and when it applies. */
export const ACTIONS: Record<
  ActionName,
  { label: string; explain: string; applies: (row: ConnectionStatusRow, now: number) => boolean }
> = {
  sync: {
    label: "Sync now",
    explain: "Requests an incremental sync. A pending backoff still holds unless you also go " +
      "past it below.",
    applies: (row) => row.status === "active",
  },
  "full-resync": {
    label: "Full resync",
    explain: "Requests a sync from scratch: the whole calendar is listed again and rows the " +
      "provider no longer has are swept. A pending backoff still holds.",
    applies: (row) => row.status === "active",
  },
  force: {
    label: "Force past backoff",
    explain: "Clears the backoff and syncs at once: say so only when the cause is fixed.",
    applies: backingOff,
  },
  "release-deletions": {
    label: "Release or discard held deletions",
    explain: "The mass-deletion guard held deletions back. Releasing deletes those rows; " +
      "discarding keeps them (a real deletion comes back at the next full listing). Either way " +
      "the connection becomes active and syncs again.",
    applies: (row) => row.status === "deletions_held",
  },
  "re-enable": {
    label: "Re-enable",
    explain: "Makes the connection active again with a fresh error count and syncs it: do it " +
      "once the cause (the calendar share, a rejected request) is fixed.",
    applies: (row) => row.status === "disabled" || row.status === "calendar_unavailable",
  },
};

/** The confirm form of an action: what it does, its choices, the CSRF token, one button. */
export function confirmForm(
  action: ActionName,
  row: ConnectionStatusRow,
  options: { csrf: string; now: number },
): Html {
  const spec = ACTIONS[action];
  const choices = action === "sync" && backingOff(row, options.now)
    ? html`<p><input type="checkbox" id="past_backoff" name="past_backoff" value="yes">
      <label for="past_backoff">Also go past the backoff (until ${
      row.backoff_until!.toISOString()
    }): the cause is fixed</label></p>`
    : action === "release-deletions"
    ? html`
      <fieldset>
        <legend>Held deletions (${row.held_deletions})</legend>
        <p><input type="radio" id="decision_release" name="decision" value="release" checked>
            <label for="decision_release">Release: delete the held rows</label></p>
        <p><input type="radio" id="decision_discard" name="decision" value="discard">
            <label for="decision_discard">Discard: keep the rows</label></p>
      </fieldset>
    `
    : "";
  return html`
    <p>${spec.explain}</p>
    <form method="post" action="${CONSOLE_PREFIX}/connections/${row.id}/actions/${action}">
        <input type="hidden" name="csrf" value="${options.csrf}">
        ${choices}
        <p><button type="submit">Confirm: ${spec.label}</button>
        <a href="${CONSOLE_PREFIX}/connections/${row.id}">Cancel</a></p>
      </form>
  `;
}

/** What an action did, for the log and the page. */
export type ActionResult = { done: boolean; message: string };

/** Does the action; `form` is the confirmed form. */
export async function performAction(
  sql: Sql,
  action: ActionName,
  row: ConnectionStatusRow,
  form: Record<string, string>,
): Promise<ActionResult> {
  const id = row.id;
  switch (action) {
    case "sync": {
      const force = form.past_backoff === "yes" && row.status === "active";
      const ok = await requestSync(sql, id, { force });
      return { done: ok, message: force ? "Sync requested past the backoff" : "Sync requested" };
    }
    case "full-resync":
      return { done: await requestSync(sql, id, { full: true }), message: "Full resync requested" };
    case "force":
      return {
        done: await requestSync(sql, id, { force: true }),
        message: "Backoff cleared; sync requested",
      };
    case "re-enable":
      return {
        done: await requestSync(sql, id, { force: true }),
        message: "Connection re-enabled; sync requested",
      };
    case "release-deletions": {
      const discard = form.decision === "discard";
      const release = await releaseDeletions(sql, id, { discard });
      if (release === null) return { done: false, message: "The connection holds no deletions" };
      return {
        done: true,
        message: discard
          ? `Discarded ${release.held} held deletions (rows kept); sync requested`
          : `Deleted ${release.deleted} of ${release.held} held rows; sync requested`,
      };
    }
  }
}
