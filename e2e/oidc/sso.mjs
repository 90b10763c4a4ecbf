// Single sign-on suites and flows: a gateway configured with the test OpenID provider
// (./provider.mjs) and what a person does to sign in through it.

import assert from 'node:assert/strict';

import { freePort, until, useSuite, WORK_TIMEOUT_MS } from '../harness.mjs';
import { shownErrors } from '../flows.mjs';
import { gatewayClient, startProvider } from './provider.mjs';

/** The session cookie of the pages. */
export const SESSION_COOKIE = '__Host-sealpost-session';

/** Quotes a TOML string. */
export const toml = (value) => JSON.stringify(String(value));

/**
 * The `[[oidc]]` table of one provider: `provider` is `{ id, name, issuer, client_id,
 * client_secret, users, org, name_claim, mfa_amr, mfa_acr, scopes, roles: [{ claim, value,
 * role, org }] }` (the keys left out stay out).
 */
export function oidcTable(provider) {
  const lines = ['[[oidc]]'];
  for (const key of ['id', 'name', 'issuer', 'client_id', 'client_secret', 'users', 'org', 'name_claim']) {
    if (provider[key] !== undefined) lines.push(`${key} = ${toml(provider[key])}`);
  }
  for (const key of ['scopes', 'mfa_amr', 'mfa_acr']) {
    if (provider[key] !== undefined) lines.push(`${key} = [${provider[key].map(toml).join(', ')}]`);
  }
  for (const rule of provider.roles ?? []) {
    lines.push('[[oidc.roles]]');
    for (const key of ['claim', 'value', 'role', 'org']) {
      if (rule[key] !== undefined) lines.push(`${key} = ${toml(rule[key])}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/**
 * A suite (see `useSuite`) whose gateway signs people in through a real test provider
 * (`suite.op`, started first on a free port with `accounts`), on a port picked beforehand so that
 * the provider knows the redirect URI `PUBLIC_URL/sign-in/callback`.
 *
 * `via: 'env'` (default) configures it with `SEALPOST_OIDC_ISSUER`, `…_CLIENT_ID`,
 * `…_CLIENT_SECRET` and `…_NAME`; `via: 'config'` with an `[[oidc]]` table made of `oidc`
 * (`{ users, org, roles… }`) and top-level `config` keys (e.g. `session_lifetime`).
 */
export function useSsoSuite({ accounts = [], name = 'Test ID', via = 'env', oidc = {}, config = '', ...options } = {}) {
  const suite = useSuite({
    ...options,
    prepare: async (s) => {
      const port = await freePort();
      const publicUrl = `http://127.0.0.1:${port}`;
      s.client = gatewayClient(publicUrl);
      s.op = await startProvider({ clients: [s.client], accounts });
      s.cleanups.push(() => s.op.close());
      s.providerName = name;
      const env = { SEALPOST_PUBLIC_URL: publicUrl };
      let text = config ? `${config.trim()}\n` : '';
      if (via === 'env') {
        Object.assign(env, {
          SEALPOST_OIDC_ISSUER: s.op.issuer,
          SEALPOST_OIDC_CLIENT_ID: s.client.client_id,
          SEALPOST_OIDC_CLIENT_SECRET: s.client.client_secret,
          SEALPOST_OIDC_NAME: name,
        });
      } else {
        text += oidcTable({
          id: 'sso',
          name,
          issuer: s.op.issuer,
          client_id: s.client.client_id,
          client_secret: s.client.client_secret,
          ...oidc,
        });
      }
      return { port, env, config: text || undefined };
    },
  });
  return suite;
}

/** Whether the person's browser holds a gateway session cookie. */
export async function hasSession(person) {
  return (await person.context.cookies()).some((c) => c.name === SESSION_COOKIE);
}

/**
 * From `/sign-in`, presses `Sign in with NAME` and waits for the provider's sign-in page
 * (checked with axe-core like every page).
 */
export async function toProvider(person, op, { button = /^Sign in with / } = {}) {
  const { page } = person;
  await person.goto('/sign-in');
  await Promise.all([
    page.waitForURL((u) => u.origin === op.issuer && u.pathname.startsWith('/interaction/')),
    page.getByRole('button', { name: button }).click(),
  ]);
  await person.check("the provider's sign-in page");
}

/**
 * At the provider's sign-in page: fills `Username`, `Password` and (when given) `One-time code`,
 * presses the provider's `Sign in` (or `Cancel` with `cancel`), and follows the browser back to
 * the gateway. Every gateway page it reaches is checked with axe-core, also a "Signed in" page
 * that continues by itself (the browser's next navigation waits until it is checked). Resolves
 * with the path it ends on: a role's first page, or `/sign-in` when the sign-in was refused (the
 * sign-in page with an error, shown at `/sign-in/…`).
 */
export async function atProvider(person, op, { username, password, otp, cancel = false }) {
  const { page } = person;
  const gateway = new URL(person.base).origin;
  let landed = null;
  let release;
  const released = new Promise((r) => {
    release = r;
  });
  const onNavigated = (frame) => {
    if (frame === page.mainFrame() && new URL(frame.url()).origin === gateway && !landed) landed = frame.url();
  };
  page.on('framenavigated', onNavigated);
  const hold = async (route, request) => {
    if (landed && request.isNavigationRequest() && request.frame() === page.mainFrame()) await released;
    await route.continue().catch(() => {});
  };
  await page.route((u) => u.origin === gateway, hold);
  try {
    if (cancel) {
      await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    } else {
      await page.getByLabel('Username', { exact: true }).fill(username);
      await page.getByLabel('Password', { exact: true }).fill(password);
      if (otp) await page.getByLabel('One-time code', { exact: true }).fill(otp);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    }
    await until(WORK_TIMEOUT_MS, () => landed, 'the browser did not come back to the gateway');
    const first = new URL(landed).pathname;
    await person.check(`the first gateway page after the provider (${first})`);
    release();
    // Then wherever it goes by itself: a page behind sign-in, or it stays on the sign-in page
    // (which the gateway shows at /sign-in/callback) with an error.
    await until(
      WORK_TIMEOUT_MS,
      async () => {
        const u = new URL(page.url());
        if (u.origin !== gateway) return false;
        if (!u.pathname.startsWith('/sign-in')) return true;
        return (await shownErrors(person).catch(() => [])).length > 0;
      },
      `the browser stayed on ${page.url()}`,
    );
    await page.waitForLoadState('load');
    const end = new URL(page.url()).pathname;
    if (page.url() !== landed) await person.check(`after signing in through the provider (${end})`);
    return end.startsWith('/sign-in') ? '/sign-in' : end;
  } finally {
    release();
    page.off('framenavigated', onNavigated);
    await page.unroute((u) => u.origin === gateway, hold).catch(() => {});
  }
}

/** Signs in through the provider and expects to land on a page behind sign-in. */
export async function ssoSignIn(person, op, credentials, { button } = {}) {
  await toProvider(person, op, { button });
  const end = await atProvider(person, op, credentials);
  if (end === '/sign-in') {
    assert.fail(`the sign-in through the provider was refused: ${(await shownErrors(person)).join(' | ')}`);
  }
  await person.page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();
  return end;
}

/**
 * Tries to sign in through the provider and expects to be refused: back on `/sign-in` with an
 * error summary (returned, its words) and no session.
 */
export async function ssoRefused(person, op, credentials) {
  const end = await atProvider(person, op, credentials);
  assert.equal(end, '/sign-in', 'a refused sign-in did not end on the sign-in page');
  await person.page.getByRole('button', { name: /^Sign in with / }).first().waitFor();
  const errors = await shownErrors(person);
  assert.ok(errors.length >= 1, 'the sign-in page shows no error summary after a refused sign-in');
  assert.equal(await hasSession(person), false, 'a refused sign-in started a session');
  return errors.join(' | ');
}

/** The `session.refused` and `session.started` entries of method `oidc` after `since` (a count). */
export async function ssoEvents(gw, since = 0) {
  const all = await gw.audit();
  return all.slice(since).filter((e) => ['session.started', 'session.refused'].includes(e.event));
}

/**
 * Adds user `ref` with `role` and `email` (`sealpost admin user add --email`); returns
 * `{ ref, token }`, and for recipients (`dir` given) an identity file and its registered key.
 */
export async function userWithEmail(gw, ref, role, email, dir) {
  const { stdout } = await gw.cli(['admin', 'user', 'add', ref, '--role', role, '--email', email]);
  const token = stdout.trim();
  assert.match(token, /^sp_[A-Za-z0-9_-]+$/, `\`admin user add --email\` printed no token: ${stdout}`);
  const user = { ref, token, email };
  if (dir) {
    user.identity = `${dir}/${ref.replace('/', '-')}.key`;
    user.recipient = await gw.keygen(user.identity);
    await gw.addKey(token, user.recipient);
  }
  return user;
}

/** The facts of an audit entry, from its canonical text (`sealpost.audit/v1`, then one `key value`
 * line each). */
export function fieldsOf(entry) {
  const fields = {};
  for (const line of entry.entry.split('\n').slice(1)) {
    const i = line.indexOf(' ');
    if (i > 0) fields[line.slice(0, i)] = line.slice(i + 1);
  }
  return fields;
}
