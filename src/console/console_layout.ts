/**
 * @module The console's page shell and small formatting helpers. Every value goes through
 * hono/html's `html` template, which escapes interpolations; only other `html` fragments pass
 * through unescaped, so provider text (event titles, error messages) always renders as text.
 */
import { html } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";

/** A rendered fragment (hono/html may return a promise when a fragment awaits). */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** Where the console lives. */
export const CONSOLE_PREFIX = "/console";

/** The shell's navigation entries. */
type Section = "overview" | "connections" | "drill" | "login";

/** A page: title, navigation (with the logout form when signed in), the body. */
export function page(
  title: string,
  body: Html,
  options: { csrf: string | null; section: Section },
): Html {
  const link = (section: Section, href: string, label: string) =>
    html`<li><a href="${CONSOLE_PREFIX}${href}"${
      options.section === section
        ? html`
          aria-current="page"
        `
        : ""
    }>${label}</a></li>`;
  const nav = options.csrf === null ? "" : html`
    <nav aria-label="Console">
      <ul>
          ${link("overview", "", "Overview")}
          ${link("connections", "/connections", "Connections")}
          ${link("drill", "/drill", "Drill report")}
        </ul>
      <form method="post" action="${CONSOLE_PREFIX}/logout" class="logout">
        <input type="hidden" name="csrf" value="${options.csrf}">
        <button type="submit">Log out</button>
      </form>
    </nav>
  `;
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>${title} · calsync console</title>
        <link rel="stylesheet" href="${CONSOLE_PREFIX}/assets/console.css">
        <script src="${CONSOLE_PREFIX}/assets/console.js" defer></script>
      </head>
      <body>
        <header><p class="brand">calsync console</p>${nav}</header>
        <main>
    <h1>${title}</h1>
    ${body}
        </main>
      </body>
    </html>
  `;
}

/** "3 min ago" style age of a timestamp; "never" when null. */
export function ageText(at: Date | null, now: number): string {
  if (at === null) return "never";
  const seconds = Math.round((now - at.getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text = s < 90
    ? `${s} s`
    : s < 5_400
    ? `${Math.round(s / 60)} min`
    : s < 129_600
    ? `${Math.round(s / 3_600)} h`
    : `${Math.round(s / 86_400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

/** A timestamp with its age, in a <time> element. */
export function timeCell(at: Date | null, now: number): Html {
  if (at === null) return html`<span class="muted">never</span>`;
  return html`<time datetime="${at.toISOString()}" title="${at.toISOString()}">${
    ageText(at, now)
  }</time>`;
}

/** The human name of a console state. */
export function stateLabel(state: string): string {
  return state.replaceAll("_", " ");
}

/** A state badge; the class lets the stylesheet colour it. */
export function stateBadge(state: string): Html {
  return html`<span class="state state-${state}">${stateLabel(state)}</span>`;
}
