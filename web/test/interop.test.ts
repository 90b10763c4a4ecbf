// Bundles and ciphertexts made by the Rust `sealpost send` and the Go `age` CLI (see
// fixtures/make.sh), opened here; and bundles made here, byte for byte the same.

import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { Decrypter, generateIdentity } from 'age-encryption'
import { dearmorStream } from '../src/armor.ts'
import { readBundle, writeBundle } from '../src/bundle.ts'
import { checkHeader, headerOf } from '../src/envelope.ts'
import { parseIdentityFile } from '../src/keys.ts'

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`../fixtures/${name}`, import.meta.url)))
const text = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as BlobPart]).stream()
}

async function decrypter(): Promise<Decrypter> {
  const d = new Decrypter()
  for (const id of await parseIdentityFile(text('send/alice-test-identity.txt'))) d.addIdentity(id)
  return d
}

// The files `sealpost send` bundled, in the order it was given them.
const SENT = ['records.csv', 'readme.txt', 'empty.dat', 'block.bin']

test('a bundle sent with `sealpost send` decrypts and unpacks here, every file matching', async () => {
  const plaintext = await (await decrypter()).decrypt(streamOf(fixture('send/bundle.age')))
  const got = new Map<string, Uint8Array[]>()
  const manifest = await readBundle(plaintext, {
    create(name) {
      const parts: Uint8Array[] = []
      got.set(name, parts)
      return { write: (c) => void parts.push(c.slice()) }
    },
  })
  assert.deepEqual(
    manifest.map((m) => m.name),
    SENT,
  )
  for (const name of SENT) {
    assert.deepEqual(new Uint8Array(Buffer.concat(got.get(name)!)), fixture(`send/files/${name}`), name)
  }
})

test('the bundle written here is byte for byte the one `sealpost send` wrote', async () => {
  const rust = await (await decrypter()).decrypt(fixture('send/bundle.age'))
  const files = SENT.map((name) => new File([fixture(`send/files/${name}`)], name))
  const { stream } = writeBundle(files)
  assert.deepEqual(await bytesOf(stream), rust)
})

test('the identity check opens the header, refuses another identity, and asks for more of a short prefix', async () => {
  const cipher = fixture('send/bundle.age')
  assert.equal(await checkHeader(cipher.subarray(0, 2000), await decrypter()), 'opens')
  const other = new Decrypter()
  other.addIdentity(await generateIdentity())
  assert.equal(await checkHeader(cipher.subarray(0, 2000), other), 'no-match')
  assert.equal(await checkHeader(cipher.subarray(0, 64), await decrypter()), 'need-more')
  const header = headerOf(cipher)!
  const damaged = cipher.slice(0, 2000)
  damaged[header.length - 3]! ^= 1 // inside the MAC
  const verdict = await checkHeader(damaged, await decrypter())
  assert.ok(typeof verdict === 'object' && 'broken' in verdict)
})

test('a plain file encrypted with the Go `age` CLI, armoured, opens here', async () => {
  const armored = fixture('age/records.csv.age.txt')
  assert.equal(await checkHeader(armored.subarray(0, 1000), await decrypter()), 'opens')
  const plaintext = await (await decrypter()).decrypt(streamOf(armored).pipeThrough(dearmorStream()))
  assert.deepEqual(await bytesOf(plaintext), fixture('send/files/records.csv'))
})

test('the header alone is enough, binary or armoured to the base64 group that completes it', async () => {
  // Before the link is used up the gateway serves the header and nothing past it.
  const cipher = fixture('send/bundle.age')
  const header = headerOf(cipher)!
  assert.equal(await checkHeader(cipher.subarray(0, header.length), await decrypter()), 'opens')
  assert.equal(await checkHeader(cipher.subarray(0, header.length - 1), await decrypter()), 'need-more')

  const armored = fixture('age/records.csv.age.txt')
  const text = new TextDecoder().decode(armored)
  const begin = text.indexOf('\n') + 1
  const binary = await bytesOf(streamOf(armored).pipeThrough(dearmorStream()))
  const chars = Math.ceil(headerOf(binary)!.length / 3) * 4 // whole groups holding the header
  const end = begin + chars + Math.floor((chars - 1) / 64) // and the line breaks before the last
  assert.notEqual(text[end - 1], '\n')
  assert.equal(await checkHeader(armored.subarray(0, end), await decrypter()), 'opens')
  assert.equal(await checkHeader(armored.subarray(0, end - 1), await decrypter()), 'need-more')
})

test('identity files are read as age reads them', async () => {
  assert.equal((await parseIdentityFile(text('send/alice-test-identity.txt'))).length, 1)
  await assert.rejects(parseIdentityFile('# only a comment\n'), /holds no age identity/)
  await assert.rejects(parseIdentityFile('age1qqqq\n'), /Line 1 of the identity file is not an age identity/)
  await assert.rejects(parseIdentityFile('AGE-SECRET-KEY-1QQQQ\n'), /damaged/)
})
