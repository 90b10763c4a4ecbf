// Signed for on receipt, in the browser: a recipient makes a signing key on the keys page (a
// non-extractable Ed25519 WebCrypto key, registered as `sealpost-signing1…`), collects and signs
// for the delivery; the sender sees "Signed for by"; without a key the delivery is recorded
// unsigned and the page says how to sign next time; a refused signature is explained and can be
// given again. A sender with a signing key signs the manifest before the upload, so
// OFFICIAL-SENSITIVE is accepted (and held for approval as before); without one it is refused
// with the policy's advice and a link to make a key.

import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { test } from 'node:test';

import { useSuite } from '../harness.mjs';
import {
  assertSameFiles,
  assertText,
  collect,
  deliveryOutcome,
  fillSendPage,
  makeFiles,
  makeSigningKey,
  openFromInbox,
  sendFromBrowser,
  shownErrors,
} from '../flows.mjs';

const suite = useSuite();

const SIGNING_KEY = /sealpost-signing1[A-Za-z0-9_-]{43}/;
const fingerprint = (pub) => `sha256:${createHash('sha256').update(pub).digest('hex')}`;

/** Opens the sender's page of transfer `id` from the sent list and returns the row of `recipient`. */
async function sentRow(person, id, recipient) {
  await person.goto('/sent');
  await Promise.all([
    person.page.waitForURL((u) => u.pathname === `/sent/${id}`),
    person.page.getByRole('link', { name: id }).click(),
  ]);
  await person.check('the sent transfer page');
  return person.page.locator('#recipients tr').filter({ hasText: recipient });
}

test('a recipient makes a signing key in the browser, collects and signs for the delivery; the sender sees it signed for', async (t) => {
  const { gw, cast, dir } = suite;
  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  const made = await makeSigningKey(alice);
  const pub = made.match(SIGNING_KEY)[0];
  assert.ok(made.includes(fingerprint(pub)), `the keys page names another fingerprint: ${made}`);

  // Registered in the directory as one of alice's keys.
  const own = await gw.api('GET', '/api/v1/keys', { token: cast.alice.token });
  assert.equal(own.status, 200);
  assert.ok(
    own.body.keys.some((k) => k.recipient === pub && k.stanza_type === 'sealpost-signing' && k.fingerprint === fingerprint(pub)),
    `alice's keys do not hold ${pub}: ${JSON.stringify(own.body.keys)}`,
  );
  // Kept in IndexedDB, and its private half cannot be read out of the browser.
  const kept = await alice.page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const req = indexedDB.open('sealpost');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const record = await new Promise((resolve, reject) => {
      const req = db.transaction('keys').objectStore('keys').get('signing-key:hmpps/alice');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    db.close();
    let exported = 'refused';
    try {
      await crypto.subtle.exportKey('pkcs8', record.privateKey);
      exported = 'exported';
    } catch {
      // Not extractable: what we want.
    }
    return { public: record.public, algorithm: record.privateKey.algorithm.name, extractable: record.privateKey.extractable, exported };
  });
  assert.deepEqual(kept, { public: pub, algorithm: 'Ed25519', extractable: false, exported: 'refused' });
  // The page knows it again after a reload, and offers no second key.
  await alice.goto('/keys');
  await assertText(alice.page.locator('#signing-key-status'), /holds a registered signing key for hmpps\/alice/);
  assert.equal(await alice.page.getByRole('button', { name: 'Make a signing key in this browser' }).count(), 0);

  const files = makeFiles(dir, { 'signed-for.csv': 'case,status\n7,closed\n' });
  const sent = await gw.send(cast.bob.token, [files[0].path], { to: 'hmpps/alice', signingKey: cast.bob.signingKey });
  await openFromInbox(alice, sent.id);
  await assertText(alice.page.locator('#signing-note'), /this browser signs for its delivery as hmpps\/alice/);
  assertSameFiles(await collect(alice, cast.alice.identity, 1), files);
  // The sender's signature was checked against the log before the link was used.
  await assertText(alice.page.locator('#collect-status'), new RegExp(`acme/bob signed it \\(key ${fingerprint(cast.bob.signingPublic)}, in the log\\)\\.`));
  const delivery = await deliveryOutcome(alice);
  assert.equal(delivery.outcome, 'signed', delivery.text);
  assert.match(delivery.text, /^Signed for as hmpps\/alice\. Your signed statement is entry \d+ of the transparency log\.$/);
  assert.deepEqual(await shownErrors(alice), []);
  await alice.check('after signing for the delivery');

  // The sender's view of the transfer names the signer and the key.
  const view = await gw.api('GET', `/api/v1/transfers/${sent.id}`, { token: cast.bob.token });
  assert.equal(view.status, 200);
  const [link] = view.body.links;
  assert.equal(link.acknowledged, 'decrypted');
  assert.equal(link.signed_for?.by, 'hmpps/alice', JSON.stringify(link));
  assert.equal(link.signed_for.key, fingerprint(pub));
  assert.ok(Math.abs(Date.parse(link.signed_for.at) - Date.now()) < 5 * 60_000, `signed at ${link.signed_for.at}`);
  const events = (await gw.audit({ transfer: sent.id })).map((e) => e.event);
  assert.ok(events.includes('delivery.acknowledged'), `no delivery.acknowledged in ${events.join(', ')}`);
  assert.ok(!events.includes('delivery.refused'), `a delivery was refused: ${events.join(', ')}`);

  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  const row = await sentRow(bob, sent.id, 'hmpps/alice');
  await assertText(row, /Signed for by hmpps\/alice at \d{1,2} [A-Z][a-z]+ \d{4}, \d\d:\d\d UTC/);
});

test('without a signing key the delivery is recorded unsigned, and the page says how to sign next time', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, { 'unsigned.txt': 'collected without a signature\n' });
  const sent = await gw.send(cast.bob.token, [files[0].path], { to: 'hmpps/carol' });

  const carol = await suite.person(t, 'carol');
  await carol.signIn(cast.carol.token);
  await openFromInbox(carol, sent.id);
  const note = carol.page.locator('#signing-note');
  await assertText(note, /holds no signing key for you, so the delivery will be recorded as unsigned/);
  assert.equal(await note.getByRole('link', { name: 'make a signing key on your Keys page' }).getAttribute('href'), '/keys#signing-key');
  assertSameFiles(await collect(carol, cast.carol.identity, 1), files);
  await assertText(carol.page.locator('#collect-status'), /The sender did not sign this bundle: nothing but the gateway’s word says who sent it\./);
  const delivery = await deliveryOutcome(carol);
  assert.equal(delivery.outcome, 'unsigned', delivery.text);
  assert.match(delivery.text, /^The delivery was recorded as unsigned: this browser holds no signing key for hmpps\/carol\. To sign for what you collect next time, make a signing key in this browser on your Keys page\.$/);
  const link = carol.page.locator('#delivery-status').getByRole('link', { name: 'make a signing key in this browser on your Keys page' });
  assert.equal(await link.getAttribute('href'), '/keys#signing-key');
  await carol.check('after an unsigned delivery');

  const view = await gw.api('GET', `/api/v1/transfers/${sent.id}`, { token: cast.bob.token });
  assert.equal(view.body.links[0].acknowledged, 'decrypted');
  assert.equal(view.body.links[0].signed_for, null);

  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  const row = await sentRow(bob, sent.id, 'hmpps/carol');
  await assertText(row, /Delivered, not signed for/);
});

test('a refused signature is explained, nothing is recorded, and signing again succeeds', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, { 'again.txt': 'signed on the second try\n' });
  const sent = await gw.send(cast.bob.token, [files[0].path], { to: 'hmpps/alice' });

  // Another browser of alice's: a key of its own.
  const alice = await suite.person(t, 'alice-laptop');
  await alice.signIn(cast.alice.token);
  const pub = (await makeSigningKey(alice)).match(SIGNING_KEY)[0];
  await openFromInbox(alice, sent.id);

  // The first report is answered as a gateway refuses a removed key; what the page sent is kept.
  const posted = [];
  await alice.page.route(`**/api/v1/transfers/${sent.id}/delivery`, async (route) => {
    posted.push(route.request().postDataJSON());
    await route.fulfill({
      status: 422,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'unknown_signing_key', message: 'that signing key is not one of yours' } }),
    });
  });
  assertSameFiles(await collect(alice, cast.alice.identity, 1), files);
  const refused = await deliveryOutcome(alice);
  assert.equal(refused.outcome, 'refused', refused.text);
  assert.match(refused.text, /no longer one of your signing keys.*the delivery is not recorded yet/);
  const errors = await shownErrors(alice);
  assert.equal(errors.length, 1);
  assert.match(errors[0], /no longer one of your signing keys/);
  await alice.check('after a refused signature');

  // What was signed: the statement of spec13 section 1, for this transfer, digest and signer.
  assert.equal(posted.length, 1);
  const [body] = posted;
  assert.deepEqual(Object.keys(body).sort(), ['key', 'signature', 'statement', 'status']);
  assert.equal(body.status, 'decrypted');
  assert.equal(body.key, fingerprint(pub));
  assert.equal(Buffer.from(body.signature, 'base64').length, 64);
  const lines = body.statement.split('\n');
  assert.equal(lines.length, 7, body.statement);
  assert.equal(lines[6], '', 'the statement ends in one newline');
  assert.equal(lines[0], 'sealpost.delivery/v1');
  assert.equal(lines[1], `transfer ${sent.id}`);
  assert.equal(lines[2], `digest ${sent.digest}`);
  assert.equal(lines[3], 'recipient hmpps/alice');
  assert.match(lines[4], /^time \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.ok(Math.abs(Date.parse(lines[4].slice(5)) - Date.now()) < 5 * 60_000, lines[4]);
  assert.match(lines[5], /^checkpoint [1-9]\d* [A-Za-z0-9+/]{43}=$/);
  // Nothing reached the gateway: the link is used, the delivery not reported.
  const before = await gw.api('GET', `/api/v1/transfers/${sent.id}`, { token: cast.bob.token });
  assert.equal(before.body.links[0].state, 'used');
  assert.equal(before.body.links[0].acknowledged, null);

  // Signing again, with the gateway answering this time.
  await alice.page.unroute(`**/api/v1/transfers/${sent.id}/delivery`);
  await alice.page.getByRole('button', { name: 'Sign for the delivery again', exact: true }).click();
  await assertText(alice.page.locator('#delivery-status[data-delivery="signed"]'), /^Signed for as hmpps\/alice\./);
  assert.equal(await alice.page.getByRole('button', { name: 'Record the delivery unsigned' }).count(), 0);
  assert.deepEqual(await shownErrors(alice), []);
  await alice.check('after signing again');
  const after = await gw.api('GET', `/api/v1/transfers/${sent.id}`, { token: cast.bob.token });
  assert.equal(after.body.links[0].signed_for?.key, fingerprint(pub));
});

test('a sender with a signing key sends OFFICIAL-SENSITIVE signed, and it is held for approval as before', async (t) => {
  const { gw, cast, dir } = suite;
  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  const pub = (await makeSigningKey(bob)).match(SIGNING_KEY)[0];
  await bob.goto('/send');
  await assertText(bob.page.locator('#send-signing-note'), /This browser signs what you send as acme\/bob/);
  const files = makeFiles(dir, { 'risk-assessment.pdf': 90_000 });
  const sent = await sendFromBrowser(bob, {
    to: ['hmpps/carol', 'hmpps/alice'],
    files,
    classification: 'OFFICIAL-SENSITIVE',
    expires: '7d',
  });
  assert.match(sent.status, /held for approval/i);

  // The manifest the gateway keeps is the one signed in the browser, before the upload.
  const view = await gw.api('GET', `/api/v1/transfers/${sent.id}`, { token: cast.bob.token });
  assert.equal(view.body.status, 'awaiting_approval');
  const answer = await gw.api('GET', `/api/v1/transfers/${sent.id}/manifest`, { token: cast.bob.token });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual(answer.body.key, { fingerprint: fingerprint(pub), public: pub });
  assert.equal(answer.body.sender, 'acme/bob');
  assert.equal(
    answer.body.manifest,
    'sealpost.manifest/v2\n' +
      'sender acme/bob\n' +
      `digest ${view.body.digest}\n` +
      'classification OFFICIAL-SENSITIVE\n' +
      'expires 604800\n' +
      'recipient hmpps/alice\n' +
      'recipient hmpps/carol\n',
  );
  const key = createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(pub.slice('sealpost-signing1'.length), 'base64url')]),
    format: 'der',
    type: 'spki',
  });
  assert.ok(verify(null, Buffer.from(answer.body.manifest), key, Buffer.from(answer.body.signature, 'base64')), 'the manifest signature does not verify');
});

test('a sender without a signing key is refused OFFICIAL-SENSITIVE with the policy advice and a link to make one', async (t) => {
  const { cast, dir } = suite;
  // A browser of bob's that holds no signing key.
  const bob = await suite.person(t, 'bob-elsewhere');
  await bob.signIn(cast.bob.token);
  await bob.goto('/send');
  await assertText(bob.page.locator('#send-signing-note'), /holds no signing key for you, so what you send goes unsigned/);
  const files = makeFiles(dir, { 'unsigned-sensitive.txt': 'must be signed\n' });
  await fillSendPage(bob, { to: 'hmpps/alice', files, classification: 'OFFICIAL-SENSITIVE' });
  await bob.page.getByRole('button', { name: 'Send', exact: true }).click();
  const summary = bob.page.locator('#send-error');
  await summary.waitFor({ state: 'visible', timeout: 90_000 });
  await assertText(summary, /The gateway refused the upload: .+ It was not signed: this browser holds no registered signing key for you\./s);
  const link = summary.getByRole('link', { name: /make a signing key in this browser/ });
  assert.equal(await link.getAttribute('href'), '/keys#signing-key');
  assert.equal(await bob.page.locator('#send-result').isVisible(), false);
  await bob.check('a refused unsigned upload');
  await Promise.all([bob.page.waitForURL((u) => u.pathname === '/keys'), link.click()]);
  await bob.check('the keys page from the refusal');
  await assertText(bob.page.locator('#signing-key-status'), /holds no signing key for acme\/bob/);
});
