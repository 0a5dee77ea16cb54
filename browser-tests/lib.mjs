// Shared by the browser tests: Debian's chromium driven by playwright-core (no downloaded
// browser), axe-core on every page, screenshots as artifacts, and a strict failure on any
// console error (a CSP violation, a broken asset) or an accessibility violation.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const CHROMIUM = process.env.BILLPAY_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.BILLPAY_BROWSER_ARTIFACTS || join(here, '..', 'target', 'browser-artifacts');

export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

export async function launch() {
  if (!existsSync(CHROMIUM)) fail(`no chromium at ${CHROMIUM}: apt-get install -y chromium`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // No --user-data-dir: playwright starts every launch on a fresh temporary profile of
      // its own (and refuses the flag).
    ],
  });
  return browser;
}

/// A page in a fresh context (its own cookies). `mobile` gives a phone-sized screen.
export async function newPage(browser, { mobile = false, javaScriptEnabled = true } = {}) {
  const context = await browser.newContext({
    viewport: mobile ? { width: 375, height: 740 } : { width: 1100, height: 900 },
    javaScriptEnabled,
  });
  const page = await context.newPage();
  page.consoleErrors = [];
  // A form answered 422 or 402 is a page, not an error; a stylesheet or icon that fails is.
  // Chrome reports both as "Failed to load resource", so subresources are checked here.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) page.consoleErrors.push(m.text());
  });
  page.on('response', (r) => {
    if (r.request().resourceType() !== 'document' && r.status() >= 400) page.consoleErrors.push(`${r.status()} for ${r.url()}`);
  });
  page.on('pageerror', (e) => page.consoleErrors.push(String(e)));
  return page;
}

/// A screenshot only, for pages in a context with JavaScript off (axe needs script; the same
/// templates are checked by axe in the other runs: the pages carry no script either way).
export async function snap(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  console.log(`ok page ${name} (JavaScript off)`);
}

/// Runs axe-core on the page (WCAG 2.1 A and AA rules); fails on any serious or critical
/// violation, and on any console error so far. Saves a full-page screenshot named `name`.
export async function check(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  if (page.consoleErrors.length) fail(`${name}: console errors: ${page.consoleErrors.join(' | ')}`);
  // Evaluated through the DevTools protocol, so the page's CSP (no script at all) still holds
  // for the page itself.
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
  const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (bad.length) {
    fail(`${name}: accessibility violations: ` + bad.map((v) =>
      `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`).join('; '));
  }
  console.log(`ok page ${name} (axe: ${result.passes.length} rules pass, 0 serious or critical)`);
}

export function expect(condition, message) {
  if (!condition) fail(message);
}

/// Text of the page's main region.
export async function mainText(page) {
  return (await page.textContent('main')) || '';
}

/// No card or bank number longer than its last four digits anywhere in the page's HTML.
export async function assertNoFullNumbers(page, numbers, name) {
  const html = await page.content();
  for (const n of numbers) {
    if (html.includes(n)) fail(`${name}: the page shows a full number ending ${n.slice(-4)}`);
  }
}
