// A sender takes a bundle back from the sent page before it is collected.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { linkToken, useSuite } from '../harness.mjs';
import { assertText, entryWith, makeFiles, pressFor } from '../flows.mjs';

const suite = useSuite();

test('a sender recalls a bundle from the sent page and its link stops working', async (t) => {
  const { gw, cast, dir } = suite;
  const [file] = makeFiles(dir, { 'wrong-recipient.csv': 'id\n1\n' });
  const sent = await gw.send(cast.bob.token, [file.path], { to: 'hmpps/alice' });

  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  await bob.goto('/sent');
  await assertText(entryWith(bob, sent.id), /waiting/i);
  await pressFor(bob, sent.id, 'Recall');
  await assertText(entryWith(bob, sent.id), /recalled/i);
  assert.equal(await entryWith(bob, sent.id, { button: 'Recall' }).count(), 0, 'a recalled bundle can be recalled again');

  const redeem = await gw.api('POST', '/api/v1/redeem', { token: cast.alice.token, json: { token: linkToken(sent.links[0].url) } });
  assert.equal(redeem.status, 410, `a recalled link answered ${redeem.status}`);
  const events = (await gw.audit({ transfer: sent.id })).map((e) => e.event);
  assert.ok(events.includes('transfer.recalled'), `no transfer.recalled in ${events.join(', ')}`);

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await alice.goto('/inbox');
  assert.equal(await entryWith(alice, sent.id).count(), 0, 'the recalled bundle is in the inbox');
});
