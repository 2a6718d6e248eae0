// The ALTCHA example page (examples/web/altcha.html) in headless Chromium with the real widget
// from npm (node_modules/altcha): the widget fetches a challenge from SecureForm, solves it, and
// the form is posted; then the same solution is posted again and must be refused (422
// captcha_replayed). The page and the widget are served by a small HTTP server on loopback, on
// the port given (an origin the form allows).
// Started by tests/api/spam.rs. Input: JSON in SF_BROWSER_INPUT; output: JSON in
// SF_BROWSER_RESULTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const input = JSON.parse(readFileSync(process.env.SF_BROWSER_INPUT, 'utf8'));
const results = {};
const SITE = `http://127.0.0.1:${input.site_port}`;
let site;
let context;
let profile;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'secureform-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: input.chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  const page = readFileSync(input.page, 'utf8').replaceAll('http://127.0.0.1:8080', input.base);
  const widget = readFileSync(new URL('./node_modules/altcha/dist/main/altcha.min.js', import.meta.url));
  site = createServer((req, res) => {
    const path = new URL(req.url, SITE).pathname;
    if (path === '/altcha.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    } else if (path === '/altcha.min.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(widget);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => site.listen(input.site_port, '127.0.0.1', resolve));
});

after(async () => {
  await context?.close();
  site?.close();
  rmSync(profile, { recursive: true, force: true });
  writeFileSync(process.env.SF_BROWSER_RESULTS, JSON.stringify(results, null, 2));
});

test('the widget solves SecureForm\'s challenge, the form is accepted, a replay is refused', async () => {
  const page = await context.newPage();
  const challenges = [];
  const logs = [];
  page.on('request', (r) => { if (r.url().endsWith('/challenge')) challenges.push(r.url()); });
  page.on('console', (m) => logs.push(m.text()));
  page.on('pageerror', (e) => logs.push(String(e)));
  await page.goto(`${SITE}/altcha.html`);
  await page.fill('#email', input.email);
  await page.fill('#message', input.message);
  // The widget (auto="onload") fetches and solves the challenge, then fills its field.
  const handle = await page.waitForFunction(
    () => new FormData(document.querySelector('form')).get('altcha'), null, { timeout: 60000 })
    .catch((e) => { throw new Error(`${e}; challenges: ${challenges}; console: ${logs.join(' | ')}`); });
  const payload = await handle.jsonValue();
  assert.ok(payload && payload.length > 20, 'the widget filled its field');
  assert.deepEqual(challenges, [`${input.base}/f/altcha/challenge`]);
  await Promise.all([page.waitForURL(`${input.base}/f/altcha/thanks**`), page.click('button[type=submit]')]);
  const id = new URL(page.url()).searchParams.get('id');
  assert.match(id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
  results.id = id;
  results.payload = JSON.parse(Buffer.from(payload, 'base64').toString('utf8'));

  const replay = await fetch(`${input.base}/f/altcha`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: input.email, message: 'replayed', altcha: payload }),
  });
  results.replay = { status: replay.status, body: await replay.json() };
  assert.equal(replay.status, 422);
  assert.equal(results.replay.body.error.code, 'captcha_replayed');
});
