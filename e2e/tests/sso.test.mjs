// Single sign-on in the browser: a gateway configured with SEALPOST_OIDC_* and a real OpenID
// provider (e2e/oidc/provider.mjs), people signing in through it in Chromium. Only users an
// administrator made (with `--email`) may sign in; the provider's verified email finds them.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';

import { WORK_TIMEOUT_MS, repoRoot, sleep, within } from '../harness.mjs';
import { assertSameFiles, collect, collectRefused, entryWith, makeFiles, openFromInbox, pressFor, shownErrors } from '../flows.mjs';
import {
  SESSION_COOKIE,
  atProvider,
  fieldsOf,
  hasSession,
  ssoRefused,
  ssoSignIn,
  toProvider,
  useSsoSuite,
  userWithEmail,
} from '../oidc/sso.mjs';

const suite = useSsoSuite({
  name: 'Test ID',
  // Every refused sign-in its own audit entry, so that these tests can name each one: by
  // default identical refusals within a minute are one entry plus a summary with their count
  // (floods; tested in tests/it/rate_limits.rs).
  config: 'refusal_window = "0s"',
  accounts: [
    { id: 'erin', password: 'erin-pw', email: 'Erin@HMPPS.example', name: 'Erin Example', groups: ['recipients'], otp: '112233' },
    { id: 'dan', password: 'dan-pw', email: 'dan@hmpps.example' },
    { id: 'oscar', password: 'oscar-pw', email: 'oscar@ico.example', otp: '246810' },
    { id: 'stranger', password: 'stranger-pw', email: 'stranger@elsewhere.example' },
    { id: 'unverified', password: 'unverified-pw', email: 'dan@hmpps.example', email_verified: false },
  ],
});

/** The users with an email, made once (the suite's gateway is shared by the tests in order). */
let people;
async function cast() {
  if (people) return people;
  const { gw, dir } = suite;
  people = {
    erin: await userWithEmail(gw, 'hmpps/erin', 'recipient', 'erin@hmpps.example', dir),
    dan: await userWithEmail(gw, 'hmpps/dan', 'recipient', 'dan@hmpps.example', dir),
    oscar: await userWithEmail(gw, 'ico/oscar', 'compliance', 'oscar@ico.example'),
  };
  return people;
}

const ERIN = { username: 'erin', password: 'erin-pw' };

/** The audit entries of single sign-on since entry `from` (an index into the whole trail). */
async function ssoAudit(from) {
  const all = await suite.gw.audit();
  return all.slice(from).filter((e) => e.event.startsWith('session.') && fieldsOf(e).method === 'oidc');
}
const auditLength = async () => (await suite.gw.audit()).length;

test('a provider that cannot be reached: a clear message, no session, and sign-in works once it is back', async (t) => {
  const { op } = suite;
  await cast();
  const from = await auditLength();

  // Down before the gateway ever asked it anything.
  await op.stop();
  const first = await suite.person(t, 'erin-down');
  await first.goto('/sign-in');
  await first.page.getByRole('button', { name: /^Sign in with Test ID$/ }).click();
  await first.page.locator('.govuk-error-summary').waitFor();
  await first.check('provider down');
  assert.match(new URL(first.page.url()).pathname, /^\/sign-in/);
  assert.match((await shownErrors(first)).join(' '), /cannot reach Test ID/i);
  assert.equal(await hasSession(first), false, 'a session without the provider');

  // Back, and gone again between the person's sign-in there and the gateway's token request.
  await op.restart();
  const second = await suite.person(t, 'erin-token-down');
  await toProvider(second, op);
  op.stopAfterNextCode();
  const message = await ssoRefused(second, op, ERIN);
  assert.match(message, /cannot reach Test ID/i);
  await op.restart();

  const refused = (await ssoAudit(from)).filter((e) => e.event === 'session.refused');
  assert.deepEqual(refused.map((e) => e.code), ['sso_unreachable', 'sso_unreachable']);

  const third = await suite.person(t, 'erin-back');
  assert.equal(await ssoSignIn(third, op, ERIN), '/inbox');
});

test('a recipient signs in through the provider and sees the bundle waiting in the inbox', async (t) => {
  const { gw, op, dir } = suite;
  const { erin } = await cast();
  const [file] = makeFiles(dir, { 'report.txt': 'for erin\n' });
  const sent = await gw.send(suite.cast.bob.token, [file.path], { to: erin.ref });
  const from = await auditLength();

  const person = await suite.person(t, 'erin');
  let callback;
  person.page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/sign-in/callback') callback = r.url();
  });
  // The sign-in page with its provider button, for the README.
  await person.goto('/sign-in');
  const shots = resolve(process.env.SEALPOST_SCREENSHOTS || join(repoRoot, 'docs', 'screenshots'));
  mkdirSync(shots, { recursive: true });
  await person.page.screenshot({ path: join(shots, 'sign-in-sso.png'), animations: 'disabled', caret: 'hide' });
  await toProvider(person, op);
  assert.equal(await person.page.getByRole('heading', { level: 1 }).innerText(), 'Sign in');
  assert.equal(await atProvider(person, op, ERIN), '/inbox');
  await person.page.getByRole('link', { name: sent.id }).waitFor();

  const session = (await person.context.cookies()).find((c) => c.name === SESSION_COOKIE);
  assert.ok(session, 'no session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(session.secure, true);
  assert.equal(session.path, '/');
  assert.ok(!(await person.page.content()).includes(session.value), 'the session id is in the page');

  // The provider was asked for the code flow with PKCE, and the ID token named Erin.
  const asked = op.requests.find((r) => r.path === '/auth');
  assert.ok(asked, 'the provider never saw an authorization request');
  const [started] = (await ssoAudit(from)).filter((e) => e.event === 'session.started');
  assert.ok(started, 'no session.started with method=oidc');
  assert.equal(started.subject ?? started.actor, 'hmpps/erin');
  const facts = fieldsOf(started);
  assert.equal(facts.provider, 'sso');
  assert.equal(facts.mfa, 'false');

  // The callback's address, used again (from another browser), is refused: its state is spent.
  assert.ok(callback, 'the browser never went to /sign-in/callback');
  const replay = await suite.person(t, 'replay');
  await replay.page.goto(callback);
  await replay.page.locator('.govuk-error-summary').waitFor();
  await replay.check('a replayed callback');
  assert.ok((await shownErrors(replay)).length >= 1, 'a replayed callback shows no error');
  assert.equal(await hasSession(replay), false, 'a replayed callback started a session');
  const codes = (await ssoAudit(from)).filter((e) => e.event === 'session.refused').map((e) => e.code);
  assert.deepEqual(codes, ['sso_state']);
});

test("a sign-in finished in another browser than the one that began it is refused (the state is bound to it)", async (t) => {
  const { op } = suite;
  await cast();
  const from = await auditLength();
  // Erin begins and signs in at the provider; her browser's way back to the gateway is cut
  // (DevTools' Fetch domain fails the request at the callback), and the address goes elsewhere.
  const erin = await suite.person(t, 'erin-begins');
  await toProvider(erin, op);
  const cdp = await erin.context.newCDPSession(erin.page);
  const carried = new Promise((resolve) => {
    cdp.on('Fetch.requestPaused', (e) => {
      resolve(e.request.url);
      cdp.send('Fetch.failRequest', { requestId: e.requestId, errorReason: 'Aborted' }).catch(() => {});
    });
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${suite.gw.url}/sign-in/callback*`, requestStage: 'Request' }] });
  await erin.page.getByLabel('Username', { exact: true }).fill(ERIN.username);
  await erin.page.getByLabel('Password', { exact: true }).fill(ERIN.password);
  await erin.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const callback = await within(WORK_TIMEOUT_MS, carried, 'the browser never went back to the callback');
  await cdp.detach();
  assert.match(callback, /[?&]code=/);

  // Someone else's browser (no sign-in of its own under way) opens it: refused, no session.
  const other = await suite.person(t, 'someone-else');
  await other.page.goto(callback);
  await other.page.locator('.govuk-error-summary').waitFor();
  await other.check('a callback from another browser');
  assert.equal(await hasSession(other), false, 'another browser got a session from Erin\'s sign-in');
  const codes = (await ssoAudit(from)).map((e) => `${e.event} ${e.code}`);
  assert.deepEqual(codes, ['session.refused sso_state']);
});

test('a person with no sealpost account, or whose email is not verified, is refused', async (t) => {
  const { op } = suite;
  await cast();
  const from = await auditLength();
  const stranger = await suite.person(t, 'stranger');
  await toProvider(stranger, op);
  const message = await ssoRefused(stranger, op, { username: 'stranger', password: 'stranger-pw' });
  assert.match(message, /no sealpost account for stranger@elsewhere\.example/i);

  // Same address as Dan's, but the provider does not vouch for it.
  const unverified = await suite.person(t, 'unverified');
  await toProvider(unverified, op);
  await ssoRefused(unverified, op, { username: 'unverified', password: 'unverified-pw' });

  const codes = (await ssoAudit(from)).map((e) => `${e.event} ${e.code}`);
  assert.deepEqual(codes, ['session.refused sso_unknown_user', 'session.refused sso_unknown_user']);
});

test('after the provider rotates its signing key, sign-in still works (the gateway reads the new JWKS)', async (t) => {
  const { op } = suite;
  await cast();
  const warm = await suite.person(t, 'erin-before-rotation');
  await ssoSignIn(warm, op, ERIN);
  // The gateway reads the JWKS again for an unknown key at most every 10 seconds.
  const wait = op.lastJwksFetch() + 10_500 - Date.now();
  if (wait > 0) await sleep(wait);
  const kid = await op.rotateKeys({ keepOld: false });
  const fetches = op.requests.filter((r) => r.path === '/jwks').length;

  const person = await suite.person(t, 'erin-after-rotation');
  assert.equal(await ssoSignIn(person, op, ERIN), '/inbox');
  assert.ok(op.requests.filter((r) => r.path === '/jwks').length > fetches, 'the gateway did not fetch the JWKS again');
  assert.equal(JSON.parse(Buffer.from(op.tokenResponses.at(-1).sent.split('.')[0], 'base64url')).kid, kid);
});

test('forged, expired, wrong-audience, wrong-issuer and wrong-nonce ID tokens are refused', async (t) => {
  const { op } = suite;
  await cast();
  const modes = ['forged', 'expired', 'wrong_audience', 'wrong_issuer', 'wrong_nonce'];
  const from = await auditLength();
  try {
    for (const mode of modes) {
      op.setMode(mode);
      const person = await suite.person(t, `erin-${mode}`);
      await toProvider(person, op);
      const message = await ssoRefused(person, op, ERIN);
      assert.match(message, /could not be verified/i, `${mode}: ${message}`);
      assert.equal(op.tokenResponses.at(-1).mode, mode, `${mode}: the gateway did not get the tampered token`);
    }
  } finally {
    op.setMode('normal');
  }
  const events = await ssoAudit(from);
  assert.deepEqual(
    events.map((e) => `${e.event} ${e.code}`),
    modes.map(() => 'session.refused sso_invalid'),
  );
});

test('a person who cancels at the provider, or whose account is disabled there, gets no session', async (t) => {
  const { op } = suite;
  await cast();
  const dan = await suite.person(t, 'dan');
  assert.equal(await ssoSignIn(dan, op, { username: 'dan', password: 'dan-pw' }), '/inbox');

  const from = await auditLength();
  const cancelling = await suite.person(t, 'dan-cancels');
  await toProvider(cancelling, op);
  assert.match(await ssoRefused(cancelling, op, { cancel: true }), /did not sign you in/i);

  op.disable('dan');
  try {
    const again = await suite.person(t, 'dan-disabled');
    await toProvider(again, op);
    const message = await ssoRefused(again, op, { username: 'dan', password: 'dan-pw' });
    assert.match(message, /did not sign you in/i);
    assert.match(message, /disabled/i);
  } finally {
    op.enable('dan');
  }
  const codes = (await ssoAudit(from)).map((e) => `${e.event} ${e.code}`);
  assert.deepEqual(codes, ['session.refused sso_denied', 'session.refused sso_denied']);
});

test('a compliance officer needs the one-time code to approve a held OFFICIAL-SENSITIVE transfer, its recipient to collect it', async (t) => {
  const { gw, op, dir } = suite;
  const { erin } = await cast();
  const { bob } = suite.cast;
  const [file] = makeFiles(dir, { 'sensitive.txt': 'official-sensitive\n' });
  const sent = await gw.send(bob.token, [file.path], { to: erin.ref, classification: 'OFFICIAL-SENSITIVE', signingKey: bob.signingKey });
  assert.equal(sent.status, 'awaiting_approval');
  const from = await auditLength();

  // Password only: signed in, but the policy refuses a compliance officer without multi-factor
  // (their first page, the held transfers, already says so), and the transfer stays held.
  const weak = await suite.person(t, 'oscar-password-only');
  await toProvider(weak, op);
  assert.equal(await atProvider(weak, op, { username: 'oscar', password: 'oscar-pw' }), '/compliance/held');
  assert.equal(await entryWith(weak, sent.id, { button: 'Approve' }).count(), 0, 'Approve offered without multi-factor');
  const refusal = (await weak.page.locator('main').innerText()).replace(/\s+/g, ' ');
  assert.match(refusal, /multi-factor/i, `the page does not say why: ${refusal}`);
  const stillHeld = await gw.api('GET', `/api/v1/transfers/${sent.id}`);
  assert.equal(stillHeld.body.status, 'awaiting_approval', JSON.stringify(stillHeld.body));
  // The page tells them to sign out and sign in again with their second factor: they can.
  assert.equal(
    await weak.page.getByRole('button', { name: 'Sign out', exact: true }).count(),
    1,
    `the refusal says "sign out" but the page has no Sign out button: ${refusal}`,
  );

  // With the one-time code: the same officer approves.
  const strong = await suite.person(t, 'oscar-with-code');
  await ssoSignIn(strong, op, { username: 'oscar', password: 'oscar-pw', otp: '246810' });
  await strong.goto('/compliance/held');
  await entryWith(strong, sent.id, { button: 'Approve' }).waitFor();
  await pressFor(strong, sent.id, 'Approve');
  const approved = (await gw.audit({ transfer: sent.id })).filter((e) => e.event === 'transfer.approved');
  assert.equal(approved.length, 1, 'no transfer.approved');
  assert.equal(approved[0].actor, 'ico/oscar');

  // The recipient: without the one-time code the policy refuses the collection, with it the
  // files arrive.
  const erinWeak = await suite.person(t, 'erin-password-only');
  await ssoSignIn(erinWeak, op, ERIN);
  await openFromInbox(erinWeak, sent.id);
  assert.match(await collectRefused(erinWeak, erin.identity, /multi-factor/i), /multi-factor/i);
  const erinStrong = await suite.person(t, 'erin-with-code');
  await ssoSignIn(erinStrong, op, { ...ERIN, otp: '112233' });
  await openFromInbox(erinStrong, sent.id);
  assertSameFiles(await collect(erinStrong, erin.identity, 1), [file]);

  const started = (await ssoAudit(from)).filter((e) => e.event === 'session.started').map((e) => fieldsOf(e).mfa);
  assert.deepEqual(started, ['false', 'true', 'false', 'true']);
});
