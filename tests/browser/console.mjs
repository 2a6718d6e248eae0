// The web console in a real browser (headless Chromium through playwright-core). Started by
// tests/api/console.rs, which runs the server with a submission holding unicode, XSS payloads
// and a file. Input: JSON in SF_BROWSER_INPUT; output: JSON in SF_BROWSER_RESULTS (the
// downloaded file's path, the screenshots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const input = JSON.parse(readFileSync(process.env.SF_BROWSER_INPUT, 'utf8'));
const results = { screenshots: {} };
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let context;
let profile;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'secureform-console-'));
  mkdirSync(input.artifacts, { recursive: true });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: input.chromium,
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 800 },
    locale: 'en-US',
    acceptDownloads: true,
  });
});

after(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
  writeFileSync(process.env.SF_BROWSER_RESULTS, JSON.stringify(results, null, 2));
});

/** Screenshots at desktop width and at 360 px, then the same in the dark theme (the system's
 * `prefers-color-scheme: dark`); the narrow page must not scroll sideways. */
async function shoot(page, name) {
  results.screenshots[name] = [];
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    const suffix = scheme === 'dark' ? '-dark' : '';
    const desktop = join(input.artifacts, `console-${name}-desktop${suffix}.png`);
    await page.screenshot({ path: desktop, fullPage: true });
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 360, `${name} is ${overflow} px wide at 360 px`);
    const narrow = join(input.artifacts, `console-${name}-360${suffix}.png`);
    await page.screenshot({ path: narrow, fullPage: true });
    await page.setViewportSize({ width: 1100, height: 800 });
    results.screenshots[name].push(desktop, narrow);
  }
  // The dark theme is really dark: the page's background follows the system's preference.
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(dark, 'rgb(22, 24, 28)', `${name}: dark background`);
  assert.equal(light, 'rgb(246, 247, 249)', `${name}: light background`);
}

async function noScriptNoUnlabelled(page) {
  assert.equal(await page.$$eval('script, img, iframe, object', (e) => e.length), 0);
  const unlabelled = await page.$$eval('input:not([type=hidden]), select, textarea',
    (els) => els.filter((e) => e.labels.length === 0).map((e) => e.name));
  assert.deepEqual(unlabelled, [], 'every control has a label');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
}

test('sign in by keyboard, read a hostile submission inertly, download, sign out', async () => {
  const page = await context.newPage();
  const requests = [];
  const dialogs = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });

  await page.goto(`${input.base}/console/`);
  await noScriptNoUnlabelled(page);
  // Keyboard only: Tab reaches the token field (after the skip link), Enter signs in.
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'token');
  await page.keyboard.type(input.token);
  await Promise.all([page.waitForURL(`${input.base}/console/`), page.keyboard.press('Enter')]);
  await page.waitForSelector('#forms', { timeout: 5000 }).catch(async (e) => {
    throw new Error(`no inbox after sign-in: ${(await page.content()).slice(0, 3000)}`);
  });
  assert.equal(await page.locator('#forms').getByText('bravo').count(), 0, 'form bravo listed');
  await shoot(page, 'inbox');

  await page.click('a[href="/console/forms/alpha"]');
  await page.waitForSelector('#submissions');
  await noScriptNoUnlabelled(page);
  // The summary: the first three fields, as text (the hostile ones made no element).
  const summary = await page.textContent('#submissions td.summary');
  assert.match(summary, /name: Zoë 報告 ✓/);
  assert.match(summary, /<script>alert\(1\)<\/script>: "><img src=x onerror=alert\(2\)>/);
  assert.match(summary, /site: javascript:alert\(3\)/);
  assert.doesNotMatch(summary, /alert\(5\)/, 'a fourth field is summarized');
  await shoot(page, 'list');
  await page.click(`a[href="/console/submissions/docs/${input.id}"]`);
  await page.waitForSelector('#fields');
  await noScriptNoUnlabelled(page);
  assert.match(await page.textContent('#fields'), /Zoë 報告 ✓/);
  assert.match(await page.textContent('#fields'), /<script>alert\(1\)<\/script>/);
  assert.match(await page.textContent('#mode'), /service key/);
  // Fields in the order received.
  const names = await page.$$eval('#fields th', (ths) => ths.map((t) => t.textContent));
  assert.deepEqual(names.slice(0, 3), ['name', '<script>alert(1)</script>', 'site']);
  // The javascript: URL is text, never a link.
  assert.equal(await page.$$eval('a[href^="javascript:"]', (e) => e.length), 0);
  await shoot(page, 'submission');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download')]);
  const saved = join(input.artifacts, 'console-download.bin');
  await download.saveAs(saved);
  results.download = saved;
  results.suggested = download.suggestedFilename();

  assert.deepEqual(dialogs, [], 'a dialog opened');
  const foreign = requests.filter((u) => !u.startsWith(`${input.base}/console/`));
  assert.deepEqual(foreign, [], 'a request left the console');

  // Sign out; the old session cookie, put back, no longer opens anything.
  const [old] = (await context.cookies()).filter((c) => c.name === 'sf_console');
  assert.ok(old && old.httpOnly && old.sameSite === 'Strict', JSON.stringify(old));
  await page.keyboard.press('Home');
  await Promise.all([page.waitForURL(`${input.base}/console/`), page.click('#sign-out button')]);
  await page.waitForSelector('#sign-in');
  await context.addCookies([old]);
  const again = await page.goto(`${input.base}/console/submissions/docs/${input.id}`);
  assert.equal(again.url(), `${input.base}/console/`);
  await page.waitForSelector('#sign-in');
  assert.equal(await page.locator('#fields').count(), 0);
  await page.close();
});

test('an admin deletes the submission by keyboard, through the confirmation page', async () => {
  if (!input.admin_token) return;
  const page = await context.newPage();
  await page.goto(`${input.base}/console/`);
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.type(input.admin_token);
  await Promise.all([page.waitForURL(`${input.base}/console/`), page.keyboard.press('Enter')]);
  await page.waitForSelector('#forms');
  const path = `/console/submissions/docs/${input.id}`;
  await page.goto(`${input.base}${path}`);
  await page.waitForSelector('#fields');
  // The button, reached by keyboard, opens the confirmation page (no script anywhere).
  await page.focus('#delete button');
  // (A GET form without fields: the browser adds an empty query, `?`.)
  await Promise.all([
    page.waitForURL((u) => u.pathname === `${path}/delete`),
    page.keyboard.press('Enter'),
  ]);
  await noScriptNoUnlabelled(page);
  assert.match(await page.textContent('#warning'), /Delete this submission\? This cannot be undone\./);
  assert.equal(await page.getAttribute('#cancel', 'href'), path);
  assert.equal(await page.textContent('#delete button'), 'Delete permanently');
  await shoot(page, 'confirm');
  await page.focus('#delete button');
  await Promise.all([
    page.waitForURL(`${input.base}/console/forms/alpha?deleted=1`),
    page.keyboard.press('Enter'),
  ]);
  assert.equal(await page.textContent('#notice'), 'The submission was deleted.');
  const gone = await page.goto(`${input.base}${path}`);
  assert.equal(gone.status(), 404);
  await page.close();
});
