// The console's in-browser decryption of documents encrypted to OpenPGP recipients, in headless
// Chromium (playwright-core). Started by tests/api/console_pgp.rs, which runs the server with a
// form delivered to a Documents sink with `pgp_recipients` (Alice's key, with a passphrase) and
// compares what this page decrypts with what gpg decrypts. Input: JSON in SF_BROWSER_INPUT;
// output: JSON in SF_BROWSER_RESULTS (the rendered fields, the saved file, the screenshots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const input = JSON.parse(readFileSync(process.env.SF_BROWSER_INPUT, 'utf8'));
const results = { screenshots: [] };
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let context;
let profile;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'secureform-console-pgp-'));
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

/** Screenshots at desktop width and at 360 px, light then dark; nothing scrolls sideways. */
async function shoot(page, name) {
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    const suffix = scheme === 'dark' ? '-dark' : '';
    const desktop = join(input.artifacts, `console-pgp-${name}-desktop${suffix}.png`);
    await page.setViewportSize({ width: 1100, height: 800 });
    await page.screenshot({ path: desktop, fullPage: true });
    await page.setViewportSize({ width: 360, height: 740 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 360, `${name} is ${overflow} px wide at 360 px`);
    const narrow = join(input.artifacts, `console-pgp-${name}-360${suffix}.png`);
    await page.screenshot({ path: narrow, fullPage: true });
    results.screenshots.push(desktop, narrow);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 1100, height: 800 });
}

async function signIn(page) {
  await page.goto(`${input.base}/console/`);
  await page.fill('#token', input.token);
  await Promise.all([page.waitForURL(`${input.base}/console/`), page.press('#token', 'Enter')]);
  await page.waitForSelector('#forms');
}

/** Every request the page makes, with its body, and every CSP violation and page error. */
function watch(page) {
  const seen = { requests: [], violations: [], errors: [], dialogs: [] };
  page.on('request', (r) => seen.requests.push({
    url: r.url(), method: r.method(), body: r.postDataBuffer()?.toString('utf8') ?? '',
  }));
  page.on('console', (m) => {
    if (/Content Security Policy|Trusted Type/i.test(m.text())) seen.violations.push(m.text());
  });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('dialog', async (d) => { seen.dialogs.push(d.message()); await d.dismiss(); });
  return seen;
}

async function fieldRows(page) {
  return page.$$eval('#fields tbody tr', (trs) => trs.map((tr) => [
    tr.querySelector('th').textContent,
    Array.from(tr.querySelector('td').childNodes)
      .filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.data).join('\n'),
  ]));
}

test('decrypt a PGP document in the browser; the key is not sent', async () => {
  const page = await context.newPage();
  const seen = watch(page);
  await signIn(page);

  // The list: the PGP document is not summarized; the other form's list is, escaped.
  await page.goto(`${input.base}/console/forms/plain`);
  await page.waitForSelector('#submissions');
  const summary = await page.textContent('#submissions td.summary');
  assert.match(summary, /who: <img src=x onerror=alert\(3\)>/);
  assert.match(summary, /city: Zürich/);
  assert.equal(await page.$$eval('#submissions img', (e) => e.length), 0);
  await shoot(page, 'list');
  await page.goto(`${input.base}/console/forms/vault`);
  assert.match(await page.textContent('#submissions'), /Encrypted to PGP recipients/);

  await page.click(`a[href="/console/submissions/vault/${input.id}"]`);
  await page.waitForSelector('#decrypt[data-ready="true"]', { timeout: 15000 });
  assert.match(await page.textContent('#mode'),
    /This document is encrypted to your PGP key; it is decrypted in this browser; the key is not sent\./);
  assert.match(await page.textContent('#decrypt-status'), /Ready: OpenPGP\.js 6\.3\.2/);
  // Every control has a label; the key's controls belong to no form.
  const unlabelled = await page.$$eval('input:not([type=hidden]), select, textarea',
    (els) => els.filter((e) => e.labels.length === 0).map((e) => e.id));
  assert.deepEqual(unlabelled, []);
  assert.deepEqual(await page.$$eval('#key-file, #key-text, #passphrase, #decrypt-button',
    (els) => els.map((e) => e.form)), [null, null, null, null]);
  await shoot(page, 'ready');

  // A key that is not a recipient's: said so, nothing shown.
  await page.fill('#key-text', input.wrongKey);
  await page.click('#decrypt-button');
  await page.waitForSelector('#decrypt-problem:not([hidden])');
  assert.match(await page.textContent('#decrypt-problem'), /does not open this document/);
  assert.equal(await page.isHidden('#plaintext'), true);
  await page.fill('#key-text', '');

  // Alice's key file without its passphrase: asked for; then by keyboard, Enter decrypts.
  await page.setInputFiles('#key-file', input.keyFile);
  await page.click('#decrypt-button');
  await page.waitForFunction(() => /passphrase/.test(document.querySelector('#decrypt-problem').textContent));
  await page.setInputFiles('#key-file', input.keyFile);
  await page.focus('#passphrase');
  await page.keyboard.type(input.passphrase);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#plaintext:not([hidden])', { timeout: 30000 });
  assert.equal(await page.isHidden('#decrypt-problem'), true);
  assert.match(await page.textContent('#decrypt-status'), /Decrypted in this browser/);
  // The key's fields are emptied once it is unlocked.
  assert.equal(await page.inputValue('#passphrase'), '');
  assert.equal(await page.inputValue('#key-text'), '');
  results.fields = await fieldRows(page);
  // Hostile values are text: no element came from them.
  assert.equal(await page.$$eval('#fields img, #fields b, #fields a', (e) => e.length), 0);
  assert.equal(await page.$$eval('a[href^="javascript:"]', (e) => e.length), 0);

  // The file: decrypted on request, saved from a Blob URL.
  await page.click('button.decrypt-file');
  await page.waitForSelector('#files a.download');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'download');
  assert.match(await page.getAttribute('#files a.download', 'href'), /^blob:/);
  await shoot(page, 'decrypted');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#files a.download')]);
  const saved = join(input.artifacts, 'console-pgp-download.bin');
  await download.saveAs(saved);
  results.download = saved;
  results.suggested = download.suggestedFilename();

  // Forgetting the key drops the plaintext.
  await page.click('#forget');
  assert.equal(await page.isHidden('#plaintext'), true);
  assert.equal(await page.$$eval('#fields tbody tr', (e) => e.length), 0);

  // No request carried the key or the passphrase; nothing but the sign-in was posted; nothing
  // left the console; no CSP or Trusted Types violation, no error, no dialog.
  for (const r of seen.requests) {
    for (const line of input.secretLines) {
      assert.ok(!r.body.includes(line) && !r.url.includes(line), `the key went out in ${r.url}`);
    }
    assert.ok(!r.body.includes(input.passphrase) && !r.url.includes(encodeURIComponent(input.passphrase)),
      `the passphrase went out in ${r.url}`);
    assert.ok(!r.body.includes('BEGIN PGP PRIVATE KEY'), `a key went out in ${r.url}`);
  }
  const posts = seen.requests.filter((r) => r.method !== 'GET').map((r) => r.url);
  assert.deepEqual(posts, [`${input.base}/console/sign-in`]);
  const foreign = seen.requests.filter((r) => !r.url.startsWith(`${input.base}/console/`)
    && !r.url.startsWith('blob:'));
  assert.deepEqual(foreign, []);
  assert.deepEqual(seen.violations, []);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.dialogs, []);
  await page.close();
});

test('a tampered OpenPGP.js does not run', async () => {
  // Control: the same interception, passing the file through unchanged, loads as usual.
  const control = await context.newPage();
  await control.route('**/console/static/openpgp-*', async (route) => {
    const res = await route.fetch();
    await route.fulfill({ response: res, body: await res.body() });
  });
  await control.goto(`${input.base}/console/submissions/vault/${input.id}`);
  await control.waitForSelector('#decrypt[data-ready="true"]', { timeout: 15000 });
  await control.close();

  const page = await context.newPage();
  const seen = watch(page);
  // The same file with one more statement: its hash no longer matches the page's integrity.
  await page.route('**/console/static/openpgp-*', async (route) => {
    const res = await route.fetch();
    const body = `${await res.text()}\nglobalThis.tampered = true;\n`;
    await route.fulfill({ response: res, body });
  });
  await page.goto(`${input.base}/console/submissions/vault/${input.id}`);
  await page.waitForLoadState('load');
  await page.waitForTimeout(1000);
  assert.equal(await page.evaluate(() => globalThis.tampered === true), false, 'the tampered file ran');
  assert.equal(await page.getAttribute('#decrypt', 'data-ready'), null);
  assert.equal(await page.isDisabled('#decrypt-button'), true);
  assert.match(await page.textContent('#decrypt-status'), /did not load/);
  assert.ok(seen.requests.some((r) => r.url.includes('/console/static/openpgp-')));
  await page.close();
});
