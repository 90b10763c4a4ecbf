// What people do on the pages, step by step, finding controls by their visible labels and
// names (the fixed ones of DESIGN.md section 7 and /work/spec-web.md), never by layout.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { WORK_TIMEOUT_MS } from './harness.mjs';

/** A link in a text: `…/d#TOKEN`. */
const LINK = /https?:\/\/[^\s"'<>]+\/d#[A-Za-z0-9_-]+/;

/**
 * Writes files for a person to send: `specs` maps names to sizes (random bytes) or strings.
 * Returns `[{name, path, bytes}]`.
 */
export function makeFiles(dir, specs) {
  return Object.entries(specs).map(([name, spec]) => {
    const bytes = typeof spec === 'number' ? randomBytes(spec) : Buffer.from(spec);
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return { name, path, bytes };
  });
}

/**
 * Fills the send page (`/send`) and presses `Send`, without waiting for the result: recipients
 * comma-separated, the files chosen with the file picker, the classification and (optionally)
 * the expiry chosen in their selects.
 */
export async function fillSendPage(person, { to, files, classification = 'OFFICIAL', expires }) {
  const { page } = person;
  await person.goto('/send');
  await page.getByLabel('Recipients', { exact: true }).fill([].concat(to).join(', '));
  await page.getByLabel('Files', { exact: true }).setInputFiles(files.map((f) => f.path));
  await page.getByLabel('Classification', { exact: true }).selectOption(classification);
  if (expires) await page.getByLabel('Expires after', { exact: true }).selectOption(expires);
}

/**
 * Waits for the send page's result and reads it: `{id, status, links: [{recipient, url}]}`.
 * An error summary fails it at once, unless it is one of `earlier` (still showing from before).
 */
export async function readSendResult(person, { earlier = [], timeout = WORK_TIMEOUT_MS } = {}) {
  const { page } = person;
  await waitUnlessRefused(person, () => page.locator('#send-result').isVisible(), 'the send result', earlier, timeout);
  await person.check('the send result');
  const id = (await page.locator('#transfer-id').innerText()).trim();
  assert.match(id, /^[0-9a-f]{32}$/, `the result shows no transfer id: \`${id}\``);
  const status = (await page.locator('#transfer-status').innerText()).trim();
  const links = [];
  for (const item of await page.locator('#links li').all()) {
    const text = await item.innerText();
    const url = text.match(LINK)?.[0];
    const recipient = text.match(/[a-z0-9][a-z0-9._-]*\/[a-z0-9][a-z0-9._-]*/i)?.[0];
    assert.ok(url && recipient, `a link item without a recipient and a link: \`${text}\``);
    links.push({ recipient, url });
  }
  return { id, status, links };
}

/** Sends from the browser, as a person would, and returns what the page answers. */
export async function sendFromBrowser(person, options) {
  await fillSendPage(person, options);
  await person.page.getByRole('button', { name: 'Send', exact: true }).click();
  return readSendResult(person);
}

/** Opens a bundle's collect page from the inbox, by its transfer id. */
export async function openFromInbox(person, id) {
  await person.goto('/inbox');
  await Promise.all([
    person.page.waitForURL((u) => u.pathname === `/inbox/${id}`),
    person.page.getByRole('link', { name: id }).click(),
  ]);
  await person.check('a collect page opened from the inbox');
}

/** Opens a link (`…/d#TOKEN`) in the browser: the collect page. */
export async function openLink(person, link) {
  // The link names the gateway's public URL; the person's browser may reach it another way.
  const { pathname, hash } = new URL(link);
  await person.goto(`${pathname}${hash}`);
}

/**
 * On a collect page: chooses the identity file, presses `Collect` and waits for `count` files
 * to arrive as downloads. Returns the downloads `[{name, path, bytes}]`.
 */
export async function collect(person, identity, count) {
  const { page } = person;
  const before = person.downloads.length;
  await page.getByLabel('Identity file', { exact: true }).setInputFiles(identity);
  const earlier = await shownErrors(person);
  await page.getByRole('button', { name: 'Collect', exact: true }).click();
  await waitUnlessRefused(person, () => person.downloads.length >= before + count, `${count} downloads`, earlier);
  await person.waitForDownloads(before + count);
  await person.check('after collecting');
  return person.downloads.slice(before);
}

/** On a collect page: tries to collect and expects the error summary to say `message`. */
export async function collectRefused(person, identity, message) {
  const { page } = person;
  await page.getByLabel('Identity file', { exact: true }).setInputFiles(identity);
  await page.getByRole('button', { name: 'Collect', exact: true }).click();
  const error = page.locator('#collect-error');
  await error.waitFor({ state: 'visible', timeout: WORK_TIMEOUT_MS });
  await assertText(error, message);
  await person.check('a refused collection');
  return (await error.innerText()).trim();
}

/**
 * The texts of the error summaries the page shows now, read in one go in the page (read one
 * call at a time, a summary could be cleared between "is it visible" and "what does it say").
 */
export async function shownErrors(person) {
  return person.page.evaluate(() =>
    [...document.querySelectorAll('.govuk-error-summary')]
      .filter((e) => e.checkVisibility())
      .map((e) => e.innerText.replace(/\s+/g, ' ').trim()),
  );
}

/**
 * Waits (bounded) until `done()` holds, failing at once with the page's words when an error
 * summary shows instead (other than the `earlier` ones, still showing from a previous try).
 */
async function waitUnlessRefused(person, done, what, earlier = [], timeout = WORK_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    if (await done()) return;
    const fresh = (await shownErrors(person)).filter((text) => !earlier.includes(text));
    if (fresh.length) assert.fail(`the page shows an error instead of ${what}: ${fresh.join(' | ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`no ${what} after ${timeout} ms`);
}

/** Asserts that `locator`'s text matches `pattern`, waiting for it (bounded). */
export async function assertText(locator, pattern, timeout = WORK_TIMEOUT_MS) {
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = await locator.innerText().catch(() => '');
    if (pattern.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`expected text matching ${pattern}, found: \`${text.trim()}\``);
}

/** Asserts that the downloads are exactly `files`, byte for byte (names and contents). */
export function assertSameFiles(downloads, files) {
  const got = Object.fromEntries(downloads.map((d) => [d.name, d.bytes]));
  assert.deepEqual(Object.keys(got).sort(), files.map((f) => f.name).sort(), 'the downloaded file names');
  for (const f of files) {
    assert.ok(got[f.name].equals(f.bytes), `${f.name}: ${got[f.name].length} bytes arrived, not the ${f.bytes.length} sent`);
  }
}

/** What can hold one transfer on a list page: a table row, a list item, a summary card. */
const ENTRY = 'tr, li, .govuk-summary-card, .govuk-summary-list__row';
/** The same, with the places a transfer's form and buttons may sit. */
const ACTIONS = `${ENTRY}, form, fieldset, section, article, div`;

/**
 * A button of a list entry, by its visible text: its accessible name starts with `text` (pages
 * add a visually hidden "transfer ID" so that screen reader users know which one it is).
 */
export function buttonNamed(scope, text) {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return scope.getByRole('button', { name: new RegExp(`^${escaped}(\\s|$)`) });
}

/**
 * The entry of a list page that shows `text` (a transfer id): the innermost table row, list item
 * or summary card holding it. With `button` (and/or `label`), the innermost element that holds
 * the text and that button (or labelled field), so `Approve` is the one for this transfer.
 */
export function entryWith(person, text, { button, label } = {}) {
  if (!button && !label) return person.page.locator(ENTRY).filter({ hasText: text }).last();
  let found = person.page.locator(ACTIONS).filter({ hasText: text });
  if (button) found = found.filter({ has: buttonNamed(person.page, button) });
  if (label) found = found.filter({ has: person.page.getByLabel(label, { exact: true }) });
  return found.last();
}

/** Presses `button` of the entry showing `text` (a form POST) and checks the page it leads to. */
export async function pressFor(person, text, button) {
  const entry = entryWith(person, text, { button });
  await Promise.all([person.page.waitForEvent('load'), buttonNamed(entry, button).click()]);
  await person.check(`after ${button}`);
}

/**
 * On the keys page: makes a signing key in this browser and registers it, as a person would;
 * returns the page's words, which name the key (`sealpost-signing1…`) and its fingerprint.
 */
export async function makeSigningKey(person) {
  const { page } = person;
  await person.goto('/keys');
  const status = page.locator('#signing-key-status');
  await assertText(status, /holds no signing key/);
  await page.getByRole('button', { name: 'Make a signing key in this browser', exact: true }).click();
  await page.locator('#signing-key-status[data-state="registered"]').waitFor({ timeout: WORK_TIMEOUT_MS });
  const text = await assertText(status, /holds a registered signing key for [^:]+: sealpost-signing1[A-Za-z0-9_-]{43} \(sha256:[0-9a-f]{64}\)/);
  await person.check('after making a signing key');
  return text;
}

/** On a collect page after collecting: waits for the delivery report's outcome (`signed`,
 * `unsigned`, `refused`, `unreported`) and returns it with the page's words. */
export async function deliveryOutcome(person) {
  const region = person.page.locator('#delivery-status[data-delivery]');
  await region.waitFor({ timeout: WORK_TIMEOUT_MS });
  return { outcome: await region.getAttribute('data-delivery'), text: (await region.innerText()).trim() };
}

/** Reads a file (a Buffer). */
export const bytesOf = (path) => readFileSync(path);
