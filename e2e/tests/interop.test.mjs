// Interoperability both ways: what the browser sends opens with tools nobody here wrote (the Go
// `age` CLI, GNU tar) and with `sealpost fetch`; what `sealpost send` and `age` + `curl` send
// opens in the browser.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ageDecrypt, run, tarList, useSuite } from '../harness.mjs';
import { assertSameFiles, collect, makeFiles, openFromInbox, sendFromBrowser } from '../flows.mjs';

const suite = useSuite();

test('a bundle sent from the browser decrypts with age into a tar, and opens with sealpost fetch', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, { 'browser-one.bin': 200_000, 'browser-two.txt': 'from the browser\n' });
  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  const sent = await sendFromBrowser(bob, { to: ['hmpps/alice', 'hmpps/carol'], files });
  const link = (who) => sent.links.find((l) => l.recipient === who)?.url;
  assert.ok(link('hmpps/alice') && link('hmpps/carol'), `links: ${JSON.stringify(sent.links)}`);

  // Alice: the raw ciphertext, the Go age CLI, GNU tar.
  const work = join(dir, 'age-tar');
  mkdirSync(work);
  const sealed = join(work, 'bundle.age');
  writeFileSync(sealed, await gw.redeem(cast.alice.token, link('hmpps/alice')));
  const tar = join(work, 'bundle.tar');
  await ageDecrypt(cast.alice.identity, sealed, tar);
  const names = await tarList(tar);
  for (const name of ['.sealpost-bundle-v1', 'browser-one.bin', 'browser-two.txt', '.sealpost-manifest']) {
    assert.ok(names.includes(name), `the tar lacks ${name}: ${names.join(', ')}`);
  }
  await run('tar', ['-xf', tar, '-C', work], { env: process.env });
  for (const f of files) assert.ok(readFileSync(join(work, f.name)).equals(f.bytes), `${f.name} changed (age + tar)`);

  // Carol: sealpost fetch, which checks digests, the log and the manifest.
  const out = join(dir, 'fetched');
  await gw.fetchInto(cast.carol.token, link('hmpps/carol'), cast.carol.identity, out);
  for (const f of files) assert.ok(readFileSync(join(out, f.name)).equals(f.bytes), `${f.name} changed (sealpost fetch)`);
});

test('a bundle sent with sealpost send opens in the browser', async (t) => {
  const { gw, cast, dir } = suite;
  const files = makeFiles(dir, { 'cli-one.csv': 'a,b\n1,2\n', 'cli-two.bin': 150_000 });
  const sent = await gw.send(cast.bob.token, files.map((f) => f.path), { to: 'hmpps/alice' });

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await openFromInbox(alice, sent.id);
  assertSameFiles(await collect(alice, cast.alice.identity, 2), files);
});

test('a file encrypted with age and uploaded with curl opens in the browser', async (t) => {
  const { gw, cast, dir } = suite;
  const [file] = makeFiles(dir, { 'records.csv': 'id,name\n1,Example Person\n' });
  const url = `${gw.url}/api/v1/transfers?to=hmpps/alice&expires=72h`;
  const { stdout } = await run(
    'bash',
    ['-c', 'set -o pipefail; age -r "$R" "$F" | curl -sS --fail-with-body -X POST -T - -H "Authorization: Bearer $T" "$U"'],
    { env: { PATH: process.env.PATH, R: cast.alice.recipient, F: file.path, T: cast.bob.token, U: url } },
  );
  const answer = JSON.parse(stdout);

  const alice = await suite.person(t, 'alice');
  await alice.signIn(cast.alice.token);
  await openFromInbox(alice, answer.id);
  const [download, ...more] = await collect(alice, cast.alice.identity, 1);
  assert.equal(more.length, 0);
  // A plain age file carries no name: only its contents must match.
  assert.ok(download.bytes.equals(file.bytes), `the plaintext changed: ${download.bytes.length} bytes`);
});
