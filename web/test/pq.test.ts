// Post-quantum keys in the browser code: an identity made by `sealpost keygen --pq` and a bundle
// `sealpost send` encrypted to its `age1pq1…` recipient with sealpost's own `mlkem768x25519`
// implementation (see fixtures/make-pq.sh) open here as the collect page opens them; and what
// this library encrypts to that recipient carries the stanza the gateway counts against the key.
// The live exchange through a gateway, both ways, is tests/it/pq_interop.rs.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { Decrypter, Encrypter, identityToRecipient } from 'age-encryption'
import { readBundle } from '../src/bundle.ts'
import { checkHeader, headerOf } from '../src/envelope.ts'
import { parseIdentityFile } from '../src/keys.ts'

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/pq/${name}`, import.meta.url)))
const text = (name: string) => readFileSync(new URL(`../fixtures/pq/${name}`, import.meta.url), 'utf8')

async function decrypter(): Promise<Decrypter> {
  const d = new Decrypter()
  for (const id of await parseIdentityFile(text('alice-pq-test-identity.txt'))) d.addIdentity(id)
  return d
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as BlobPart]).stream()
}

/** The recipient `sealpost keygen --pq` wrote in the identity file's comment. */
function recipientOfFile(): string {
  const line = text('alice-pq-test-identity.txt').split('\n').find((l) => l.startsWith('# public key: '))
  return line!.slice('# public key: '.length)
}

test('a post-quantum identity file from `sealpost keygen --pq` is read, and names its recipient', async () => {
  const ids = await parseIdentityFile(text('alice-pq-test-identity.txt'))
  assert.equal(ids.length, 1)
  assert.ok(ids[0]!.startsWith('AGE-SECRET-KEY-PQ-1'))
  assert.equal(await identityToRecipient(ids[0]!), recipientOfFile())
})

test('a bundle `sealpost send` encrypted to a post-quantum key opens and unpacks here', async () => {
  const cipher = fixture('bundle.age')
  const header = new TextDecoder().decode(headerOf(cipher)!)
  assert.match(header, /^age-encryption\.org\/v1\n-> mlkem768x25519 /)
  assert.equal(await checkHeader(cipher.subarray(0, 4000), await decrypter()), 'opens')
  const got = new Map<string, Uint8Array[]>()
  const manifest = await readBundle(await (await decrypter()).decrypt(streamOf(cipher)), {
    create(name) {
      const parts: Uint8Array[] = []
      got.set(name, parts)
      return { write: (c) => void parts.push(c.slice()) }
    },
  })
  assert.deepEqual(
    manifest.map((m) => m.name),
    ['records.csv', 'long.txt'],
  )
  for (const name of ['records.csv', 'long.txt']) {
    assert.deepEqual(new Uint8Array(Buffer.concat(got.get(name)!)), fixture(`files/${name}`), name)
  }
})

test('what this library encrypts to the same recipient has one mlkem768x25519 stanza and opens again', async () => {
  const e = new Encrypter()
  e.addRecipient(recipientOfFile())
  const cipher = await e.encrypt('from the browser')
  const header = new TextDecoder().decode(headerOf(cipher)!)
  assert.equal(header.match(/\n-> /g)?.length, 1)
  assert.match(header, /\n-> mlkem768x25519 [A-Za-z0-9+/]{1494}\n/)
  assert.equal(new TextDecoder().decode(await (await decrypter()).decrypt(cipher)), 'from the browser')
})
