// The test OpenID provider itself (e2e/oidc/provider.mjs), driven over plain HTTP as a relying
// party would, so that a failing single sign-on test points at the gateway and not at the
// harness: the code flow with PKCE, the claims in the ID token, every tampering mode, key
// rotation, a disabled account, stop and restart, and the device flow.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import * as jose from 'jose';

import { Person, launchBrowser } from '../harness.mjs';
import { DEVICE_GRANT, gatewayClient, startProvider } from '../oidc/provider.mjs';

const RP = 'http://127.0.0.1:9';
const client = gatewayClient(RP, { clientSecret: 'the-secret' });
let op;
let browser;

before(async () => {
  browser = await launchBrowser();
  op = await startProvider({
    clients: [client],
    accounts: [
      { id: 'alice', password: 'pw-alice', email: 'alice@hmpps.example', groups: ['recipients'], otp: '123456' },
      { id: 'dave', password: 'pw-dave', email: 'dave@hmpps.example', acr: 'urn:test:gold' },
    ],
  });
});
after(async () => {
  await browser?.close();
  await op?.close();
});

/** A browser's cookie jar, just enough for one host. */
class Jar {
  cookies = new Map();
  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const [name, ...rest] = pair.split('=');
      const expired = attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\s*$/i.test(a));
      if (expired) this.cookies.delete(name.trim());
      else this.cookies.set(name.trim(), rest.join('='));
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** One request with the jar's cookies and no redirect following. */
async function go(jar, url, { method = 'GET', form } = {}) {
  const init = { method, redirect: 'manual', headers: { cookie: jar.header() } };
  if (form) {
    init.body = new URLSearchParams(form);
    init.headers['content-type'] = 'application/x-www-form-urlencoded';
  }
  const response = await fetch(new URL(url, op.issuer), init);
  jar.take(response);
  return { status: response.status, location: response.headers.get('location'), text: await response.text() };
}

const basic = `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;

/** Runs the code flow with PKCE up to the token endpoint's answer (or the redirect's error). */
async function codeFlow({ username = 'alice', password = 'pw-alice', otp = '' } = {}) {
  const jar = new Jar();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const nonce = randomBytes(8).toString('hex');
  const auth = new URL('/auth', op.issuer);
  auth.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: client.redirect_uris[0],
    response_type: 'code',
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  let r = await go(jar, auth);
  assert.equal(r.status, 303, r.text);
  assert.match(r.location, /^\/interaction\//);
  const interaction = r.location;
  r = await go(jar, interaction);
  assert.match(r.text, /<label for="username">Username<\/label>/);
  r = await go(jar, `${interaction}/login`, { method: 'POST', form: { username, password, otp } });
  if (r.status === 200) return { loginPage: r.text };
  assert.equal(r.status, 303, r.text);
  for (let i = 0; i < 5 && !r.location.startsWith(RP); i++) r = await go(jar, r.location);
  const back = new URL(r.location);
  assert.equal(back.searchParams.get('state'), state);
  if (back.searchParams.get('error')) return { error: back.searchParams.get('error'), description: back.searchParams.get('error_description') };
  const token = await fetch(new URL('/token', op.issuer), {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: back.searchParams.get('code'),
      redirect_uri: client.redirect_uris[0],
      code_verifier: verifier,
    }),
  });
  const body = await token.json();
  assert.equal(token.status, 200, JSON.stringify(body));
  return { idToken: body.id_token, nonce };
}

/** Verifies an ID token as a relying party must (a fresh JWKS fetch each time). */
async function verify(idToken, nonce) {
  const jwks = jose.createRemoteJWKSet(new URL('/jwks', op.issuer));
  const { payload } = await jose.jwtVerify(idToken, jwks, { issuer: op.issuer, audience: client.client_id });
  assert.equal(payload.nonce, nonce, 'nonce');
  return payload;
}

test('the code flow with PKCE gives an ID token with the account, its groups and amr', async () => {
  const discovery = await (await fetch(`${op.issuer}/.well-known/openid-configuration`)).json();
  assert.equal(discovery.issuer, op.issuer);
  assert.ok(discovery.device_authorization_endpoint, 'the device flow is off');
  assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);

  const { idToken, nonce } = await codeFlow();
  const claims = await verify(idToken, nonce);
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.email, 'alice@hmpps.example');
  assert.equal(claims.email_verified, true);
  assert.deepEqual(claims.groups, ['recipients']);
  assert.deepEqual(claims.amr, ['pwd']);
  assert.equal(claims.acr, 'urn:test:pwd');

  const mfa = await codeFlow({ otp: '123456' });
  const strong = await verify(mfa.idToken, mfa.nonce);
  assert.deepEqual(strong.amr, ['pwd', 'otp', 'mfa']);
  const gold = await codeFlow({ username: 'dave', password: 'pw-dave' });
  assert.equal((await verify(gold.idToken, gold.nonce)).acr, 'urn:test:gold');

  assert.match((await codeFlow({ password: 'wrong' })).loginPage, /The username or password is not right/);
  assert.match((await codeFlow({ otp: '999999' })).loginPage, /The one-time code is not right/);
});

test('the authorization endpoint refuses a request without PKCE', async () => {
  const auth = new URL('/auth', op.issuer);
  auth.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: client.redirect_uris[0],
    response_type: 'code',
    scope: 'openid',
    state: 's',
  });
  const r = await go(new Jar(), auth);
  assert.equal(r.status, 303);
  assert.match(r.location, /error=invalid_request/);
});

test('each tampering mode makes an ID token a relying party refuses', async () => {
  const expected = {
    forged: /signature verification failed/,
    expired: /"exp" claim timestamp check failed/,
    wrong_audience: /unexpected "aud" claim value/,
    wrong_issuer: /unexpected "iss" claim value/,
    wrong_nonce: /nonce/,
  };
  try {
    for (const [mode, refusal] of Object.entries(expected)) {
      op.setMode(mode);
      const { idToken, nonce } = await codeFlow();
      await assert.rejects(verify(idToken, nonce), refusal, `mode ${mode}`);
      const real = op.publicKeys().map((k) => k.kid);
      assert.ok(real.includes(jose.decodeProtectedHeader(idToken).kid), `mode ${mode}: a kid the JWKS does not have`);
    }
  } finally {
    op.setMode('normal');
  }
  assert.throws(() => op.setMode('nonsense'), /not one of/);
});

test('after a key rotation new tokens are signed with the new key, first in the JWKS', async () => {
  const before = op.publicKeys()[0].kid;
  const kid = await op.rotateKeys();
  const served = (await (await fetch(`${op.issuer}/jwks`)).json()).keys.map((k) => k.kid);
  assert.deepEqual(served, [kid, before]);
  const { idToken, nonce } = await codeFlow();
  assert.equal(jose.decodeProtectedHeader(idToken).kid, kid);
  await verify(idToken, nonce);
  // Only the new key: tokens signed with the old one can no longer be checked.
  await op.rotateKeys({ keepOld: false });
  assert.equal((await (await fetch(`${op.issuer}/jwks`)).json()).keys.length, 1);
});

test('a disabled account is refused with access_denied, and can sign in again once enabled', async () => {
  op.disable('alice');
  try {
    const refused = await codeFlow();
    assert.equal(refused.error, 'access_denied');
    assert.match(refused.description, /disabled/);
  } finally {
    op.enable('alice');
  }
  const { idToken, nonce } = await codeFlow();
  await verify(idToken, nonce);
});

test('a stopped provider cannot be reached; restarted, it answers on the same port', async () => {
  await op.stop();
  await assert.rejects(fetch(`${op.issuer}/.well-known/openid-configuration`));
  await op.restart();
  const r = await fetch(`${op.issuer}/.well-known/openid-configuration`);
  assert.equal(r.status, 200);
});

/** Starts a device authorization; returns the provider's answer. */
async function deviceStart() {
  const r = await fetch(`${op.issuer}/device/auth`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ scope: 'openid email profile' }),
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

async function devicePoll(deviceCode) {
  const r = await fetch(`${op.issuer}/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: DEVICE_GRANT, device_code: deviceCode }),
  });
  return { status: r.status, body: await r.json() };
}

/** At the verification page: enter the code, then confirm (or cancel). */
async function deviceEnter(jar, start, { cancel = false } = {}) {
  let r = await go(jar, start.verification_uri);
  assert.equal(r.status, 200);
  assert.match(r.text, /<label for="user-code">Code<\/label>/);
  const xsrf = r.text.match(/name="xsrf" value="([^"]+)"/)[1];
  r = await go(jar, start.verification_uri, { method: 'POST', form: { xsrf, user_code: start.user_code } });
  assert.match(r.text, /Confirm the device/);
  const form = { xsrf: r.text.match(/name="xsrf" value="([^"]+)"/)[1], user_code: start.user_code, confirm: 'yes' };
  if (cancel) form.abort = 'yes';
  return go(jar, start.verification_uri, { method: 'POST', form });
}

test('the device flow: code entered, signed in, confirmed; a cancelled one is access_denied', async () => {
  const start = await deviceStart();
  assert.match(start.user_code, /^[A-Z]{4}-[A-Z]{4}$/);
  assert.ok(start.verification_uri_complete.includes(encodeURIComponent(start.user_code)) || start.verification_uri_complete.includes(start.user_code));
  assert.equal((await devicePoll(start.device_code)).body.error, 'authorization_pending');

  const jar = new Jar();
  let r = await deviceEnter(jar, start);
  assert.equal(r.status, 303, r.text);
  const interaction = r.location;
  r = await go(jar, `${interaction}/login`, { method: 'POST', form: { username: 'alice', password: 'pw-alice', otp: '123456' } });
  for (let i = 0; i < 5 && r.status === 303; i++) r = await go(jar, r.location);
  assert.match(r.text, /Device connected/);
  const done = await devicePoll(start.device_code);
  assert.equal(done.status, 200, JSON.stringify(done.body));
  const claims = jose.decodeJwt(done.body.id_token);
  assert.equal(claims.email, 'alice@hmpps.example');
  assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);

  const refused = await deviceStart();
  r = await deviceEnter(new Jar(), refused, { cancel: true });
  assert.match(r.text, /The sign-in was cancelled/);
  assert.equal((await devicePoll(refused.device_code)).body.error, 'access_denied');
});

test("the provider's own pages pass axe-core: sign-in, a wrong password, the device code, confirm, done", async (t) => {
  const person = await Person.open(browser, null, 'provider-pages', op.issuer);
  t.after(() => person.finish());
  const { page } = person;
  const start = await deviceStart();
  await person.goto('/device');
  await page.getByLabel('Code', { exact: true }).fill('WRONG-CODE');
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Continue', exact: true }).click()]);
  await person.check('a wrong code');
  await page.locator('#device-error').waitFor();
  await page.getByLabel('Code', { exact: true }).fill(start.user_code);
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Continue', exact: true }).click()]);
  await person.check('the confirmation');
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith('/interaction/')),
    page.getByRole('button', { name: 'Continue', exact: true }).click(),
  ]);
  await person.check('the sign-in page');
  await page.getByLabel('Username', { exact: true }).fill('alice');
  await page.getByLabel('Password', { exact: true }).fill('not-it');
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
  await person.check('a wrong password');
  await page.locator('#login-error').waitFor();
  await page.getByLabel('Password', { exact: true }).fill('pw-alice');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#device-done').waitFor();
  await person.check('done');
  assert.equal((await devicePoll(start.device_code)).status, 200);
});
