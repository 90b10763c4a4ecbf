import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import {
  b64decode,
  b64encode,
  isSmallOrder,
  keyId,
  leafHash,
  nodeHash,
  parseCheckpoint,
  parseEntry,
  parseNote,
  parseProof,
  parseVerifierKey,
  rootFromInclusionProof,
  TlogError,
} from '../src/tlog.ts'
import { nameCommitment, verifyKey, verifyReceipt, verifyUpload } from '../src/verify.ts'

const enc = new TextEncoder()

// ---- a log made here: RFC 6962 reference tree, a WebCrypto Ed25519 signer ----------------------

function split(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 1) return leaves[0]!
  const k = split(leaves.length)
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)))
}

/** PATH(m, D[n]) of RFC 6962 section 2.1.1, leaf sibling first. */
function path(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return []
  const k = split(leaves.length)
  return m < k ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))] : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))]
}

async function signer(name: string) {
  const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey))
  const id = keyId(name, 1, pub)
  const vkey = `${name}+${id.toString(16).padStart(8, '0')}+${b64encode(Uint8Array.from([1, ...pub]))}`
  const sign = async (text: string) => {
    const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, pair.privateKey, enc.encode(text)))
    const raw = new Uint8Array(4 + 64)
    new DataView(raw.buffer).setUint32(0, id)
    raw.set(sig, 4)
    return `\u2014 ${name} ${b64encode(raw)}\n`
  }
  return { vkey, sign }
}

const T = 'b'.repeat(32)
const entryText = (i: number) =>
  `sealpost.audit/v1\nevent upload.accepted\ntime 2026-11-21T12:00:0${i}.250Z\nactor ${'a'.repeat(32)}\ntransfer ${T}\nsize 12\ndigest sha256:${String(i).repeat(64)}\nclassification OFFICIAL\n`

async function fixture() {
  const log = await signer('sealpost.example/log')
  const entries = Array.from({ length: 7 }, (_, i) => enc.encode(entryText(i)))
  const leaves = entries.map(leafHash)
  const checkpoint = `sealpost.example/log\n7\n${b64encode(mth(leaves))}\n`
  const note = checkpoint + '\n' + (await log.sign(checkpoint))
  const proof = (i: number) =>
    `c2sp.org/tlog-proof@v1\nextra ${b64encode(entries[i]!)}\nindex ${i}\n${path(i, leaves).map((h) => b64encode(h) + '\n').join('')}\n${note}`
  return { log, entries, leaves, proof }
}

test('a receipt made by a log here verifies, for every leaf', async () => {
  const { log, proof } = await fixture()
  const key = await parseVerifierKey(log.vkey)
  for (let i = 0; i < 7; i++) {
    const s = await verifyUpload(proof(i), key, T, `sha256:${String(i).repeat(64)}`)
    assert.equal(s.index, BigInt(i))
    assert.equal(s.treeSize, 7n)
    assert.equal(s.origin, 'sealpost.example/log')
  }
})

test('flipping any byte of a receipt is detected', async () => {
  const { log, proof } = await fixture()
  const key = await parseVerifierKey(log.vkey)
  const text = enc.encode(proof(3))
  let checked = 0
  for (let i = 0; i < text.length; i++) {
    for (const flip of [0x01, 0x20]) {
      const bad = text.slice()
      bad[i]! ^= flip
      let s: string
      try {
        s = new TextDecoder('utf-8', { fatal: true }).decode(bad)
      } catch {
        continue
      }
      await assert.rejects(verifyReceipt(s, key), `byte ${i} flipped with ${flip} still verifies`)
      checked++
    }
  }
  assert.ok(checked > 1000)
})

test('a receipt is refused under another log key, for another index or another entry', async () => {
  const { log, proof, entries } = await fixture()
  const other = await signer('sealpost.example/log')
  await assert.rejects(verifyReceipt(proof(3), await parseVerifierKey(other.vkey)), /no signature from a known key/)
  const key = await parseVerifierKey(log.vkey)
  const wrongIndex = proof(3).replace('index 3', 'index 4')
  await assert.rejects(verifyReceipt(wrongIndex, key), /does not lead to the checkpoint root/)
  const swapped = proof(3).replace(b64encode(entries[3]!), b64encode(entries[4]!))
  await assert.rejects(verifyReceipt(swapped, key), TlogError)
  await assert.rejects(verifyUpload(proof(3), key, 'c'.repeat(32)), /not `cccc/)
  await assert.rejects(verifyUpload(proof(3), key, T, `sha256:${'f'.repeat(64)}`), /log records digest/)
})

test('parse errors are precise', async () => {
  const { proof } = await fixture()
  const text = proof(3)
  assert.throws(() => parseProof('c2sp.org/tlog-proof@v2\n'), /does not start with/)
  assert.throws(() => parseProof(text.replace('index 3', 'index 03')), /no valid `index` line/)
  assert.throws(() => parseProof(text.replace('extra ', 'extra !')), /`extra` line is not base64/)
  const lines = text.split('\n')
  lines[3] = 'AAAA'
  assert.throws(() => parseProof(lines.join('\n')), /proof line 4 is not the base64 of a 32-byte hash/)
  const cut = text.indexOf('\n\n') + 1
  assert.throws(() => parseProof(text.slice(0, cut)), /no checkpoint after a blank line/)
  assert.throws(() => parseProof(`${text.slice(0, cut + 1)}x\n`), /no signature block/)
  assert.throws(() => parseCheckpoint('o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n'), /not a decimal/)
  assert.throws(() => parseCheckpoint('o\n1\nAAAA\n'), /not 32 bytes/)
  assert.throws(() => parseCheckpoint('o\n1\n'), /needs origin, size and root/)
  assert.throws(() => parseNote('text\n\n\u2014 a AAAAAA==\n'), /signature line 1 is malformed/)
  assert.throws(() => parseNote('text\n\n\u2014 a AAA\n'), /signature line 1 is malformed/)
  assert.throws(() => parseNote('text\n\n\u2014 a AAAAAAA=\n\u2014 b+c AAAAAAA=\n'), /contains a space or `\+`/)
  assert.equal(parseNote('text\n\n\u2014 a AAAAAAA=\n').signatures[0]!.signature.length, 1)
  assert.throws(() => parseNote('te\txt\n\n\u2014 a AAAAAAAA\n'), /control character/)
  assert.equal(b64decode('AB=='), undefined, 'stray bits are refused')
  assert.equal(b64decode('AA'), undefined, 'padding is required')
})

test('entries are parsed as strictly as the Rust reader', () => {
  const good = entryText(1)
  assert.equal(parseEntry(enc.encode(good)).fields.get('classification'), 'OFFICIAL')
  const bad: [string, RegExp][] = [
    [good.replace('sealpost.audit/v1', 'sealpost.audit/v2'), /does not start/],
    [good.slice(0, -1), /newline/],
    [good.replace('time 2026-11-21T12:00:01.250Z', 'time 2026-11-21T12:00:01Z'), /rfc 3339/],
    [good.replace('time 2026-11-21T12:00:01.250Z', 'time 2026-02-30T12:00:01.250Z'), /rfc 3339/],
    [good.replace('size 12', 'size 012'), /size/],
    [good.replace('digest sha256:', 'digest sha256:A'), /digest/],
    [good.replace('\nactor', '\n\nactor'), /line 4 is empty/],
    [good.replace('event upload.accepted\ntime', 'time'), /no `event` line/],
    [good.replace(/actor (\w+)\ntransfer (\w+)/, 'transfer $2\nactor $1'), /out of order/],
    [good.replace('size 12\n', ''), /has no `size`/],
    [good.replace('classification', 'Classification'), /not a `key value` line/],
    [good + 'size 13\n', /repeats the key `size`/],
    [good.replace('event upload.accepted', 'event upload'), /dotted name/],
  ]
  for (const [text, why] of bad) assert.throws(() => parseEntry(enc.encode(text)), why, text)
})

test('inclusion proofs follow RFC 9162 for every leaf of trees up to 40 leaves', () => {
  for (let n = 1; n <= 40; n++) {
    const leaves = Array.from({ length: n }, (_, i) => leafHash(enc.encode(`leaf ${i}`)))
    const root = mth(leaves)
    for (let m = 0; m < n; m++) {
      const p = path(m, leaves)
      assert.deepEqual(rootFromInclusionProof(leaves[m]!, BigInt(m), BigInt(n), p), root)
      if (p.length > 0) assert.throws(() => rootFromInclusionProof(leaves[m]!, BigInt(m), BigInt(n), p.slice(1)), /fewer hashes/)
      assert.throws(() => rootFromInclusionProof(leaves[m]!, BigInt(m), BigInt(n), [...p, root]), /more hashes/)
    }
    assert.throws(() => rootFromInclusionProof(leaves[0]!, BigInt(n), BigInt(n), []), /outside a tree/)
  }
})

test('verifier keys are checked like the Rust ones', async () => {
  const { log } = await fixture()
  await parseVerifierKey(log.vkey + '\n')
  const [name, id] = log.vkey.split('+') as [string, string]
  const b64 = log.vkey.slice(name.length + id.length + 2)
  await assert.rejects(parseVerifierKey(`${name}+${id.toUpperCase()}+${b64}`), /not of the form/)
  await assert.rejects(parseVerifierKey(`${name}+00000000+${b64}`), /key id does not match/)
  await assert.rejects(parseVerifierKey(`${name}+${id}+${b64encode(Uint8Array.from([4, ...b64decode(b64)!.slice(1)]))}`), /signature type 4/)
  await assert.rejects(parseVerifierKey(`bad name+${id}+${b64}`), /contains a space/)
  assert.equal(isSmallOrder(new Uint8Array(32)), true)
  assert.equal(isSmallOrder(b64decode(b64)!.slice(1)), false)
})

test('a name commitment is HMAC-SHA256 of ORG/NAME under the salt', async () => {
  // The value the Rust side pins too (src/names.rs), computed with openssl.
  const salt = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0')).join('')
  assert.equal(await nameCommitment(salt, 'hmpps/alice'), '2f59305fc8a03391e7d22d8c718022fb0381d33465d12adec4c02c8394873f03')
  await assert.rejects(nameCommitment('AB'.repeat(32), 'hmpps/alice'), /not 64 hex digits/)
})

// ---- receipts from a real gateway -------------------------------------------------------------

const real = JSON.parse(readFileSync(new URL('../fixtures/receipts.json', import.meta.url), 'utf8')) as {
  log_key: string
  transfer: string
  digest: string
  receipts: { event: string; receipt: string }[]
  key: { fingerprint: string; receipt: string; user: string; name_salt: string }
}

test('the receipts of a transfer through the real gateway verify against its log key', async () => {
  const key = await parseVerifierKey(real.log_key)
  const upload = real.receipts.find((r) => r.event === 'upload.accepted')!
  const s = await verifyUpload(upload.receipt, key, real.transfer, real.digest)
  assert.equal(s.entry.fields.get('digest'), real.digest)
  for (const r of real.receipts) {
    const v = await verifyReceipt(r.receipt, key)
    assert.equal(v.entry.event, r.event)
    assert.equal(v.entry.fields.get('transfer'), real.transfer)
  }
  const { user, name_salt: salt } = real.key
  await verifyKey(real.key.receipt, key, real.key.fingerprint, user, salt)
  await assert.rejects(verifyKey(real.key.receipt, key, `sha256:${'0'.repeat(64)}`, user, salt), /not the registration/)
  await assert.rejects(verifyKey(real.key.receipt, key, real.key.fingerprint, 'hmpps/carol', salt), /does not register the key to `hmpps\/carol`/)
  await assert.rejects(verifyKey(real.key.receipt, key, real.key.fingerprint, user, '0'.repeat(64)), /does not register the key/)
  await assert.rejects(verifyUpload(real.key.receipt, key, real.transfer), /not `upload.accepted`/)
})
