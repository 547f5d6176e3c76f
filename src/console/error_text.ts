/** @module A connection's `last_error` for people: one line in lists, pretty JSON on its page. */
import { html } from "hono/html";
import { redact } from "../log/redact.ts";
import type { Html } from "./console_layout.ts";

/** The error's kind, status and start of its message; empty when there is none. */
export function errorSummary(lastError: unknown): Html | string {
  if (lastError === null || typeof lastError !== "object") return "";
  const e = redact(lastError) as Record<string, unknown>;
  const parts = [e.kind, e.status].filter((v) => v !== undefined && v !== null).map(String);
  const message = typeof e.message === "string" ? e.message.slice(0, 120) : "";
  return html`<code>${parts.join(" ")}</code>${
    message
      ? html`
        <span>${message}</span>
      `
      : ""
  }`;
}

/**
 * The whole error as indented JSON, with secret-named fields and secret-looking text masked
 * (the same redaction as the logs): refresh tokens and channel tokens never reach a page.
 */
export function prettyError(lastError: unknown): string {
  return JSON.stringify(redact(lastError), null, 2);
}
