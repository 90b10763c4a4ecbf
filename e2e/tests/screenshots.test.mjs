// A picture of each main page, for the README: taken at a fixed 1280x900 viewport into
// docs/screenshots/NAME.png (SEALPOST_SCREENSHOTS=DIR puts them elsewhere).

import assert from 'node:assert/strict';
import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

import { repoRoot, useSuite } from '../harness.mjs';
import { collect, deliveryOutcome, makeFiles, makeSigningKey, entryWith, openFromInbox, sendFromBrowser } from '../flows.mjs';

const suite = useSuite();
const outDir = resolve(process.env.SEALPOST_SCREENSHOTS || join(repoRoot, 'docs', 'screenshots'));

/**
 * Photographs the viewport; with `focus` (a selector), scrolled so that it ends near the bottom
 * (the send page: its result whole, with as much of the form above it as fits).
 */
async function shoot(person, name, focus) {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, `${name}.png`);
  if (focus) {
    await person.page.locator(focus).evaluate((el) => {
      el.scrollIntoView({ block: 'end' });
      window.scrollBy(0, 30);
    });
  } else {
    await person.page.evaluate(() => window.scrollTo(0, 0));
  }
  await person.page.screenshot({ path, animations: 'disabled', caret: 'hide' });
  assert.ok(statSync(path).size > 10_000, `${name}.png is nearly empty`);
}

test('each main page is photographed for the README', async (t) => {
  const { gw, cast, dir } = suite;

  const visitor = await suite.person(t, 'visitor');
  await visitor.goto('/sign-in');
  await shoot(visitor, 'sign-in');

  // Something in every list: one waiting bundle from the CLI, one held for approval.
  const [older] = makeFiles(dir, { 'monthly-return.csv': 'month,cases\n2026-10,41\n' });
  await gw.send(cast.bob.token, [older.path], { to: 'hmpps/alice' });
  const [sensitive] = makeFiles(dir, { 'incident-report.pdf': 80_000 });
  await gw.send(cast.bob.token, [sensitive.path], {
    to: 'hmpps/carol',
    classification: 'OFFICIAL-SENSITIVE',
    signingKey: cast.bob.signingKey,
  });

  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  await makeSigningKey(bob);
  const files = makeFiles(dir, { 'case-file-4471.pdf': 250_000, 'contacts.csv': 'name,phone\nA. Person,0100\n' });
  const sent = await sendFromBrowser(bob, { to: 'hmpps/alice', files });
  await shoot(bob, 'send', '#send-result');
  await bob.goto('/sent');
  await shoot(bob, 'sent');

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await alice.goto('/inbox');
  await entryWith(alice, sent.id).waitFor();
  await shoot(alice, 'inbox');
  await makeSigningKey(alice);
  await openFromInbox(alice, sent.id);
  await collect(alice, cast.alice.identity, 2);
  assert.equal((await deliveryOutcome(alice)).outcome, 'signed');
  // Scrolled so the files, the collection and the signed delivery show.
  await shoot(alice, 'collect', '#collected-files');

  const olga = await suite.person(t, 'olga');
  await olga.signIn(cast.olga.token);
  await olga.goto('/compliance/held');
  await shoot(olga, 'compliance-held');
  await olga.goto('/compliance/audit');
  await shoot(olga, 'audit');

  const admin = await suite.person(t, 'admin');
  await admin.signIn(cast.admin.token);
  await admin.goto('/admin');
  await shoot(admin, 'admin');
});
