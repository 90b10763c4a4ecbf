// Single sign-on configured in the config file (`[[oidc]]`): users made just in time from the
// provider's claims and role rules, and sessions that end at their maximum age, after which a
// person disabled at the provider cannot come back.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { sleep } from '../harness.mjs';
import { fieldsOf, hasSession, ssoRefused, ssoSignIn, toProvider, useSsoSuite } from '../oidc/sso.mjs';

const jit = useSsoSuite({
  name: 'HMPPS Login',
  via: 'config',
  oidc: {
    users: 'just_in_time',
    org: 'hmpps',
    roles: [
      { claim: 'groups', value: 'caseworkers', role: 'recipient' },
      { claim: 'groups', value: 'contract-staff', role: 'sender', org: 'acme' },
    ],
  },
  accounts: [
    { id: 'fay', password: 'fay-pw', email: 'fay@hmpps.example', groups: ['staff', 'caseworkers'] },
    { id: 'hal', password: 'hal-pw', email: 'hal@acme.example', groups: ['contract-staff'] },
    { id: 'gus', password: 'gus-pw', email: 'gus@hmpps.example', groups: ['staff'] },
  ],
});

/** Seconds a session lives in the second gateway. */
const LIFETIME_S = 6;
const short = useSsoSuite({
  name: 'Test ID',
  via: 'config',
  config: `session_lifetime = "${LIFETIME_S}s"\nsession_idle_timeout = "${LIFETIME_S}s"`,
  oidc: { users: 'existing' },
  accounts: [{ id: 'ivy', password: 'ivy-pw', email: 'ivy@hmpps.example' }],
});

async function users(gw) {
  const { status, body } = await gw.api('GET', '/api/v1/users');
  assert.equal(status, 200, JSON.stringify(body));
  return Object.fromEntries(body.users.map((u) => [u.user, u]));
}

test('just in time: a new person in a configured group gets a user with that role on first sign-in', async (t) => {
  const { gw, op } = jit;
  assert.equal((await users(gw))['hmpps/fay'], undefined);

  const fay = await jit.person(t, 'fay');
  const button = /^Sign in with HMPPS Login$/;
  assert.equal(await ssoSignIn(fay, op, { username: 'fay', password: 'fay-pw' }, { button }), '/inbox');
  const made = (await users(gw))['hmpps/fay'];
  assert.ok(made, 'no user hmpps/fay after the first sign-in');
  assert.equal(made.role, 'recipient');
  assert.equal(made.email, 'fay@hmpps.example');

  // A rule with its own organisation; the user lands on a sender's first page.
  const hal = await jit.person(t, 'hal');
  assert.equal(await ssoSignIn(hal, op, { username: 'hal', password: 'hal-pw' }), '/send');
  assert.equal((await users(gw))['acme/hal']?.role, 'sender');

  // The second sign-in finds the same user, makes no other.
  const count = Object.keys(await users(gw)).length;
  const again = await jit.person(t, 'fay-again');
  assert.equal(await ssoSignIn(again, op, { username: 'fay', password: 'fay-pw' }), '/inbox');
  assert.equal(Object.keys(await users(gw)).length, count);

  const started = (await gw.audit()).filter((e) => e.event === 'session.started' && fieldsOf(e).method === 'oidc');
  assert.deepEqual(started.map((e) => e.subject ?? e.actor), ['hmpps/fay', 'acme/hal', 'hmpps/fay']);

});

test('just in time: a person in no configured group is refused and no user is made', async (t) => {
  const { gw, op } = jit;
  const before = Object.keys(await users(gw)).length;
  const from = (await gw.audit()).length;
  const gus = await jit.person(t, 'gus');
  await toProvider(gus, op);
  assert.match(await ssoRefused(gus, op, { username: 'gus', password: 'gus-pw' }), /group/i);
  assert.equal(Object.keys(await users(gw)).length, before, 'a user was made for a person no rule matches');
  assert.equal((await users(gw))['hmpps/gus'], undefined);
  const refused = (await gw.audit()).slice(from).filter((e) => e.event === 'session.refused');
  assert.equal(refused.length, 1);
  assert.equal(fieldsOf(refused[0]).method, 'oidc');
  assert.match(refused[0].code, /^sso_(unknown_user|no_role|denied)$/);
});

test('a session ends at its maximum age however busy, and a person disabled at the provider cannot sign in again', async (t) => {
  const { gw, op } = short;
  const { stdout } = await gw.cli(['admin', 'user', 'add', 'hmpps/ivy', '--role', 'recipient', '--email', 'ivy@hmpps.example']);
  assert.match(stdout.trim(), /^sp_/);

  const ivy = await short.person(t, 'ivy');
  const signedIn = Date.now();
  assert.equal(await ssoSignIn(ivy, op, { username: 'ivy', password: 'ivy-pw' }), '/inbox');
  op.disable('ivy');
  // Busy all along (never idle for long), the session still ends once it is LIFETIME_S old.
  let endedAfter;
  while (Date.now() - signedIn < (LIFETIME_S + 6) * 1000) {
    await sleep(1_000);
    await ivy.goto('/inbox');
    if (new URL(ivy.page.url()).pathname === '/sign-in') {
      endedAfter = Date.now() - signedIn;
      break;
    }
  }
  assert.ok(endedAfter, `the session still worked ${LIFETIME_S + 6} s after sign-in`);
  assert.ok(endedAfter >= (LIFETIME_S - 1) * 1000, `the session ended early, after ${endedAfter} ms`);
  assert.equal(await hasSession(ivy), false, 'the ended session cookie is still there');

  // A new sign-in: the provider refuses the disabled account.
  const from = (await gw.audit()).length;
  const again = await short.person(t, 'ivy-again');
  await toProvider(again, op);
  const message = await ssoRefused(again, op, { username: 'ivy', password: 'ivy-pw' });
  assert.match(message, /disabled/i);
  const refused = (await gw.audit()).slice(from).filter((e) => e.event === 'session.refused');
  assert.deepEqual(refused.map((e) => e.code), ['sso_denied']);
});
