// Four eyes: an OFFICIAL-SENSITIVE bundle (signed by its sender, as the shipped policies require)
// waits for a compliance officer, who approves (or rejects) it on the held page.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { linkToken, useSuite } from '../harness.mjs';
import { assertSameFiles, collect, entryWith, makeFiles, makeSigningKey, openFromInbox, pressFor, sendFromBrowser } from '../flows.mjs';

const suite = useSuite();

test('a held bundle is approved by a compliance officer and then collected by its recipient', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, { 'assessment.docx': 120_000, 'summary.txt': 'sensitive summary\n' });

  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  await makeSigningKey(bob);
  const sent = await sendFromBrowser(bob, { to: 'hmpps/alice', files, classification: 'OFFICIAL-SENSITIVE' });
  assert.match(sent.status, /held for approval/i);
  const held = await gw.api('POST', '/api/v1/redeem', { token: cast.alice.token, json: { token: linkToken(sent.links[0].url) } });
  assert.notEqual(held.status, 200, 'a held bundle could be collected before approval');

  const olga = await suite.person(t, 'olga');
  await olga.signIn(cast.olga.token);
  await olga.goto('/compliance/held');
  await entryWith(olga, sent.id, { button: 'Approve' }).waitFor();
  await pressFor(olga, sent.id, 'Approve');
  assert.equal(await entryWith(olga, sent.id, { button: 'Approve' }).count(), 0, 'the approved bundle is still held');
  const events = (await gw.audit({ transfer: sent.id })).filter((e) => e.event === 'transfer.approved');
  assert.equal(events.length, 1, 'no transfer.approved event');
  assert.equal(events[0].actor, 'ico/olga');

  // The transfer's record: its receipts checked in the browser against the log key it pinned.
  await olga.goto(`/compliance/transfers/${sent.id}`);
  const verdict = olga.page.locator('#verify-status[data-verified]');
  await verdict.waitFor({ timeout: 15_000 });
  assert.equal(await verdict.getAttribute('data-verified'), 'true', await verdict.innerText());
  assert.match(await verdict.innerText(), /^Verified: all \d+ receipts are in the log/);

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await openFromInbox(alice, sent.id);
  assertSameFiles(await collect(alice, cast.alice.identity, 2), files);
});

test('a held bundle rejected with a reason can never be collected', async (t) => {
  const { gw, cast, dir } = suite;
  const [file] = makeFiles(dir, { 'rejected.txt': 'should not travel\n' });
  const sent = await gw.send(cast.bob.token, [file.path], {
    to: 'hmpps/alice',
    classification: 'OFFICIAL-SENSITIVE',
    signingKey: cast.bob.signingKey,
  });
  assert.equal(sent.status, 'awaiting_approval');

  const olga = await suite.person(t, 'olga');
  await olga.signIn(cast.olga.token);
  await olga.goto('/compliance/held');
  await entryWith(olga, sent.id, { label: 'Reason' }).getByLabel('Reason', { exact: true }).fill('not needed by the recipient');
  await pressFor(olga, sent.id, 'Reject');
  assert.equal(await entryWith(olga, sent.id, { button: 'Reject' }).count(), 0, 'the rejected bundle is still held');

  const redeem = await gw.api('POST', '/api/v1/redeem', { token: cast.alice.token, json: { token: linkToken(sent.links[0].url) } });
  assert.notEqual(redeem.status, 200, 'a rejected bundle was collected');
  const rejected = (await gw.audit({ transfer: sent.id })).filter((e) => e.event === 'transfer.rejected');
  assert.equal(rejected.length, 1, 'no transfer.rejected event');
});
