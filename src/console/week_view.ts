/**
 * @module A small week view of a connection's occurrences (UTC days, Monday first): pure
 * placement of events into days, and its rendering. Titles come from providers: escaped.
 */
import { html } from "hono/html";
import type { Html } from "./console_layout.ts";

/** What the week view needs of an occurrence. */
export type WeekEvent = {
  title: string | null;
  starts_at: Date | null;
  ends_at: Date | null;
  start_date: string | Date | null;
  end_date: string | Date | null;
  status: string;
};

const DAY_MS = 86_400_000;

/** Midnight UTC of the Monday of the week holding `at`. */
export function weekStart(at: Date): Date {
  const day = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  const weekday = (new Date(day).getUTCDay() + 6) % 7;
  return new Date(day - weekday * DAY_MS);
}

function dateMs(value: string | Date): number {
  return typeof value === "string" ? Date.parse(`${value}T00:00:00Z`) : value.getTime();
}

/** The events of each of the 7 days from `start`, an event on every day it overlaps. */
export function placeEvents<E extends WeekEvent>(start: Date, events: readonly E[]): E[][] {
  const days: E[][] = Array.from({ length: 7 }, () => []);
  for (const event of events) {
    const from = event.start_date !== null
      ? dateMs(event.start_date)
      : event.starts_at?.getTime() ?? NaN;
    const to = event.end_date !== null ? dateMs(event.end_date) : event.ends_at?.getTime() ?? from;
    for (let d = 0; d < 7; d++) {
      const dayFrom = start.getTime() + d * DAY_MS;
      // A zero-length event still shows on its day.
      if (from < dayFrom + DAY_MS && (to > dayFrom || (to === from && from >= dayFrom))) {
        days[d].push(event);
      }
    }
  }
  return days;
}

function timeOf(event: WeekEvent): string {
  if (event.start_date !== null || event.starts_at === null) return "all day";
  return event.starts_at.toISOString().slice(11, 16);
}

/** The week as seven labelled day sections, with links to the weeks before and after. */
export function renderWeek(start: Date, events: readonly WeekEvent[], baseHref: string): Html {
  const days = placeEvents(start, events);
  const iso = (d: Date) => d.toISOString().slice(0, 10);
  const previous = new Date(start.getTime() - 7 * DAY_MS);
  const next = new Date(start.getTime() + 7 * DAY_MS);
  return html`
    <p><a href="${baseHref}?week=${iso(previous)}">Previous week</a> ·
        Week of ${iso(start)} (UTC) ·
        <a href="${baseHref}?week=${iso(next)}">Next week</a></p>
    <div class="week">${days.map((list, d) => {
      const day = new Date(start.getTime() + d * DAY_MS);
      return html`<section aria-label="${day.toUTCString().slice(0, 11)}">
        <h3>${day.toUTCString().slice(0, 11)}</h3>
        ${
        list.length === 0
          ? html`<p class="muted">—</p>`
          : html`<ul>${
            list.map((e) =>
              html`<li><span class="muted">${timeOf(e)}</span> ${e.title ?? "(no title)"}${
                e.status === "cancelled"
                  ? html`
                    <span class="muted">(cancelled)</span>
                  `
                  : ""
              }</li>`
            )
          }</ul>`
      }</section>`;
    })}</div>
  `;
}
