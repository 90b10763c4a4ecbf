// A dropped connection in the middle of an upload from the send page: the upload continues from
// what the gateway holds, not from the start, and the bundle arrives whole.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { sleep, useSuite } from '../harness.mjs';
import { fillSendPage, makeFiles, readSendResult } from '../flows.mjs';

const suite = useSuite({ relay: true });

/** Upload speed while the connection drops: slow enough that the drop lands mid-upload. */
const THROTTLE = 4 << 20;

test('an upload whose connection drops mid-way resumes where it stopped and arrives whole', async (t) => {
  const { gw, cast, dir, relay } = suite;
  const files = makeFiles(dir, { 'large-export.bin': 16 << 20, 'readme.txt': 'resumed\n' });

  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  await fillSendPage(bob, { to: 'hmpps/alice', files });

  const uploads = [];
  let dropped = false;
  bob.page.on('request', (r) => {
    if (r.url().includes('/api/v1/uploads')) {
      uploads.push({ method: r.method(), offset: Number(r.headers()['upload-offset'] ?? -1), afterDrop: dropped });
    }
  });
  const cdp = await bob.context.newCDPSession(bob.page);
  const throttle = (up) => cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: up });
  await throttle(THROTTLE);

  await bob.page.getByRole('button', { name: 'Send', exact: true }).click();
  await bob.page.waitForRequest((r) => r.method() === 'PATCH' && r.url().includes('/api/v1/uploads/'), { timeout: 60_000 });
  await sleep(1_500);
  // The network goes: every connection drops, and for a moment nothing gets through.
  dropped = true;
  await bob.context.setOffline(true);
  relay.cut();
  await sleep(2_000);
  await bob.context.setOffline(false);
  await throttle(-1);

  const sent = await readSendResult(bob);
  const creations = uploads.filter((u) => u.method === 'POST');
  assert.equal(creations.length, 1, `the upload was created ${creations.length} times: started over`);
  const resumed = uploads.filter((u) => u.method === 'PATCH' && u.afterDrop && u.offset > 0);
  assert.ok(resumed.length >= 1, `no PATCH continued from a later offset: ${JSON.stringify(uploads)}`);

  const started = (await gw.audit()).filter((e) => e.event === 'upload.started');
  assert.deepEqual(started.map((e) => e.transfer), [sent.id], 'one upload, the one that became the transfer');
  const head = await gw.api('HEAD', `/api/v1/uploads/${sent.id}`, { token: cast.bob.token, headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('upload-offset'), head.headers.get('upload-length'), 'the upload is not complete');

  const out = join(dir, 'received');
  mkdirSync(out);
  await gw.fetchInto(cast.alice.token, sent.links[0].url, cast.alice.identity, out);
  for (const f of files) assert.ok(readFileSync(join(out, f.name)).equals(f.bytes), `${f.name} arrived changed`);
});
