// An upload from the send page that is interrupted mid-way, by a dropped connection or by a
// reload of the page: it continues from what the gateway holds, not from the start, and the
// bundle arrives whole.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { WORK_TIMEOUT_MS, sleep, until, useSuite } from '../harness.mjs';
import { fillSendPage, makeFiles, readSendResult, shownErrors } from '../flows.mjs';

const suite = useSuite({ relay: true });

/** Upload speed until the interruption: slow enough that it lands mid-upload. */
const THROTTLE = 4 << 20;

/**
 * Signs bob in, fills the send page with a 16 MiB file and a small one, presses `Send` on a slow
 * connection and returns once the upload has been under way for a while, with a log of the tus
 * requests (`interrupted()` marks the ones after the interruption).
 */
async function startSlowSend(t, name) {
  const { cast, dir } = suite;
  const files = makeFiles(dir, { [`${name}.bin`]: 16 << 20, [`${name}.txt`]: `${name}\n` });
  const bob = await suite.person(t, 'bob');
  await bob.signIn(cast.bob.token);
  await fillSendPage(bob, { to: 'hmpps/alice', files });
  const requests = [];
  let after = false;
  bob.page.on('request', (r) => {
    if (r.url().includes('/api/v1/uploads')) {
      requests.push({ method: r.method(), offset: Number(r.headers()['upload-offset'] ?? -1), after });
    }
  });
  const cdp = await bob.context.newCDPSession(bob.page);
  const throttle = (up) =>
    cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: up });
  await throttle(THROTTLE);
  const started = (await suite.gw.audit()).filter((e) => e.event === 'upload.started').length;
  await bob.page.getByRole('button', { name: 'Send', exact: true }).click();
  await bob.page.waitForRequest((r) => r.method() === 'PATCH' && r.url().includes('/api/v1/uploads/'), {
    timeout: WORK_TIMEOUT_MS,
  });
  await sleep(1_500);
  return {
    bob,
    files,
    requests,
    started,
    interrupted: () => (after = true),
    fullSpeed: () => throttle(-1),
  };
}

/** The upload was created once, continued from a later offset, and the bundle arrives whole. */
async function assertResumed({ files, requests, started }, sent) {
  const { gw, cast, dir } = suite;
  const creations = requests.filter((r) => r.method === 'POST');
  assert.equal(creations.length, 1, `the upload was created ${creations.length} times: it started over`);
  const resumed = requests.filter((r) => r.method === 'PATCH' && r.after && r.offset > 0);
  assert.ok(resumed.length >= 1, `no PATCH continued from a later offset: ${JSON.stringify(requests)}`);

  const events = (await gw.audit()).filter((e) => e.event === 'upload.started').slice(started);
  assert.deepEqual(events.map((e) => e.transfer), [sent.id], 'one upload, the one that became the transfer');
  const head = await gw.api('HEAD', `/api/v1/uploads/${sent.id}`, { token: cast.bob.token, headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('upload-offset'), head.headers.get('upload-length'), 'the upload is not complete');

  const out = join(dir, `received-${sent.id}`);
  mkdirSync(out);
  await gw.fetchInto(cast.alice.token, sent.links[0].url, cast.alice.identity, out);
  for (const f of files) assert.ok(readFileSync(join(out, f.name)).equals(f.bytes), `${f.name} arrived changed`);
}

test('an upload whose connection drops mid-way resumes where it stopped and arrives whole', async (t) => {
  const send = await startSlowSend(t, 'dropped');
  const { bob } = send;
  // The network goes: every connection drops, and for a moment nothing gets through.
  send.interrupted();
  await bob.context.setOffline(true);
  suite.relay.cut();
  await sleep(2_000);
  await bob.context.setOffline(false);
  await send.fullSpeed();
  // Back online, the page continues by itself or offers to (saying what went wrong); a person
  // takes the offer.
  const result = bob.page.locator('#send-result');
  const resume = bob.page.getByRole('button', { name: /^Resume/ });
  await until(WORK_TIMEOUT_MS, async () => (await result.isVisible()) || (await resume.isVisible()), 'neither a result nor a way to resume');
  let earlier = [];
  if (!(await result.isVisible())) {
    await bob.check('the upload interrupted');
    earlier = await shownErrors(bob);
    await resume.click();
  }
  await assertResumed(send, await readSendResult(bob, { earlier }));
});

test('a send page reloaded mid-upload resumes the upload where it stopped', async (t) => {
  const send = await startSlowSend(t, 'reloaded');
  const { bob } = send;
  send.interrupted();
  await bob.page.reload({ waitUntil: 'load' });
  await send.fullSpeed();
  await bob.check('the send page reloaded mid-upload');
  await assertResumed(send, await readSendResult(bob));
});
