// The harness itself, against the gateway as it is: the pieces every browser test stands on
// (a gateway on a free port, accounts from the CLI, Chromium, axe-core) do what they say.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ageDecrypt, axeViolations, describeViolations, tarList, until, useSuite } from '../harness.mjs';

const suite = useSuite();

test('the gateway starts on a free port and the CLI makes organisations, people, keys and routes', async () => {
  const { gw, cast } = suite;
  assert.match(gw.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  for (const [person, role] of [
    [cast.bob, 'sender'],
    [cast.alice, 'recipient'],
    [cast.carol, 'recipient'],
    [cast.olga, 'compliance'],
  ]) {
    const { status, body } = await gw.api('GET', '/api/v1/whoami', { token: person.token });
    assert.equal(status, 200);
    assert.equal(body.user, person.ref);
    assert.equal(body.role, role);
  }
  const keys = await gw.api('GET', '/api/v1/keys/hmpps/alice', { token: cast.bob.token });
  assert.deepEqual(
    keys.body.keys.map((k) => k.recipient),
    [cast.alice.recipient],
  );
  const routes = await gw.api('GET', '/api/v1/routes');
  assert.equal(routes.status, 200);
  assert.ok(JSON.stringify(routes.body).includes('hmpps'), `no route to hmpps: ${JSON.stringify(routes.body)}`);
});

test('a bundle sent with sealpost send opens with sealpost fetch, and with age and tar', async () => {
  const { gw, cast, dir } = suite;
  const work = join(dir, 'cli-round-trip');
  mkdirSync(work);
  const a = join(work, 'records.csv');
  const b = join(work, 'notes.txt');
  writeFileSync(a, 'id,name\n1,Example Person\n');
  writeFileSync(b, 'notes\n');
  const answer = await gw.send(cast.bob.token, [a, b], { to: ['hmpps/alice', 'hmpps/carol'] });
  assert.equal(answer.status, 'available');
  const link = (who) => answer.links.find((l) => l.recipient === who).url;

  const out = join(work, 'alice');
  await gw.fetchInto(cast.alice.token, link('hmpps/alice'), cast.alice.identity, out);
  assert.deepEqual(readFileSync(join(out, 'records.csv')), readFileSync(a));
  assert.deepEqual(readFileSync(join(out, 'notes.txt')), readFileSync(b));

  const sealed = join(work, 'carol.age');
  writeFileSync(sealed, await gw.redeem(cast.carol.token, link('hmpps/carol')));
  const tar = join(work, 'carol.tar');
  await ageDecrypt(cast.carol.identity, sealed, tar);
  const names = await tarList(tar);
  assert.ok(names.includes('records.csv') && names.includes('notes.txt'), `tar lists ${names}`);
});

test('axe-core finds an unlabelled field and passes the same field with a label', async (t) => {
  const person = await suite.person(t, 'checker');
  const page = (body) =>
    `<!doctype html><html lang="en"><head><title>axe check</title></head><body><main><h1>Form</h1>${body}</main></body></html>`;
  await person.page.setContent(page('<input type="text" id="token">'));
  const violations = await axeViolations(person.page);
  assert.ok(
    violations.some((v) => v.id === 'label'),
    `expected a \`label\` violation, got:\n${describeViolations(violations)}`,
  );
  await person.page.setContent(page('<label for="token">API token</label><input type="text" id="token">'));
  await person.check('a labelled field');
  await person.page.getByLabel('API token').fill('found by its label');
});

test('the harness reports a script the page CSP refuses', async (t) => {
  const person = await suite.person(t, 'csp');
  const origin = 'http://csp.invalid';
  await person.page.route(`${origin}/`, (route) =>
    route.fulfill({
      contentType: 'text/html',
      headers: { 'Content-Security-Policy': "default-src 'none'; script-src 'self'" },
      body: '<!doctype html><html lang="en"><head><title>CSP</title></head><body><main><h1>CSP</h1><script>document.title = "ran"</script></main></body></html>',
    }),
  );
  await person.page.goto(`${origin}/`);
  await person.check();
  assert.notEqual(await person.page.title(), 'ran', 'the inline script ran');
  await until(5_000, () => person.problems.length > 0, 'no CSP violation reported');
  assert.match(person.problems[0], /CSP violation on \/: .*Content Security Policy/);
  person.problems.length = 0;
});
