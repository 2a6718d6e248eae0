// SecureForm's example web forms in a real browser: Debian's headless Chromium, driven by
// playwright-core (which downloads nothing). Started by tests/api/browser.rs, which runs the
// SecureForm servers and the static site, and afterwards checks the Documents store byte for
// byte. Input: the JSON file named by SF_BROWSER_INPUT. Output: node's test report, and what
// the browser saw (ids, warnings, screenshot paths) as JSON in the file SF_BROWSER_RESULTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const input = JSON.parse(readFileSync(process.env.SF_BROWSER_INPUT, 'utf8'));
const results = { screenshots: {} };
const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let context;
let profile;

before(async () => {
  profile = mkdtempSync(join(tmpdir(), 'secureform-chromium-'));
  mkdirSync(input.artifacts, { recursive: true });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: input.chromium,
    headless: true,
    args: FLAGS,
    viewport: { width: 1000, height: 760 },
    locale: 'en-US',
  });
});

after(async () => {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
  writeFileSync(process.env.SF_BROWSER_RESULTS, JSON.stringify(results, null, 2));
});

/** A fresh tab that remembers every request it makes. */
async function open(url) {
  const page = await context.newPage();
  page.requests = [];
  page.on('request', (r) => page.requests.push(r.url()));
  const response = await page.goto(url);
  assert.equal(response.status(), 200, `${url} did not load`);
  await checkExamplePage(page, url);
  return page;
}

/** An example page: self-contained (it loads nothing else) and every control labelled. */
async function checkExamplePage(page, url) {
  assert.deepEqual(page.requests.filter((u) => !u.endsWith('/favicon.ico')), [url],
    'an example page loads nothing but itself');
  const unlabelled = await page.$$eval('input, select, textarea',
    (els) => els.filter((e) => e.labels.length === 0).map((e) => e.name));
  assert.deepEqual(unlabelled, [], 'every control has a label');
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
}

/** Fills a form from {name: value}: arrays tick checkboxes, booleans a checkbox, else text or a select. */
async function fill(page, values) {
  for (const [name, value] of Object.entries(values)) {
    if (Array.isArray(value)) {
      for (const v of value) await page.check(`input[name="${name}"][value="${v}"]`);
      continue;
    }
    const control = page.locator(`[name="${name}"]`);
    const kind = await control.evaluate((e) => (e.tagName === 'SELECT' ? 'select' : e.type));
    if (kind === 'select') await control.selectOption(String(value));
    else if (kind === 'checkbox') await control.setChecked(value !== false);
    else await control.fill(String(value));
  }
}

/** Clicks submit and waits for the page it leads to; returns the final response. */
async function submit(page) {
  const [response] = await Promise.all([
    page.waitForNavigation(),
    page.click('button[type=submit]'),
  ]);
  return response;
}

/** The thank-you page reached by a 303 from the POST; returns the submission id. */
async function checkThanks(page, response, origin, expected) {
  const post = response.request().redirectedFrom();
  assert.ok(post, 'the POST was answered with a redirect');
  assert.equal(post.method(), 'POST');
  assert.equal((await post.response()).status(), 303);
  assert.equal(response.status(), 200);
  const url = new URL(page.url());
  assert.equal(url.origin, origin);
  assert.match(url.pathname, /^\/f\/[a-z]+\/thanks$/);
  const id = url.searchParams.get('id');
  assert.match(id, ULID);
  assert.equal((await page.textContent('#submission-id')).trim(), id, 'the page shows the id');
  assert.ok(await page.isVisible('#submission-id'));
  assert.equal((await page.textContent('h1')).trim(), expected.title);
  assert.equal(await page.title(), expected.title);
  if (expected.message) assert.ok((await page.textContent('main')).includes(expected.message));
  await checkBuiltInPage(page, origin);
  return id;
}

/** A built-in page: accessible structure, nothing loaded from anywhere, no script. */
async function checkBuiltInPage(page, origin) {
  const facts = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    h1: document.querySelectorAll('h1').length,
    main: document.querySelectorAll('main').length,
    foreign: document.querySelectorAll('script, img, link, iframe, object, embed').length,
    csp: document.querySelector('meta[http-equiv="Content-Security-Policy"]')?.content ?? '',
  }));
  const { csp, ...structure } = facts;
  assert.deepEqual(structure, { lang: 'en', h1: 1, main: 1, foreign: 0 });
  assert.match(csp, /default-src 'none'/);
  const loaded = page.requests.filter((u) => u.startsWith(origin) && !u.endsWith('/favicon.ico'));
  const subresources = loaded.filter((u) => !new URL(u).pathname.startsWith('/f/'));
  assert.deepEqual(subresources, [], 'a built-in page loads nothing');
}

/** Writes a screenshot artifact and proves it is not blank, and that the check can tell. */
async function screenshot(page, name, fullPage = false) {
  const path = join(input.artifacts, `${name}.png`);
  const png = await page.screenshot({ path, fullPage });
  const stats = await pixelStats(png);
  assert.ok(stats.colors >= 16 && stats.differing >= 0.02,
    `${path} looks blank: ${JSON.stringify(stats)}`);
  results.screenshots[name] = path;
  return stats;
}

/** Decodes a PNG in the browser itself and counts colours and pixels unlike the top-left one. */
async function pixelStats(png) {
  const tab = await context.newPage();
  try {
    return await tab.evaluate(async (b64) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const g = canvas.getContext('2d');
      g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
      const colors = new Set();
      let differing = 0;
      for (let i = 0; i < d.length; i += 4) {
        colors.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        if (Math.abs(d[i] - d[0]) + Math.abs(d[i + 1] - d[1]) + Math.abs(d[i + 2] - d[2]) > 6) differing++;
      }
      return { width: canvas.width, height: canvas.height, colors: colors.size, differing: differing / (d.length / 4) };
    }, png.toString('base64'));
  } finally {
    await tab.close();
  }
}

/** An error page answered to the POST itself. */
async function checkErrorPage(page, response, origin, status, words) {
  assert.equal(response.status(), status);
  assert.equal(response.request().method(), 'POST');
  const alert = page.locator('#error-message');
  assert.equal(await alert.getAttribute('role'), 'alert');
  const text = await alert.textContent();
  assert.ok(text.includes(words), `the error page says ${JSON.stringify(text)}`);
  await checkBuiltInPage(page, origin);
  return text;
}

test('the blank-screenshot check tells a blank page', async () => {
  const page = await context.newPage();
  await page.setContent('<html><body style="background:#fff"></body></html>');
  const stats = await pixelStats(await page.screenshot());
  assert.ok(stats.colors < 16 && stats.differing < 0.02, JSON.stringify(stats));
  await page.close();
});

test('contact form (urlencoded) on the embedded default: 303 to the thank-you page', async () => {
  const page = await open(input.pages.contact);
  await fill(page, input.values.contact);
  const response = await submit(page);
  const id = await checkThanks(page, response, input.secureform.embedded, input.thanks.embedded);
  results.contact = { id };
  await screenshot(page, 'thanks-default');
  await page.close();
});

test('application form (multipart) with two files on the embedded default', async () => {
  const page = await open(input.pages.apply);
  await fill(page, input.values.apply);
  await page.setInputFiles('#cv', input.files.cv);
  await page.setInputFiles('#cover', input.files.cover);
  const response = await submit(page);
  results.apply = { id: await checkThanks(page, response, input.secureform.embedded, input.thanks.embedded) };
  await page.close();
});

test('a filled honeypot gets the same thank-you page', async () => {
  const page = await open(input.pages.contact);
  await fill(page, { ...input.values.contact, _gotcha: 'I fill every field' });
  const response = await submit(page);
  results.honeypot = { id: await checkThanks(page, response, input.secureform.embedded, input.thanks.embedded) };
  await page.close();
});

test('the themed thank-you page of the examples configuration', async () => {
  const page = await open(input.pages.themed);
  await fill(page, input.values.contact);
  const response = await submit(page);
  results.themed = { id: await checkThanks(page, response, input.secureform.examples, input.thanks.themed) };
  await screenshot(page, 'thanks-themed');
  await page.close();
});

test('a missing required field shows the error page naming it', async () => {
  const page = await open(input.pages.themed);
  const { email, ...rest } = input.values.contact;
  await fill(page, rest);
  // The browser would stop an empty required field itself; SecureForm must hold the line too.
  await page.$eval('form', (f) => { f.noValidate = true; });
  const response = await submit(page);
  await checkErrorPage(page, response, input.secureform.examples, 422, '\u201cemail\u201d');
  assert.equal(await page.title(), 'The form could not be sent');
  await screenshot(page, 'error-required');
  await page.close();
});

test('a page on an origin not allowed cannot post the form', async () => {
  const page = await open(input.pages.foreignContact);
  await fill(page, input.values.contact);
  const response = await submit(page);
  await checkErrorPage(page, response, input.secureform.examples, 403, 'does not accept submissions from this site');
  await page.close();
});

test('a form with redirect sends the browser to its own page', async () => {
  const page = await open(input.pages.redirect);
  await fill(page, input.values.contact);
  const response = await submit(page);
  assert.equal(page.url(), input.done);
  assert.equal((await response.request().redirectedFrom().response()).status(), 303);
  assert.equal((await page.textContent('#done')).trim(), 'Sent, thank you');
  await page.close();
});

/** Sends fetch.html and reads what it shows. */
async function sendFetch(url) {
  const page = await open(url);
  await fill(page, input.values.fetch);
  await page.click('#send');
  await page.waitForSelector('#result-id, #result-error');
  return page;
}

for (const [name, expectWarnings] of [['fetchAllowed', false], ['fetchWarnings', true]]) {
  test(`fetch() from an allowed origin reads the JSON answer (${name})`, async () => {
    const page = await sendFetch(input.pages[name]);
    assert.equal(await page.locator('#result-error').count(), 0,
      await page.textContent('#result'));
    const id = (await page.textContent('#result-id')).trim();
    assert.match(id, ULID);
    const warnings = await page.$$eval('#result-warnings li', (lis) => lis.map((li) => li.textContent));
    assert.equal(warnings.length > 0, expectWarnings, JSON.stringify(warnings));
    results[name] = { id, warnings };
    await screenshot(page, name, true);
    await page.close();
  });
}

for (const name of ['fetchForeign', 'fetchEmbedded']) {
  test(`fetch() from an origin not allowed cannot read the answer (${name})`, async () => {
    const page = await sendFetch(input.pages[name]);
    assert.equal(await page.locator('#result-id').count(), 0);
    assert.equal((await page.textContent('#result-code')).trim(), 'Code: network');
    assert.equal(await page.locator('#result [role=alert]').count(), 1);
    // The same request made directly by the page's script fails too: the browser withholds it.
    const outcome = await page.evaluate(async (action) => {
      try {
        const r = await fetch(action, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"email":"x@example.com"}' });
        return `read ${r.status}`;
      } catch (e) {
        return e.name;
      }
    }, await page.$eval('form', (f) => f.action));
    assert.equal(outcome, 'TypeError');
    await page.close();
  });
}
