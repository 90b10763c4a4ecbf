import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import {
  BundleError,
  bundleLength,
  checkNames,
  header,
  isBundle,
  type Item,
  MANIFEST,
  MARKER,
  readBundle,
  writeBundle,
} from '../src/bundle.ts'

const enc = new TextEncoder()

function file(name: string, content: Uint8Array | string): File {
  return new File([(typeof content === 'string' ? enc.encode(content) : content) as BlobPart], name)
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

function streamOf(bytes: Uint8Array, piece = 1000): ReadableStream<Uint8Array> {
  let at = 0
  return new ReadableStream({
    pull(c) {
      if (at >= bytes.length) return c.close()
      c.enqueue(bytes.slice(at, at + piece))
      at += piece
    },
  })
}

/** Reads a bundle into memory: name → bytes. */
async function extract(bytes: Uint8Array, piece?: number): Promise<{ manifest: Item[]; files: Map<string, Uint8Array> }> {
  const files = new Map<string, Uint8Array[]>()
  const manifest = await readBundle(streamOf(bytes, piece), {
    create(name) {
      const parts: Uint8Array[] = []
      files.set(name, parts)
      return { write: (c) => void parts.push(c.slice()) }
    },
  })
  const joined = new Map<string, Uint8Array>()
  for (const [name, parts] of files) joined.set(name, new Uint8Array(Buffer.concat(parts)))
  return { manifest, files: joined }
}

function sha(bytes: Uint8Array): string {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex')
}

/** A bundle built member by member, for the refusal tests. */
function tar(members: { name: string; data?: Uint8Array; type?: string; cksum?: 'bad' }[], end = true): Uint8Array {
  const parts: Uint8Array[] = []
  for (const m of members) {
    const data = m.data ?? new Uint8Array(0)
    const h = header(m.name.slice(0, 100), data.length)
    if (m.type !== undefined) {
      h[156] = m.type.charCodeAt(0)
      // Recompute the checksum for the new type.
      let sum = 0
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!
      h.set(enc.encode(sum.toString(8).padStart(7, '0') + '\0'), 148)
    }
    if (m.cksum === 'bad') h[148] = h[148] === 0x30 ? 0x31 : 0x30
    parts.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512))
  }
  if (end) parts.push(new Uint8Array(1024))
  return Buffer.concat(parts)
}

function manifestOf(items: { name: string; data: Uint8Array }[], version = 'sealpost.bundle/v1'): Uint8Array {
  return enc.encode(version + '\n' + items.map((i) => `${sha(i.data)} ${i.data.length} ${i.name}\n`).join(''))
}

async function refusal(bytes: Uint8Array): Promise<BundleError> {
  try {
    await extract(bytes)
  } catch (e) {
    assert.ok(e instanceof BundleError, `not a BundleError: ${e}`)
    return e
  }
  assert.fail('the bundle was accepted')
}

test('a bundle written here reads back with the same files and manifest', async () => {
  const big = new Uint8Array(300_000).map((_, i) => (i * 7) % 251)
  const files = [file('records.csv', 'id,name\n1,Example Person\n'), file('empty.txt', ''), file('big.bin', big), file('émigré ☃.txt', 'snow')]
  const { stream, manifest } = writeBundle(files)
  const bytes = await collect(stream)
  const items = await manifest
  assert.equal(bytes.length, bundleLength(files))
  for (const piece of [97, 511, 4096, 1 << 20]) {
    const back = await extract(bytes, piece)
    assert.deepEqual(back.manifest, items)
    assert.deepEqual([...back.files.keys()], files.map((f) => f.name))
    for (const f of files) assert.deepEqual(back.files.get(f.name), new Uint8Array(await f.arrayBuffer()))
  }
  assert.deepEqual(items[0], { name: 'records.csv', size: 25, digest: sha(enc.encode('id,name\n1,Example Person\n')) })
})

test('the bundle length is exact for sizes around the block boundaries', async () => {
  for (const size of [0, 1, 511, 512, 513, 1023, 1024, 100_000]) {
    const files = [file('a', new Uint8Array(size)), file('ünïcode-名前', new Uint8Array(size + 3))]
    const { stream } = writeBundle(files)
    assert.equal((await collect(stream)).length, bundleLength(files), `size ${size}`)
  }
})

test('headers are those of the tar crate: ustar, mode 0600, mtime 0, zero uid and gid, octal with NUL', () => {
  const h = header('a.txt', 1234)
  const text = (from: number, len: number) => Buffer.from(h.subarray(from, from + len)).toString('latin1')
  assert.equal(text(0, 6), 'a.txt\0')
  assert.equal(text(100, 8), '0000600\0')
  assert.deepEqual([...h.subarray(108, 124)], new Array(16).fill(0))
  assert.equal(text(124, 12), '00000002322\0')
  assert.equal(text(136, 12), '00000000000\0')
  assert.equal(text(156, 1), '0')
  assert.equal(text(257, 8), 'ustar\x0000')
  let sum = 0
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!
  assert.equal(text(148, 8), sum.toString(8).padStart(7, '0') + '\0')
  // 8 GiB and more: base-256, the high bit set, as the crate's numeric extension.
  const huge = header('b', 2 ** 33 + 5)
  assert.deepEqual([...huge.subarray(124, 136)], [0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 5])
})

test('isBundle recognises the marker header and nothing else', async () => {
  const { stream } = writeBundle([file('x', 'y')])
  const bytes = await collect(stream)
  assert.equal(isBundle(bytes.subarray(0, 512)), true)
  assert.equal(isBundle(bytes.subarray(0, 511)), false)
  assert.equal(isBundle(enc.encode('plain text that is not a tar stream'.repeat(20))), false)
  const bad = bytes.slice(0, 512)
  bad[0] = 0x41
  assert.equal(isBundle(bad), false)
})

test('names a bundle cannot carry are refused before anything is written', () => {
  const bad = ['', '.', '..', 'a/b', 'a\\b', 'tab\there', 'del\u007f', 'c1\u0085', MARKER, MANIFEST, 'x'.repeat(101)]
  for (const name of bad) {
    assert.throws(() => checkNames([name]), (e: BundleError) => e.kind === 'bad-name', JSON.stringify(name))
  }
  assert.throws(() => checkNames(['a', 'a']), (e: BundleError) => e.kind === 'duplicate-name')
  checkNames(['.hidden', 'ok name.txt', 'x'.repeat(100)])
})

test('a file that shrinks while it is read is refused', async () => {
  const liar = { name: 'liar', size: 10, stream: () => new Blob([enc.encode('short')]).stream() }
  const { stream, manifest } = writeBundle([liar])
  await assert.rejects(collect(stream), (e: BundleError) => e.kind === 'changed')
  await assert.rejects(manifest, (e: BundleError) => e.kind === 'changed')
})

test('the reader refuses what the Rust reader refuses', async () => {
  const a = { name: 'a.txt', data: enc.encode('hello') }
  const marker = { name: MARKER }
  const ok = tar([marker, a, { name: MANIFEST, data: manifestOf([a]) }])
  assert.equal((await extract(ok)).files.size, 1)

  assert.equal((await refusal(tar([a, { name: MANIFEST, data: manifestOf([a]) }]))).kind, 'not-a-bundle')
  assert.equal((await refusal(new Uint8Array(1024))).kind, 'not-a-bundle')
  assert.equal((await refusal(new Uint8Array(0))).kind, 'not-a-bundle')
  for (const [type, why] of [
    ['2', 'a link'],
    ['1', 'a link'],
    ['3', 'a device or pipe'],
    ['6', 'a device or pipe'],
    ['5', 'a directory'],
    ['x', 'not a regular file'],
    ['L', 'not a regular file'],
  ]) {
    const e = await refusal(tar([marker, { name: 'evil', type }, { name: MANIFEST, data: manifestOf([]) }]))
    assert.equal(e.kind, 'unsafe')
    assert.match(e.message, new RegExp(`which is ${why}: refused`))
  }
  const dir = await refusal(tar([{ name: MARKER, type: '5' }]))
  assert.equal(dir.kind, 'unsafe')
  for (const name of ['../etc/passwd', '/etc/passwd', 'a/b', '..', 'c\u0001']) {
    const e = await refusal(tar([marker, { name, data: enc.encode('x') }, { name: MANIFEST, data: manifestOf([]) }]))
    assert.equal(e.kind, 'unsafe', name)
  }
  const twice = await refusal(tar([marker, a, a, { name: MANIFEST, data: manifestOf([a, a]) }]))
  assert.match(twice.message, /appears twice/)
  const after = await refusal(tar([marker, { name: MANIFEST, data: manifestOf([]) }, a]))
  assert.match(after.message, /members after the manifest/)
  assert.match((await refusal(tar([marker, a]))).message, /no manifest/)
  const other = await refusal(tar([marker, a, { name: MANIFEST, data: manifestOf([]) }]))
  assert.match(other.message, /lists other files/)
  const changed = await refusal(tar([marker, { name: 'a.txt', data: enc.encode('HELLO') }, { name: MANIFEST, data: manifestOf([a]) }]))
  assert.equal(changed.kind, 'manifest-mismatch')
  const version = await refusal(tar([marker, a, { name: MANIFEST, data: manifestOf([a], 'sealpost.bundle/v2') }]))
  assert.match(version.message, /unknown version/)
  const checksum = await refusal(tar([marker, { ...a, cksum: 'bad' }, { name: MANIFEST, data: manifestOf([a]) }]))
  assert.match(checksum.message, /checksum/)
  const cut = ok.subarray(0, 512 + 512 + 3)
  assert.equal((await refusal(cut)).kind, 'malformed')
})

test('the reader reads as the Rust reader does where it is lenient', async () => {
  const a = { name: 'a.txt', data: enc.encode('hello') }
  // No end-of-archive blocks: the end of the stream ends the archive.
  const noEnd = tar([{ name: MARKER }, a, { name: MANIFEST, data: manifestOf([a]) }], false)
  assert.equal((await extract(noEnd)).files.size, 1)
  // CRLF manifest lines (Rust `str::lines`), and `+` before a size (Rust's integer parser).
  const crlf = enc.encode(`sealpost.bundle/v1\r\n${sha(a.data)} +5 a.txt\r\n`)
  assert.deepEqual((await extract(tar([{ name: MARKER }, a, { name: MANIFEST, data: crlf }]))).manifest, [
    { name: 'a.txt', size: 5, digest: sha(a.data) },
  ])
})
