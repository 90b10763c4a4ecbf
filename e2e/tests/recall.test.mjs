// A sender takes a bundle back from the sent page before it is collected.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { linkToken, useSuite } from '../harness.mjs';
import { assertText, makeFiles, rowWith } from '../flows.mjs';

const suite = useSuite();

test('a sender recalls a bundle from the sent page and its link stops working', async (t) => {
  const { gw, cast, dir } = suite;
  const [file] = makeFiles(dir, { 'wrong-recipient.csv': 'id\n1\n' });
  const sent = await gw.send(cast.bob.token, [file.path], { to: 'hmpps/alice' });

  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  await bob.goto('/sent');
  const row = rowWith(bob, sent.id);
  await assertText(row, /waiting/i);
  await Promise.all([
    bob.page.waitForEvent('load'),
    row.getByRole('button', { name: 'Recall', exact: true }).click(),
  ]);
  await bob.check('after recalling');
  await assertText(rowWith(bob, sent.id), /recalled/i);
  assert.equal(await rowWith(bob, sent.id).getByRole('button', { name: 'Recall', exact: true }).count(), 0);

  const redeem = await gw.api('POST', '/api/v1/redeem', { token: cast.alice.token, json: { token: linkToken(sent.links[0].url) } });
  assert.equal(redeem.status, 410, `a recalled link answered ${redeem.status}`);
  const events = (await gw.audit({ transfer: sent.id })).map((e) => e.event);
  assert.ok(events.includes('transfer.recalled'), `no transfer.recalled in ${events.join(', ')}`);

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await alice.goto('/inbox');
  assert.equal(await rowWith(alice, sent.id).count(), 0, 'the recalled bundle is in the inbox');
});
