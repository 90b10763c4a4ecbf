// Signing in with an API token, as each kind of user, and signing out.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { useSuite } from '../harness.mjs';

const suite = useSuite();

const SESSION_COOKIE = '__Host-sealpost-session';

test('each kind of user signs in with an API token and lands on their first page', async (t) => {
  const { cast } = suite;
  for (const [who, first] of [
    ['alice', '/inbox'],
    ['bob', '/send'],
    ['olga', '/compliance/held'],
    ['admin', '/admin'],
  ]) {
    const person = await suite.person(t, who);
    await person.signIn(cast[who].token);
    assert.equal(new URL(person.page.url()).pathname, first, `${who} landed on the wrong page`);
    const cookies = await person.context.cookies();
    const session = cookies.find((c) => c.name === SESSION_COOKIE);
    assert.ok(session, `no ${SESSION_COOKIE} cookie: ${cookies.map((c) => c.name).join(', ')}`);
    assert.equal(session.httpOnly, true, 'the session cookie is readable by scripts');
    assert.equal(session.sameSite, 'Strict');
    assert.equal(session.path, '/');
    // `__Host-` cookies must be Secure (Chromium accepts that over http on loopback, too).
    assert.equal(session.secure, true);
    // The cookie's value never shows in the page.
    assert.ok(!(await person.page.content()).includes(session.value), 'the session id is in the page');
  }
});

test('a wrong API token is refused with a message and starts no session', async (t) => {
  const person = await suite.person(t, 'stranger');
  await person.goto('/sign-in');
  await person.page.getByLabel('API token', { exact: true }).fill('sp_this-token-was-never-issued');
  await person.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  const summary = person.page.locator('.govuk-error-summary');
  await summary.waitFor({ state: 'visible' });
  await person.check('a refused sign-in');
  assert.equal(new URL(person.page.url()).pathname, '/sign-in');
  assert.ok(!(await person.context.cookies()).some((c) => c.name === SESSION_COOKIE), 'a session was started');
  const { gw } = suite;
  const refused = (await gw.audit()).filter((e) => e.event === 'session.refused');
  assert.ok(refused.length >= 1, 'the refused sign-in is not in the audit trail');
});

test('a page asked for before signing in leads to sign-in, and signing out ends the session', async (t) => {
  const person = await suite.person(t, 'alice');
  await person.goto('/inbox');
  assert.equal(new URL(person.page.url()).pathname, '/sign-in', 'the inbox showed without a session');
  await person.signIn(suite.cast.alice.token);
  await Promise.all([
    person.page.waitForURL((u) => u.pathname === '/sign-in'),
    person.page.getByRole('button', { name: 'Sign out', exact: true }).click(),
  ]);
  await person.check('after signing out');
  await person.goto('/inbox');
  assert.equal(new URL(person.page.url()).pathname, '/sign-in', 'the inbox still showed after signing out');
});
