/**
 * @module Headless Chromium for the console's browser tests (Debian's `chromium`, driven by
 * playwright-core), and the accessibility basics checked on every page a test visits.
 */
import type { Browser, Page } from "playwright-core";

/** Where Debian installs Chromium (`apt-get install chromium`). */
export const CHROMIUM = "/usr/bin/chromium";

/** True when Chromium is installed; the browser tests skip (and say why) without it. */
export function chromiumPresent(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

/** Launches headless Chromium (no sandbox: tests run as root in CI). */
export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/**
 * The page's accessibility problems: form fields without a label, and headings that do not start
 * at h1 or skip a level. Empty when the page is fine.
 */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  // A string, evaluated in the page: the test's own type check has no DOM library.
  return await page.evaluate<string[]>(`(() => {
    const problems = [];
    for (const field of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
      const id = field.getAttribute("id");
      const labelled = (id !== null && document.querySelector('label[for="' + id + '"]') !== null) ||
        field.closest("label") !== null || field.hasAttribute("aria-label") ||
        field.hasAttribute("aria-labelledby");
      if (!labelled) problems.push("unlabelled " + field.outerHTML.slice(0, 80));
    }
    let previous = 0;
    for (const heading of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
      const level = Number(heading.tagName.slice(1));
      if (previous === 0 && level !== 1) problems.push("first heading is " + heading.tagName);
      if (previous !== 0 && level > previous + 1) {
        problems.push(heading.tagName + " " + heading.textContent + " follows h" + previous);
      }
      previous = level;
    }
    if (document.querySelectorAll("h1").length !== 1) problems.push("not exactly one h1");
    return problems;
  })()`);
}
