// Single sign-on for the CLI: `sealpost login --sso` and the device authorization grant
// (RFC 8628) through the gateway, the person confirming in Chromium at the real test provider.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';

import { run, tempDir, within } from '../harness.mjs';
import { fieldsOf, useSsoSuite, userWithEmail } from '../oidc/sso.mjs';

const suite = useSsoSuite({
  name: 'Test ID',
  accounts: [{ id: 'erin', password: 'erin-pw', email: 'erin@hmpps.example', otp: '135790' }],
});

/** How long `sealpost login --sso` may take from start to end. */
const LOGIN_TIMEOUT_MS = 90_000;

/**
 * Starts `sealpost login --sso --url GW` with its own config file in `home`; resolves once it has
 * printed the code and the addresses, with `{ code, uri, complete, done }`, `done` resolving
 * with `{ code, stdout, stderr }` when it exits.
 */
async function startLogin(gw, home) {
  const env = { PATH: process.env.PATH, HOME: home, LANG: 'C.UTF-8', TZ: 'UTC', SEALPOST_CONFIG_FILE: join(home, 'config.toml') };
  const child = spawn(gw.bin, ['login', '--sso', '--url', gw.url], { env, cwd: home, stdio: ['ignore', 'pipe', 'pipe'] });
  const killer = setTimeout(() => child.kill('SIGKILL'), LOGIN_TIMEOUT_MS);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  const done = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  const lines = [];
  const prompt = new Promise((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderr += `${line}\n`;
      lines.push(line);
      // The code line, then the address on a line of its own (set off by blank lines and an
      // indent), then `(or open ADDRESS)`, then a line saying it waits.
      const at = lines.findIndex((l) => /^Open this address in a browser and enter the code [A-Z0-9]{4}-[A-Z0-9]{4}:$/.test(l));
      const after = at >= 0 ? lines.slice(at + 1).filter((l) => l.trim()) : [];
      if (after.length >= 3) {
        const code = lines[at].match(/([A-Z0-9]{4}-[A-Z0-9]{4}):$/)[1];
        const complete = after[1].match(/^\(or open (\S+)\)$/)?.[1];
        resolve({ code, uri: after[0].trim(), complete, waiting: after[2] });
      }
    });
    done.then((r) => reject(new Error(`\`sealpost login --sso\` exited (${r.code ?? r.signal}) before printing a code:\n${stderr}${r.stdout}`)));
  });
  const shown = await within(30_000, prompt, `\`sealpost login --sso\` printed no code:\n${stderr}`);
  return { ...shown, done, env };
}

test('sealpost login --sso: the code confirmed at the provider gives the CLI a token for that person', async (t) => {
  const { gw, op } = suite;
  await userWithEmail(gw, 'hmpps/erin', 'recipient', 'erin@hmpps.example');
  const home = tempDir('cli-home');
  t.after(() => home.remove());
  const login = await startLogin(gw, home.dir);
  assert.equal(login.uri, `${op.issuer}/device`, 'the verification address is not the provider\'s');
  assert.ok(login.complete?.startsWith(`${op.issuer}/device?user_code=`), `no complete address: ${login.complete}`);

  // The person types the code at the provider, confirms, signs in with the one-time code.
  const person = await suite.person(t, 'erin-device');
  const { page } = person;
  await page.goto(login.uri);
  await person.check('the device code page');
  await page.getByLabel('Code', { exact: true }).fill(login.code);
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Continue', exact: true }).click()]);
  await person.check('the device confirmation page');
  assert.equal(await page.locator('#confirm-code').innerText(), login.code);
  await Promise.all([
    page.waitForURL((u) => u.pathname.startsWith('/interaction/')),
    page.getByRole('button', { name: 'Continue', exact: true }).click(),
  ]);
  await person.check("the provider's sign-in page");
  await page.getByLabel('Username', { exact: true }).fill('erin');
  await page.getByLabel('Password', { exact: true }).fill('erin-pw');
  await page.getByLabel('One-time code', { exact: true }).fill('135790');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.locator('#device-done').waitFor();
  await person.check('the device flow done');

  const result = await login.done;
  assert.equal(result.code, 0, `login --sso failed:\n${result.stderr}${result.stdout}`);
  assert.match(result.stdout, new RegExp(`^Signed in as hmpps/erin \\(recipient\\) at ${gw.url.replace(/[.]/g, '\\.')}; the token expires at `, 'm'));

  // The profile works like one `sealpost login` saved: whoami names Erin.
  const config = readFileSync(login.env.SEALPOST_CONFIG_FILE, 'utf8');
  assert.ok(config.includes(gw.url), `the profile does not name the gateway:\n${config}`);
  const { stdout } = await run(gw.bin, ['whoami'], { env: login.env, cwd: home.dir });
  assert.match(stdout, /hmpps\/erin/);
  assert.ok(existsSync(join(home.dir, 'default.token')), 'no token file beside the config file');

  // The gateway's token event (spec14 called it token.created; the gateway's is token.issued).
  const created = (await gw.audit()).filter((e) => e.event === 'token.issued' && fieldsOf(e).kind === 'sso');
  assert.equal(created.length, 1, 'no token.issued with kind=sso');
  assert.equal(created[0].subject ?? created[0].actor, 'hmpps/erin');
  assert.equal(op.logins.at(-1).amr.join(' '), 'pwd otp mfa');
});

test('sealpost login --sso: a request cancelled at the provider ends the CLI with a clear message', async (t) => {
  const { gw } = suite;
  const home = tempDir('cli-home-denied');
  t.after(() => home.remove());
  const login = await startLogin(gw, home.dir);

  const person = await suite.person(t, 'erin-cancels');
  const { page } = person;
  // The complete address carries the code: straight to the confirmation.
  await page.goto(login.complete);
  await page.locator('#confirm-code').waitFor();
  await person.check('the device confirmation page');
  await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: 'Cancel', exact: true }).click()]);
  await person.check('after cancelling');

  const result = await login.done;
  assert.notEqual(result.code, 0, 'the CLI succeeded although the request was cancelled');
  assert.match(result.stderr, /denied|cancel/i, `no clear message:\n${result.stderr}`);
  assert.ok(!existsSync(join(home.dir, 'default.token')), 'a token was saved');
});

test('sealpost login --sso with the provider down fails at once, saying it cannot reach it', async (t) => {
  const { gw, op } = suite;
  const home = tempDir('cli-home-down');
  t.after(() => home.remove());
  const env = { PATH: process.env.PATH, HOME: home.dir, LANG: 'C.UTF-8', TZ: 'UTC', SEALPOST_CONFIG_FILE: join(home.dir, 'config.toml') };
  await op.stop();
  try {
    const failed = await run(gw.bin, ['login', '--sso', '--url', gw.url], { env, cwd: home.dir }).then(
      () => assert.fail('login --sso succeeded with the provider down'),
      (e) => e,
    );
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /cannot reach Test ID/i, failed.stderr);
    assert.ok(!existsSync(join(home.dir, 'default.token')), 'a token was saved');
  } finally {
    await op.restart();
  }
});
