// The relay that the dropped-upload test stands on, against the gateway's tus endpoint as it is:
// an upload from Chromium cut off mid-way keeps what arrived, and continues from there.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ageEncrypt, sleep, until, useSuite, within } from '../harness.mjs';

const suite = useSuite({ relay: true });

test('an upload from Chromium cut off at the relay keeps what arrived and continues from there', async (t) => {
  const { gw, cast, dir, relay } = suite;
  const plain = join(dir, 'big.bin');
  writeFileSync(plain, randomBytes(12 << 20));
  const sealed = join(dir, 'big.age');
  await ageEncrypt([cast.alice.recipient], plain, sealed);
  const size = readFileSync(sealed).length;

  // A plain page of the gateway's origin, with the file chosen as a person would.
  const bob = await suite.person(t, 'bob');
  await bob.page.goto(bob.url('/healthz'));
  bob.checked.add('/healthz'); // JSON, not a page: nothing for axe-core to read
  await bob.page.evaluate(() => {
    const input = document.createElement('input');
    input.type = 'file';
    input.id = 'file';
    document.body.append(input);
  });
  await bob.page.setInputFiles('#file', sealed);
  const tus = (method, url, headers, withBody) =>
    bob.page.evaluate(
      ([method, url, headers, token, withBody]) =>
        new Promise((resolve) => {
          const x = new XMLHttpRequest();
          x.open(method, url);
          x.setRequestHeader('Authorization', `Bearer ${token}`);
          x.setRequestHeader('Tus-Resumable', '1.0.0');
          for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
          x.onload = () => resolve({ status: x.status, location: x.getResponseHeader('Location'), offset: x.getResponseHeader('Upload-Offset') });
          x.onerror = () => resolve({ status: 0 });
          const file = document.getElementById('file').files[0];
          x.send(withBody ? file.slice(Number(headers['Upload-Offset'])) : null);
        }),
      [method, url, headers, cast.bob.token, withBody],
    );

  const created = await tus('POST', '/api/v1/uploads', { 'Upload-Length': String(size), 'Upload-Metadata': `to ${Buffer.from('hmpps/alice').toString('base64')}` });
  assert.equal(created.status, 201);
  // Slow the link down so that the cut lands mid-way.
  const cdp = await bob.context.newCDPSession(bob.page);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 << 20 });
  const patch = tus('PATCH', created.location, { 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, true);
  await sleep(1_000);
  relay.cut();
  // Chromium may retry a request cut on a reused connection by itself; the gateway then answers
  // 423 (the first request still holds the upload) or 409 (the offset moved on).
  const cut = await within(10_000, patch, 'the cut PATCH did not end');
  assert.ok([0, 409, 423].includes(cut.status), `the PATCH was not cut: ${cut.status}`);
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });

  // The gateway makes the bytes of a broken request durable once it notices the break.
  const held = await until(10_000, async () => {
    const h = await tus('HEAD', created.location, {}, false);
    return h.status === 200 && Number(h.offset) > 0 && h;
  }, 'the gateway holds none of the upload after the cut');
  const offset = Number(held.offset);
  assert.ok(offset > 0 && offset < size, `the gateway holds ${offset} of ${size} bytes`);
  const rest = await tus('PATCH', created.location, { 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, true);
  assert.equal(rest.status, 204);

  const id = created.location.split('/').pop();
  const started = (await gw.audit()).filter((e) => e.event === 'upload.started');
  assert.equal(started.length, 1, 'one upload, not two');
  const answer = await gw.api('GET', `/api/v1/uploads/${id}`, { token: cast.bob.token, headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const out = join(dir, 'big.out');
  await gw.cli(['fetch', answer.body.links[0].url, '-i', cast.alice.identity, '-o', out, '-q'], { token: cast.alice.token });
  assert.ok(readFileSync(out).equals(readFileSync(plain)), 'the file arrived changed');
});
