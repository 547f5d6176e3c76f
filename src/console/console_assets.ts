/**
 * @module The console's stylesheet and its one script, served by the daemon itself (no CDN, no
 * build step). The pages work without the script; it only refreshes live regions in place.
 */

/** The stylesheet. */
export const CONSOLE_CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, sans-serif; margin: 0; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .5rem 1rem;
  border-bottom: 1px solid #8884; }
header .brand { font-weight: 700; margin: 0; }
nav { display: flex; align-items: center; gap: 1rem; flex: 1; }
nav ul { display: flex; gap: 1rem; list-style: none; margin: 0; padding: 0; flex: 1; }
nav a[aria-current] { font-weight: 700; }
main { padding: 0 1rem 2rem; max-width: 90rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; }
th, td { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #8883; vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.state { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: .85em;
  border: 1px solid currentColor; white-space: nowrap; }
.state-active { color: var(--ok); }
.state-backing_off, .state-deletions_held { color: var(--warn); }
.state-reauth_required, .state-calendar_unavailable, .state-disabled { color: var(--bad); }
.alert { border-left: 4px solid var(--bad); padding: .5rem 1rem; background: #cf222e14; }
.notice { border-left: 4px solid var(--ok); padding: .5rem 1rem; background: #1a7f3714; }
dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
dl.fields dt { font-weight: 600; } dl.fields dd { margin: 0; }
pre { background: #8881; padding: .5rem; overflow: auto; max-height: 20rem; }
form.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; }
form.filters label { display: flex; flex-direction: column; font-size: .9em; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; list-style: none; padding: 0; }
.week { display: grid; grid-template-columns: repeat(7, 1fr); gap: 2px; }
.week section { border: 1px solid #8883; min-height: 6rem; padding: .25rem; font-size: .85em; }
.week h3 { font-size: .9em; margin: 0 0 .25rem; }
.week ul { list-style: none; margin: 0; padding: 0; }
.week li { margin-bottom: .2rem; overflow-wrap: anywhere; }
iframe.report { width: 100%; height: 80vh; border: 1px solid #8884; }
`;

/** The script: refreshes every `[data-refresh]` element from its URL on an interval. */
export const CONSOLE_JS = `
"use strict";
(function () {
  function refresh(element) {
    var url = element.getAttribute("data-refresh");
    var every = Number(element.getAttribute("data-interval") || "5000");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } })
        .then(function (response) {
          if (response.redirected || response.status === 401 || response.status === 403) {
            element.setAttribute("data-stale", "signed out");
            return null;
          }
          return response.ok ? response.text() : null;
        })
        .then(function (text) {
          if (text !== null) element.innerHTML = text;
          setTimeout(tick, every);
        })
        .catch(function () { setTimeout(tick, every * 2); });
    }
    setTimeout(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  });
})();
`;
