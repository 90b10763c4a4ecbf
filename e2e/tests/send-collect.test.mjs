// The heart of it: a sender sends two files from the browser, and the recipient collects them
// in another browser from the inbox, byte for byte, with the server seeing neither names nor
// plaintext.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { linkToken, useSuite } from '../harness.mjs';
import { assertSameFiles, collect, makeFiles, entryWith, openFromInbox, sendFromBrowser } from '../flows.mjs';

const suite = useSuite();

test('two files sent from the browser are collected from the inbox in another browser, byte for byte', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, {
    'case-notes-2026.pdf': 300_000,
    'records.csv': 'id,name,status\n1,Example Person,open\n2,Another Person,closed\n',
  });
  const urls = [];

  const bob = await suite.person(t, 'bob');
  bob.page.on('request', (r) => urls.push(r.url()));
  await bob.signIn(cast.bob.token);
  const sent = await sendFromBrowser(bob, { to: 'hmpps/alice', files });
  assert.doesNotMatch(sent.status, /held/i, `an OFFICIAL bundle was held: ${sent.status}`);
  assert.deepEqual(sent.links.map((l) => l.recipient), ['hmpps/alice']);

  const alice = await suite.person(t, 'alice');
  alice.page.on('request', (r) => urls.push(r.url()));
  await alice.signIn(cast.alice.token);
  await alice.goto('/inbox');
  await entryWith(alice, sent.id).waitFor();
  await openFromInbox(alice, sent.id);
  const downloads = await collect(alice, cast.alice.identity, 2);
  assertSameFiles(downloads, files);

  // The gateway saw the bundle collected and decrypted.
  const events = (await gw.audit({ transfer: sent.id })).map((e) => e.event);
  for (const expected of ['upload.accepted', 'download.completed', 'delivery.acknowledged']) {
    assert.ok(events.includes(expected), `no ${expected} in ${events.join(', ')}`);
  }
  // Once collected, it leaves the inbox.
  await alice.goto('/inbox');
  assert.equal(await entryWith(alice, sent.id).count(), 0, 'the collected bundle is still in the inbox');

  // Neither a file name nor the link's token travelled in a URL or reached the gateway's log.
  const secrets = [...files.map((f) => f.name), linkToken(sent.links[0].url)];
  const log = readFileSync(gw.logPath, 'utf8');
  for (const secret of secrets) {
    assert.deepEqual(urls.filter((u) => u.includes(secret) && !u.endsWith(`#${secret}`)), [], `\`${secret}\` in a URL`);
    assert.ok(!log.includes(secret), `\`${secret}\` in the gateway's log`);
  }
});
