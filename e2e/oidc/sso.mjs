// Single sign-on suites and flows: a gateway configured with the test OpenID provider
// (./provider.mjs) and what a person does to sign in through it.

import assert from 'node:assert/strict';

import { axeViolations, describeViolations, freePort, sleep, until, useSuite, WORK_TIMEOUT_MS } from '../harness.mjs';
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
 * `…_CLIENT_SECRET`, `…_NAME` and `SEALPOST_PUBLIC_URL`; `via: 'config'` with the config file
 * alone: `public_url`, top-level `config` keys (e.g. `session_lifetime`) and an `[[oidc]]` table
 * made of `oidc` (`{ users, org, roles… }`).
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
      const env = {};
      let text = config ? `${config.trim()}\n` : '';
      if (via === 'env') {
        Object.assign(env, {
          SEALPOST_PUBLIC_URL: publicUrl,
          SEALPOST_OIDC_ISSUER: s.op.issuer,
          SEALPOST_OIDC_CLIENT_ID: s.client.client_id,
          SEALPOST_OIDC_CLIENT_SECRET: s.client.client_secret,
          SEALPOST_OIDC_NAME: name,
        });
      } else {
        // All in the file, the public URL too (top-level keys come before the tables).
        text = `public_url = ${toml(publicUrl)}\n${text}`;
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
 * Reads the gateway's answers to requests matching `urlPattern` as they pass, unchanged
 * (DevTools' Fetch domain at the response stage: it sees the hop a provider's redirect leads to,
 * and a page the browser leaves at once, which page.route does not). Detach `cdp` when done.
 */
async function captureAnswers(person, urlPattern) {
  const answers = [];
  const cdp = await person.context.newCDPSession(person.page);
  cdp.on('Fetch.requestPaused', async (e) => {
    try {
      const { body, base64Encoded } = await cdp.send('Fetch.getResponseBody', { requestId: e.requestId });
      const headers = Object.fromEntries((e.responseHeaders ?? []).map((h) => [h.name.toLowerCase(), h.value]));
      answers.push({ url: e.request.url, status: e.responseStatusCode, headers, body: Buffer.from(body, base64Encoded ? 'base64' : 'utf8') });
    } catch {
      // A redirect has no body to read.
    } finally {
      await cdp.send('Fetch.continueResponse', { requestId: e.requestId }).catch(() => {});
    }
  });
  await cdp.send('Fetch.enable', { patterns: [{ urlPattern, requestStage: 'Response' }] });
  return { answers, cdp };
}

/**
 * From `/sign-in`, presses `Sign in with NAME` and waits for the provider's sign-in page
 * (checked with axe-core like every page). The gateway answers the button with a page that moves
 * on to the provider by itself (a form's redirect to another origin would break the pages' CSP
 * `form-action 'self'`): that page is read as it passes and checked too.
 */
export async function toProvider(person, op, { button = /^Sign in with / } = {}) {
  const { page } = person;
  await person.goto('/sign-in');
  const gateway = new URL(person.base).origin;
  const { answers, cdp } = await captureAnswers(person, `${gateway}/sign-in/sso*`);
  try {
    await Promise.all([
      page.waitForURL((u) => u.origin === op.issuer && u.pathname.startsWith('/interaction/')),
      page.getByRole('button', { name: button }).click(),
    ]);
  } catch (e) {
    // Say why the browser did not get there (a page's CSP refusing the navigation, for one: the
    // console reports it a moment later).
    await sleep(500);
    const why = person.problems.length ? `\n${person.problems.join('\n')}` : '';
    throw new Error(`the browser did not reach the provider's sign-in page (it is at ${page.url()}): ${e.message}${why}`);
  } finally {
    await cdp.detach().catch(() => {});
  }
  await person.check("the provider's sign-in page");
  const passed = answers.find((a) => a.status === 200);
  assert.ok(passed, 'the sign-in button did not answer with a page that moves on to the provider');
  await checkPassedPage(person, passed);
}

/**
 * At the provider's sign-in page: fills `Username`, `Password` and (when given) `One-time code`,
 * presses the provider's `Sign in` (or `Cancel` with `cancel`), and follows the browser back to
 * the gateway. Resolves with the path it ends on: a role's first page, or `/sign-in` when the
 * sign-in was refused (the sign-in page with an error, which the gateway shows at `/sign-in/…`).
 *
 * Every gateway page it reaches is checked with axe-core, also a "Signed in" page that moves on
 * by itself: its answer is read on the way to the browser (unchanged) and checked again in a
 * second page of the same browser, at the same address, without the instruction to move on (a
 * page cannot be checked while the browser leaves it).
 */
export async function atProvider(person, op, { username, password, otp, cancel = false }) {
  const { page } = person;
  const gateway = new URL(person.base).origin;
  // The gateway's answers at /sign-in/callback, read as they pass.
  const { answers, cdp } = await captureAnswers(person, `${gateway}/sign-in/callback*`);
  try {
    if (cancel) {
      await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    } else {
      await page.getByLabel('Username', { exact: true }).fill(username);
      await page.getByLabel('Password', { exact: true }).fill(password);
      if (otp) await page.getByLabel('One-time code', { exact: true }).fill(otp);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    }
    // Until it stops: on a page behind sign-in, or on the sign-in page with an error.
    await until(
      WORK_TIMEOUT_MS,
      async () => {
        const u = new URL(page.url());
        if (u.origin !== gateway) return false;
        if (!u.pathname.startsWith('/sign-in')) return true;
        return (await shownErrors(person).catch(() => [])).length > 0;
      },
      `the browser did not settle back at the gateway (it is at ${page.url()})`,
    );
    await page.waitForLoadState('load');
    const end = new URL(page.url()).pathname;
    await person.check(`after the provider (${end})`);
    const passed = answers.find((a) => a.status === 200);
    if (passed && !end.startsWith('/sign-in/callback')) await checkPassedPage(person, passed);
    return end.startsWith('/sign-in') ? '/sign-in' : end;
  } finally {
    await cdp.detach().catch(() => {});
  }
}

/**
 * Checks a page the browser showed and left by itself (`answer`: its URL, headers and body):
 * it moves on at once (a refresh of 0 seconds) and also offers a link, and axe-core passes it,
 * loaded again from the same body at the same address without the refresh.
 */
async function checkPassedPage(person, answer) {
  const html = answer.body.toString('utf8');
  const refresh = html.match(/<meta\s+http-equiv="refresh"\s+content="(\d+)\s*;\s*url=([^"]+)"/i);
  assert.ok(refresh, `${answer.url} moved on without a meta refresh:\n${html}`);
  assert.equal(refresh[1], '0', 'the page waits before it moves on');
  const preview = await person.context.newPage();
  try {
    const still = html.replace(refresh[0], '');
    await preview.route(answer.url, (route) =>
      route.fulfill({
        status: 200,
        headers: Object.fromEntries(Object.entries(answer.headers).filter(([k]) => k.toLowerCase() !== 'set-cookie')),
        body: still,
      }),
    );
    await preview.goto(answer.url, { waitUntil: 'load' });
    const link = preview.getByRole('link', { name: 'Continue', exact: true });
    // The refresh's URL is as written in the HTML (entities and all); the link's as the browser read it.
    const named = { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>' };
    const target = refresh[2].replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, e) => {
      if (e[0] !== '#') return named[e.toLowerCase()] ?? whole;
      return String.fromCodePoint(e[1].toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    });
    assert.equal(await link.getAttribute('href'), target, 'no Continue link to where the page moves on');
    const violations = await axeViolations(preview);
    assert.deepEqual(violations.map((v) => v.id), [], `axe-core found accessibility violations on ${answer.url}:\n${describeViolations(violations)}`);
    person.checked.add(new URL(answer.url).pathname);
  } finally {
    await preview.close();
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
