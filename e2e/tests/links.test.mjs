// A link (`/d#TOKEN`) opened in the browser: it consumes nothing on opening, refuses a wrong
// identity before the link is used up, and says so when the link has expired.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';

import { linkToken, sleep, useSuite } from '../harness.mjs';
import { assertSameFiles, collect, collectRefused, makeFiles, openLink } from '../flows.mjs';

const suite = useSuite();

test('opening a link shows its collect page and uses nothing up', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, { 'opened.txt': 'opened, not collected\n' });
  const sent = await gw.send(cast.bob.token, files.map((f) => f.path), { to: 'hmpps/alice' });
  const link = sent.links[0].url;

  const alice = await suite.person(t, 'alice');
  const urls = [];
  alice.page.on('request', (r) => urls.push(r.url()));
  await alice.signIn(cast.alice.token);
  await openLink(alice, link);
  assert.equal(await alice.page.locator('main[data-page="collect"]').count(), 1, 'not the collect page');
  await alice.page.getByLabel('Identity file', { exact: true }).waitFor();
  await alice.page.reload({ waitUntil: 'load' });
  await alice.check('the link opened again');
  const token = linkToken(link);
  assert.deepEqual(urls.filter((u) => u.includes(token) && !u.endsWith(`#${token}`)), [], 'the token left the browser in a URL');

  const out = join(dir, 'opened');
  await gw.fetchInto(cast.alice.token, link, cast.alice.identity, out);
});

test('a wrong identity gets a clear message, and the link then collects with the right one', async (t) => {
  const { gw, cast, dir } = suite;
  const wrong = join(dir, 'not-alice.key');
  await gw.keygen(wrong);
  const files = makeFiles(dir, { 'a.bin': 70_000, 'b.txt': 'second file\n' });
  const sent = await gw.send(cast.bob.token, files.map((f) => f.path), { to: 'hmpps/alice' });

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await openLink(alice, sent.links[0].url);
  await collectRefused(alice, wrong, /This identity cannot open the bundle/);
  assert.equal(alice.downloads.length, 0, 'a wrong identity produced downloads');
  const events = (await gw.audit({ transfer: sent.id })).map((e) => e.event);
  assert.ok(!events.includes('download.completed'), `the link was used up: ${events.join(', ')}`);

  assertSameFiles(await collect(alice, cast.alice.identity, 2), files);
});

test('an expired link says that it has expired', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, { 'late.txt': 'too late\n' });
  const sent = await gw.send(cast.bob.token, files.map((f) => f.path), { to: 'hmpps/alice', expires: '2s' });
  const wait = Date.parse(sent.expires_at) - Date.now() + 500;
  assert.ok(wait < 5_000, `the link expires in ${wait} ms, not about 2 s`);
  await sleep(Math.max(wait, 0));

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await openLink(alice, sent.links[0].url);
  await collectRefused(alice, cast.alice.identity, /expired/i);
  assert.equal(alice.downloads.length, 0);
});
