import assert from 'node:assert/strict'
import { test } from 'node:test'
import { uploadMetadata } from '../src/outbox.ts'
import {
  b64url,
  b64urlDecode,
  compareBytes,
  deliveryStatement,
  expirySeconds,
  keyFingerprint,
  manifestV2,
  parseDeliveryStatement,
  parseManifestV2,
  signingKeyBytes,
  signingPublic,
  signText,
  StatementError,
  statementTime,
  verifyText,
} from '../src/statements.ts'
import { b64decode, b64encode } from '../src/tlog.ts'

const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16))

// The shapes of spec13.md, with values a real transfer has.
const TRANSFER = '4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b'
const DIGEST = 'sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'
const ROOT = 'rPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ='

const STATEMENT =
  'sealpost.delivery/v1\n' +
  `transfer ${TRANSFER}\n` +
  `digest ${DIGEST}\n` +
  'recipient hmpps/alice\n' +
  'time 2026-12-06T09:30:00Z\n' +
  `checkpoint 42 ${ROOT}\n`

const MANIFEST =
  'sealpost.manifest/v2\n' +
  'sender acme/bob\n' +
  `digest ${DIGEST}\n` +
  'classification OFFICIAL-SENSITIVE\n' +
  'expires 259200\n' +
  'recipient hmpps/alice\n' +
  'recipient hmpps/carol\n'

test('the delivery statement is the spec text, byte for byte', () => {
  const text = deliveryStatement({
    transfer: TRANSFER,
    digest: DIGEST,
    recipient: 'hmpps/alice',
    // Milliseconds are dropped: the statement has whole seconds.
    time: new Date('2026-12-06T09:30:00.987Z'),
    checkpoint: { size: 42n, root: b64decode(ROOT)! },
  })
  assert.equal(text, STATEMENT)
  assert.ok(text.endsWith('\n') && !text.endsWith('\n\n') && !text.includes('\r'))
  assert.equal(statementTime(new Date('2026-01-02T03:04:05.000Z')), '2026-01-02T03:04:05Z')
})

test('the delivery statement matches the gateway’s own examples byte for byte', () => {
  // The example of `POST /api/v1/transfers/{id}/delivery` in the API contract (src/wire/deliveries.rs).
  const wire =
    'sealpost.delivery/v1\ntransfer 4f9c2a7e0b1d4c3e8a6f5b2d1c0e9a8b\ndigest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nrecipient hmpps/alice\ntime 2025-03-01T10:02:30Z\ncheckpoint 42 rPX2XlzaWZyr/HjW6IeUrJM5DY0ftA8oH8J7o6jWwFQ=\n'
  assert.equal(
    deliveryStatement({
      transfer: TRANSFER,
      digest: DIGEST,
      recipient: 'hmpps/alice',
      time: new Date(Date.UTC(2025, 2, 1, 10, 2, 30)),
      checkpoint: { size: 42n, root: b64decode(ROOT)! },
    }),
    wire,
  )
  // The Rust unit test's example (src/delivery.rs): root 32 bytes of 7.
  const root = new Uint8Array(32).fill(7)
  assert.equal(
    deliveryStatement({
      transfer: '0123456789abcdef0123456789abcdef',
      digest: `sha256:${'ab'.repeat(32)}`,
      recipient: 'hmpps/alice',
      time: new Date(Date.UTC(2026, 11, 6, 9, 30, 0)),
      checkpoint: { size: 42n, root },
    }),
    `sealpost.delivery/v1\ntransfer 0123456789abcdef0123456789abcdef\ndigest sha256:${'ab'.repeat(32)}\n` +
      `recipient hmpps/alice\ntime 2026-12-06T09:30:00Z\ncheckpoint 42 ${b64encode(root)}\n`,
  )
  assert.equal(b64encode(root), 'BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=')
})

test('a delivery statement is read back only in its canonical form', () => {
  const d = parseDeliveryStatement(STATEMENT)
  assert.equal(d.transfer, TRANSFER)
  assert.equal(d.recipient, 'hmpps/alice')
  assert.equal(d.checkpoint.size, 42n)
  assert.equal(b64encode(d.checkpoint.root), ROOT)
  assert.equal(deliveryStatement(d), STATEMENT)
  const broken = [
    STATEMENT.replace(/\n/g, '\r\n'),
    STATEMENT + '\n',
    STATEMENT.slice(0, -1),
    STATEMENT.replace('sealpost.delivery/v1', 'sealpost.delivery/v2'),
    STATEMENT.replace(TRANSFER, TRANSFER.toUpperCase()),
    STATEMENT.replace(DIGEST, DIGEST.replace('sha256:9f', 'sha256:9F')),
    STATEMENT.replace('09:30:00Z', '09:30:00.000Z'),
    STATEMENT.replace('09:30:00Z', '09:30:00+00:00'),
    STATEMENT.replace('checkpoint 42', 'checkpoint 042'),
    STATEMENT.replace(ROOT, ROOT.slice(0, -1)),
    STATEMENT.replace('recipient hmpps/alice', 'recipient  hmpps/alice'),
    STATEMENT.replace('recipient hmpps/alice\ntime', 'time'),
    STATEMENT + 'extra line\n',
  ]
  for (const b of broken) assert.throws(() => parseDeliveryStatement(b), StatementError, JSON.stringify(b))
})

test('a delivery statement refuses values that would break its lines', () => {
  const good = {
    transfer: TRANSFER,
    digest: DIGEST,
    recipient: 'hmpps/alice',
    time: new Date('2026-12-06T09:30:00Z'),
    checkpoint: { size: 42n, root: b64decode(ROOT)! },
  }
  assert.throws(() => deliveryStatement({ ...good, recipient: 'hmpps/alice\ntime x' }), StatementError)
  assert.throws(() => deliveryStatement({ ...good, recipient: 'alice' }), StatementError)
  assert.throws(() => deliveryStatement({ ...good, transfer: 'xyz' }), StatementError)
  assert.throws(() => deliveryStatement({ ...good, digest: DIGEST.slice(0, -1) }), StatementError)
  assert.throws(() => deliveryStatement({ ...good, checkpoint: { size: 0n, root: good.checkpoint.root } }), StatementError)
  assert.throws(() => deliveryStatement({ ...good, checkpoint: { size: 1n, root: new Uint8Array(31) } }), StatementError)
  assert.throws(() => deliveryStatement({ ...good, time: new Date('not a time') }), StatementError)
})

test('the manifest v2 is the spec text: recipients sorted bytewise, each once', () => {
  const text = manifestV2({
    sender: 'acme/bob',
    digest: DIGEST,
    classification: 'OFFICIAL-SENSITIVE',
    expires: expirySeconds('72h'),
    recipients: ['hmpps/carol', 'hmpps/alice', 'hmpps/carol'],
  })
  assert.equal(text, MANIFEST)
  assert.deepEqual(parseManifestV2(MANIFEST).recipients, ['hmpps/alice', 'hmpps/carol'])
  assert.equal(manifestV2(parseManifestV2(MANIFEST)), MANIFEST)
  // Bytewise: uppercase before lowercase, and by UTF-8 bytes beyond the BMP.
  assert.deepEqual(['b/x', 'B/x', 'a/x'].sort(compareBytes), ['B/x', 'a/x', 'b/x'])
  assert.ok(compareBytes('a/\u{FF5E}', 'a/\u{1F600}') < 0, 'U+FF5E (EF BD 9E) sorts before U+1F600 (F0 9F 98 80)')
  const broken = [
    MANIFEST.replace('recipient hmpps/alice\nrecipient hmpps/carol\n', 'recipient hmpps/carol\nrecipient hmpps/alice\n'),
    MANIFEST.replace('recipient hmpps/carol\n', 'recipient hmpps/alice\n'),
    MANIFEST.replace('recipient hmpps/alice\nrecipient hmpps/carol\n', ''),
    MANIFEST.replace('expires 259200', 'expires 72h'),
    MANIFEST.replace('expires 259200', 'expires 0259200'),
    MANIFEST.replace('sealpost.manifest/v2', 'sealpost.manifest/v1'),
    MANIFEST.replace(/\n/g, '\r\n'),
    MANIFEST + '\n',
  ]
  for (const b of broken) assert.throws(() => parseManifestV2(b), StatementError, JSON.stringify(b))
  assert.throws(() => manifestV2({ ...parseManifestV2(MANIFEST), recipients: [] }), StatementError)
  assert.throws(() => manifestV2({ ...parseManifestV2(MANIFEST), classification: 'OFFICIAL\nSECRET' }), StatementError)
})

test('the manifest v2 matches the gateway’s own examples byte for byte', () => {
  // The example of `GET /api/v1/transfers/{id}/manifest` in the API contract (src/wire/manifests.rs).
  assert.equal(
    manifestV2({ sender: 'acme/bob', digest: DIGEST, classification: 'OFFICIAL-SENSITIVE', expires: 259200, recipients: ['hmpps/alice'] }),
    'sealpost.manifest/v2\nsender acme/bob\ndigest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nclassification OFFICIAL-SENSITIVE\nexpires 259200\nrecipient hmpps/alice\n',
  )
  // src/manifest.rs: whole names sort bytewise, so `-` and `.` come before `/`.
  const m = manifestV2({ sender: 'acme/bob', digest: DIGEST, classification: 'OFFICIAL', expires: 60, recipients: ['a/x', 'a.b/x', 'a-c/x'] })
  assert.deepEqual(parseManifestV2(m).recipients, ['a-c/x', 'a.b/x', 'a/x'])
})

test('the page expiry choices resolve to the seconds the gateway resolves them to', () => {
  assert.equal(expirySeconds('24h'), 86_400)
  assert.equal(expirySeconds('72h'), 259_200)
  assert.equal(expirySeconds('7d'), 604_800)
  assert.equal(expirySeconds('14d'), 1_209_600)
  assert.equal(expirySeconds('1h 30m'), 5_400)
  for (const bad of ['', '72', 'h', '-1h', '0s', '1.5h', '3 days']) assert.throws(() => expirySeconds(bad), StatementError, bad)
})

test('signing keys are spelled as the directory spells them', () => {
  // RFC 8032 test 1's public key.
  const pub = hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
  const s = signingPublic(pub)
  assert.equal(s, 'sealpost-signing111qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo')
  assert.deepEqual(signingKeyBytes(s), pub)
  assert.match(keyFingerprint(s), /^sha256:[0-9a-f]{64}$/)
  // sha256 of the ASCII text `abc`.
  assert.equal(keyFingerprint('abc'), 'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  for (const n of [0, 1, 2, 3, 31, 32, 33]) {
    const b = Uint8Array.from({ length: n }, (_, i) => (i * 37 + 250) & 0xff)
    assert.deepEqual(b64urlDecode(b64url(b)), b)
  }
  assert.equal(b64urlDecode('AA=='), undefined)
  assert.equal(b64urlDecode('A+'), undefined)
  assert.throws(() => signingKeyBytes(s + 'A'), StatementError)
  assert.throws(() => signingKeyBytes('sealpost-signing2' + s.slice(17)), StatementError)
  assert.throws(() => signingPublic(new Uint8Array(31)), StatementError)
})

/** RFC 8032 test 2's private key, imported as WebCrypto takes it (PKCS #8). */
async function rfc8032Key2(): Promise<CryptoKey> {
  const seed = hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb')
  const pkcs8 = new Uint8Array([...hex('302e020100300506032b657004220420'), ...seed])
  return crypto.subtle.importKey('pkcs8', pkcs8, { name: 'Ed25519' }, false, ['sign'])
}

test('signatures are Ed25519 over the exact bytes, in standard base64', async () => {
  // RFC 8032 test 2: the one-byte message 0x72 is the text `r`.
  const sig = await signText(await rfc8032Key2(), 'r')
  assert.equal(
    sig,
    b64encode(
      hex(
        '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
      ),
    ),
  )
  const pub = signingPublic(hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'))
  assert.equal(await verifyText(pub, 'r', sig), true)
  assert.equal(await verifyText(pub, 'r\n', sig), false)
})

test('a statement and a manifest signed with a non-extractable browser key verify, and nothing else does', async () => {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair
  assert.equal(pair.privateKey.extractable, false)
  const pub = signingPublic(new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)))
  for (const text of [STATEMENT, MANIFEST]) {
    const sig = await signText(pair.privateKey, text)
    assert.equal(b64decode(sig)?.length, 64)
    assert.equal(await verifyText(pub, text, sig), true)
    assert.equal(await verifyText(pub, text.replace('hmpps/alice', 'hmpps/alicf'), sig), false)
    const flipped = b64decode(sig)!
    flipped[10] = flipped[10]! ^ 1
    assert.equal(await verifyText(pub, text, b64encode(flipped)), false)
    assert.equal(await verifyText(pub, text, sig.slice(0, -4)), false)
  }
  const other = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair
  const otherPub = signingPublic(new Uint8Array(await crypto.subtle.exportKey('raw', other.publicKey)))
  assert.equal(await verifyText(otherPub, STATEMENT, await signText(pair.privateKey, STATEMENT)), false)
})

test('the upload metadata carries the manifest, its 64 raw signature bytes and its key, as tus requires', async () => {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair
  const signature = await signText(pair.privateKey, MANIFEST)
  const key = keyFingerprint('sealpost-signing1example')
  const header = uploadMetadata({
    to: ['hmpps/alice', 'hmpps/carol'],
    expires: '72h',
    classification: 'OFFICIAL-SENSITIVE',
    signed: { manifest: MANIFEST, signature, key },
  })
  const pairs = new Map(header.split(',').map((p) => p.split(' ') as [string, string]))
  assert.deepEqual([...pairs.keys()], ['to', 'expires', 'classification', 'manifest', 'manifest_signature', 'manifest_key'])
  const text = (k: string) => new TextDecoder().decode(b64decode(pairs.get(k)!)!)
  assert.equal(text('to'), 'hmpps/alice hmpps/carol')
  assert.equal(text('expires'), '72h')
  assert.equal(text('manifest'), MANIFEST)
  assert.equal(text('manifest_key'), key)
  assert.deepEqual(b64decode(pairs.get('manifest_signature')!), b64decode(signature))
  assert.equal(b64decode(pairs.get('manifest_signature')!)!.length, 64)
  // Unsigned: the addressing only.
  const unsigned = uploadMetadata({ to: ['hmpps/alice'], expires: '7d', classification: 'OFFICIAL' })
  assert.deepEqual(unsigned.split(',').map((p) => p.split(' ')[0]), ['to', 'expires', 'classification'])
  assert.throws(() => uploadMetadata({ to: ['a/b'], expires: '7d', classification: 'OFFICIAL', signed: { manifest: MANIFEST, signature: 'AAAA', key } }))
})
