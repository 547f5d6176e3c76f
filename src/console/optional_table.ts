/**
 * @module Renders rows of a table the console has no query of its own for yet (a feature built
 * beside it), column by column, with secret-named columns left out.
 */
import { html } from "hono/html";
import type { Html } from "./console_layout.ts";

const SECRET_COLUMN = /(secret|token|password|key|credential|signing)/i;

function cell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A table of `rows` under `title`, every non-secret column shown as text. */
export function genericTable(title: string, rows: Record<string, unknown>[]): Html {
  if (rows.length === 0) {
    return html`
      <h2>${title}</h2>
      <p class="muted">No rows.</p>
    `;
  }
  const columns = Object.keys(rows[0]).filter((name) => !SECRET_COLUMN.test(name));
  return html`
    <h2>${title}</h2>
    <table>
      <thead>
        <tr>${columns.map((name) => html`<th scope="col">${name}</th>`)}</tr>
      </thead>
      <tbody>${rows.map((row) =>
        html`<tr>${columns.map((name) => html`<td>${cell(row[name])}</td>`)}</tr>`
      )}</tbody>
    </table>
  `;
}
