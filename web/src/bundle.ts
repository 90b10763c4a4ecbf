// The sealpost bundle, version 1: the plaintext that age encrypts, byte for byte as
// `src/client/bundle.rs` writes it, so bundles made here open with `sealpost fetch` and the
// other way round.
//
//   .sealpost-bundle-v1   empty regular file: marks the stream as a bundle
//   NAME…                 one regular file per sent file, flat names (no directories)
//   .sealpost-manifest    `sealpost.bundle/v1` then one `sha256:<hex> <size> <name>` line per file
//
// Members are ustar headers as the Rust `tar` crate's `Header::new_ustar` writes them: mode
// 0600, mtime 0, uid and gid fields left as zero bytes, no user or group names, the numbers in
// zero-padded octal ending in NUL (sizes of 8 GiB and more in base-256), then the data padded to
// 512 bytes; two zero blocks end the archive. Writing is one streaming pass that hashes each file
// as it goes; reading checks each file against the manifest and refuses what the Rust reader
// refuses (links, devices, directories, unsafe names, files out of line with the manifest).

import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

/** The name of the first member, which marks a bundle. */
export const MARKER = '.sealpost-bundle-v1'
/** The name of the last member, the manifest. */
export const MANIFEST = '.sealpost-manifest'
/** The manifest's first line. */
const MANIFEST_VERSION = 'sealpost.bundle/v1'
/** The most manifest bytes read back (as the Rust reader). */
const MAX_MANIFEST = 16 << 20
/** The longest name a ustar header holds without a prefix (longer ones the Rust writer refuses). */
const MAX_HEADER_NAME = 100
const BLOCK = 512

/** Why a bundle could not be written or read; `kind` mirrors the Rust `BundleError`. */
export type BundleErrorKind =
  | 'bad-name'
  | 'duplicate-name'
  | 'changed'
  | 'not-a-bundle'
  | 'unsafe'
  | 'malformed'
  | 'manifest-mismatch'

export class BundleError extends Error {
  constructor(
    readonly kind: BundleErrorKind,
    message: string,
  ) {
    super(message)
    this.name = 'BundleError'
  }
}

/** One file of a bundle, as its manifest lists it. */
export interface Item {
  /** The file name (one path component). */
  name: string
  /** The size in bytes. */
  size: number
  /** `sha256:<lowercase hex>`. */
  digest: string
}

const utf8 = new TextEncoder()

function utf8Length(s: string): number {
  return utf8.encode(s).length
}

/** Unicode `Cc` (what Rust's `char::is_control` matches). */
function hasControl(s: string): boolean {
  return /[\u0000-\u001f\u007f-\u009f]/.test(s)
}

/** Whether `name` is a plain file name, as the Rust `check_name`: one normal path component, no
 * slash or backslash, no control character, not one of the bundle's own members, at most 255
 * bytes. */
export function isPlainName(name: string): boolean {
  return (
    name !== '' &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\\') &&
    !hasControl(name) &&
    name !== MARKER &&
    name !== MANIFEST &&
    utf8Length(name) <= 255
  )
}

/** Checks the names of the files to send: plain, unique, and short enough for a ustar header. */
export function checkNames(names: readonly string[]): void {
  const seen = new Set<string>()
  for (const name of names) {
    if (!isPlainName(name) || utf8Length(name) > MAX_HEADER_NAME) {
      throw new BundleError(
        'bad-name',
        `“${name}” is not a file name a bundle can carry: rename it (at most ${MAX_HEADER_NAME} bytes, no slashes or control characters) and add it again`,
      )
    }
    if (seen.has(name)) {
      throw new BundleError('duplicate-name', `Two files are named “${name}”: rename one of them, or remove one`)
    }
    seen.add(name)
  }
}

// ---- ustar headers -------------------------------------------------------------------------

/** Writes `value` as the `tar` crate's `octal_into` does: zero-padded octal, a final NUL. */
function octalInto(block: Uint8Array, offset: number, len: number, value: number): void {
  const digits = value.toString(8)
  if (digits.length > len - 1) throw new RangeError('value too large for the field')
  block.fill(0x30, offset, offset + len - 1)
  for (let i = 0; i < digits.length; i++) {
    block[offset + len - 1 - digits.length + i] = digits.charCodeAt(i)
  }
  block[offset + len - 1] = 0
}

/** A 12-byte number field: octal below 8 GiB, base-256 (high bit set) from there, as the crate. */
function numberInto(block: Uint8Array, offset: number, value: number): void {
  if (value < 8589934592) {
    octalInto(block, offset, 12, value)
    return
  }
  block.fill(0, offset, offset + 12)
  let v = BigInt(value)
  for (let i = 11; i >= 4; i--) {
    block[offset + i] = Number(v & 0xffn)
    v >>= 8n
  }
  block[offset] = (block[offset] ?? 0) | 0x80
}

/** The header checksum: the byte sum with the checksum field read as spaces. */
function checksum(block: Uint8Array): number {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0)
  return sum
}

/** The header of a regular member `name` of `size` bytes. */
export function header(name: string, size: number): Uint8Array {
  const bytes = utf8.encode(name)
  if (bytes.length > MAX_HEADER_NAME) throw new BundleError('bad-name', `“${name}” is too long for a bundle`)
  const block = new Uint8Array(BLOCK)
  block.set(bytes, 0)
  octalInto(block, 100, 8, 0o600)
  numberInto(block, 124, size)
  numberInto(block, 136, 0)
  block[156] = 0x30 // '0': regular file
  block.set(utf8.encode('ustar\0'), 257)
  block.set(utf8.encode('00'), 263)
  octalInto(block, 148, 8, checksum(block))
  return block
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

function manifestLine(item: Item): string {
  return `${item.digest} ${item.size} ${item.name}\n`
}

/** The exact byte length of the bundle of files with these names and sizes (the manifest's
 * length is known in advance: every digest is `sha256:` and 64 hex digits). */
export function bundleLength(files: readonly { name: string; size: number }[]): number {
  let manifest = utf8Length(MANIFEST_VERSION) + 1
  let total = BLOCK // the marker
  for (const f of files) {
    total += BLOCK + f.size + padding(f.size)
    manifest += 71 + 1 + String(f.size).length + 1 + utf8Length(f.name) + 1
  }
  return total + BLOCK + manifest + padding(manifest) + 2 * BLOCK
}

// ---- writing -------------------------------------------------------------------------------

/** A file to bundle: what a `File` offers. */
export interface Source {
  readonly name: string
  readonly size: number
  stream(): ReadableStream<Uint8Array>
}

/** The bundle of `files` as a stream, hashing each file as it passes; `manifest` resolves with
 * the items once the stream has ended. `progress` gets the number of file bytes read so far. */
export function writeBundle(
  files: readonly Source[],
  progress: (done: number) => void = () => {},
): { stream: ReadableStream<Uint8Array>; manifest: Promise<Item[]> } {
  checkNames(files.map((f) => f.name))
  let settle: { ok: (items: Item[]) => void; fail: (e: unknown) => void } | undefined
  const manifest = new Promise<Item[]>((ok, fail) => (settle = { ok, fail }))
  manifest.catch(() => {}) // the stream carries the same error
  const items: Item[] = []
  let done = 0
  // The parts of the bundle, produced one at a time as the consumer pulls.
  async function* parts(): AsyncGenerator<Uint8Array> {
    yield header(MARKER, 0)
    for (const file of files) {
      const size = file.size
      yield header(file.name, size)
      const hash = sha256.create()
      let read = 0
      const reader = file.stream().getReader()
      for (;;) {
        const { done: end, value } = await reader.read()
        if (end) break
        // Never more than the header announced, whatever the file does meanwhile.
        const chunk = read + value.length > size ? value.subarray(0, size - read) : value
        if (chunk.length > 0) {
          hash.update(chunk)
          read += chunk.length
          done += chunk.length
          progress(done)
          yield chunk
        }
        if (read === size && chunk.length < value.length) {
          await reader.cancel()
          break
        }
      }
      if (read !== size) {
        throw new BundleError('changed', `“${file.name}” changed while it was read: add it again and send once more`)
      }
      const pad = padding(size)
      if (pad > 0) yield new Uint8Array(pad)
      items.push({ name: file.name, size, digest: `sha256:${bytesToHex(hash.digest())}` })
    }
    const text = utf8.encode(MANIFEST_VERSION + '\n' + items.map(manifestLine).join(''))
    yield header(MANIFEST, text.length)
    yield text
    yield new Uint8Array(padding(text.length) + 2 * BLOCK)
  }
  const it = parts()
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await it.next()
        if (next.done) {
          controller.close()
          settle?.ok(items)
        } else {
          controller.enqueue(next.value)
        }
      } catch (e) {
        controller.error(e)
        settle?.fail(e)
      }
    },
    async cancel(reason) {
      await it.return(undefined)
      settle?.fail(reason)
    },
  })
  return { stream, manifest }
}

// ---- reading -------------------------------------------------------------------------------

/** Where extracted files go: `create` is called once per file, in bundle order, and the writer's
 * `write` for each piece. Nothing should become visible before `readBundle` resolves: the caller
 * then commits what the sink holds, or discards it when `readBundle` rejects. */
export interface BundleSink {
  create(name: string): Promise<FileWriter> | FileWriter
}

export interface FileWriter {
  write(chunk: Uint8Array): Promise<void> | void
}

/** Pulls exact numbers of bytes from a stream. */
class ByteReader {
  private buffered: Uint8Array[] = []
  private have = 0
  private ended = false

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** Exactly `n` bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Uint8Array> {
    while (this.have < n && !this.ended) {
      const { done, value } = await this.reader.read()
      if (done) this.ended = true
      else if (value.length > 0) {
        this.buffered.push(value)
        this.have += value.length
      }
    }
    const take = Math.min(n, this.have)
    const out = new Uint8Array(take)
    let at = 0
    while (at < take) {
      const head = this.buffered[0]!
      const part = Math.min(head.length, take - at)
      out.set(head.subarray(0, part), at)
      at += part
      if (part === head.length) this.buffered.shift()
      else this.buffered[0] = head.subarray(part)
    }
    this.have -= take
    return out
  }

  /** Up to `max` bytes (at least one unless the stream has ended), without copying. */
  async some(max: number): Promise<Uint8Array> {
    if (this.have === 0 && !this.ended) {
      const { done, value } = await this.reader.read()
      if (done) this.ended = true
      else {
        this.buffered.push(value)
        this.have += value.length
      }
    }
    const head = this.buffered[0]
    if (!head) return new Uint8Array(0)
    const part = Math.min(head.length, max)
    if (part === head.length) this.buffered.shift()
    else this.buffered[0] = head.subarray(part)
    this.have -= part
    return head.subarray(0, part)
  }

  /** Reads to the end, discarding. */
  async drain(): Promise<void> {
    this.buffered = []
    this.have = 0
    while (!this.ended) {
      const { done } = await this.reader.read()
      if (done) this.ended = true
    }
  }
}

/** A NUL-terminated field. */
function field(block: Uint8Array, offset: number, len: number): Uint8Array {
  const slice = block.subarray(offset, offset + len)
  const nul = slice.indexOf(0)
  return nul < 0 ? slice : slice.subarray(0, nul)
}

/** An octal field as the crate's `octal_from` reads it: up to the first NUL, spaces trimmed. */
function readOctal(block: Uint8Array, offset: number, len: number): number {
  const text = String.fromCharCode(...field(block, offset, len)).trim()
  if (!/^[0-7]+$/.test(text)) throw new BundleError('malformed', 'The bundle is malformed: a header number is not octal')
  const value = parseInt(text, 8)
  if (!Number.isSafeInteger(value)) throw new BundleError('malformed', 'The bundle is malformed: a size is too large')
  return value
}

/** A 12-byte number field as the crate reads it: base-256 (its last 8 bytes) when the high bit is
 * set, octal otherwise. */
function readNumber(block: Uint8Array, offset: number): number {
  if (!((block[offset] ?? 0) & 0x80)) return readOctal(block, offset, 12)
  let v = 0n
  for (let i = 4; i < 12; i++) v = (v << 8n) | BigInt(block[offset + i] ?? 0)
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new BundleError('malformed', 'The bundle is malformed: a size is too large')
  return Number(v)
}

/** The member's path as the crate gives it: ustar `prefix/name`, or the name alone. */
function memberPath(block: Uint8Array): string {
  const name = field(block, 0, 100)
  const magic = String.fromCharCode(...block.subarray(257, 263))
  const version = String.fromCharCode(...block.subarray(263, 265))
  const prefix = magic === 'ustar\0' && version === '00' ? field(block, 345, 155) : new Uint8Array(0)
  const decode = (b: Uint8Array) => new TextDecoder('utf-8').decode(b)
  return prefix.length > 0 ? `${decode(prefix)}/${decode(name)}` : decode(name)
}

/** What a non-regular member is, in the Rust reader's words. */
function whyRefused(type: number): string {
  switch (String.fromCharCode(type)) {
    case '1':
    case '2':
      return 'a link'
    case '3':
    case '4':
    case '6':
      return 'a device or pipe'
    case '5':
      return 'a directory'
    default:
      return 'not a regular file'
  }
}

/** True when `prefix` (the first bytes of a plaintext, at least 512 if it has them) starts a
 * sealpost bundle: its first header names the marker and its checksum holds. */
export function isBundle(prefix: Uint8Array): boolean {
  if (prefix.length < BLOCK) return false
  const block = prefix.subarray(0, BLOCK)
  let stated: number
  try {
    stated = readOctal(block, 148, 8)
  } catch {
    return false
  }
  return memberPath(block) === MARKER && stated === checksum(block)
}

/** Parses the manifest as the Rust reader: the version line, then `digest size name` lines (Rust
 * `str::lines`: split at LF, one trailing CR dropped, no empty last line). */
export function parseManifest(text: string): Item[] {
  const bad = (why: string) => new BundleError('malformed', `The bundle is malformed: its manifest ${why}`)
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const clean = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
  if (clean[0] !== MANIFEST_VERSION) throw bad('has an unknown version')
  return clean.slice(1).map((line) => {
    const first = line.indexOf(' ')
    const second = first < 0 ? -1 : line.indexOf(' ', first + 1)
    if (second < 0) throw bad('has a malformed line')
    const sizeText = line.slice(first + 1, second)
    // Rust's u64 parser: an optional `+`, then decimal digits.
    const digits = sizeText.startsWith('+') ? sizeText.slice(1) : sizeText
    if (!/^[0-9]+$/.test(digits) || BigInt(digits) > 18446744073709551615n) throw bad('has a malformed size')
    const size = Number(digits)
    return { digest: line.slice(0, first), size, name: line.slice(second + 1) }
  })
}

/**
 * Reads a bundle from `plaintext` into `sink` and returns its manifest, once every member has
 * been read, the stream has been read to its end (so the decryption has authenticated its last
 * chunk), and every file matches the manifest, in order, by name, size and SHA-256.
 *
 * Refused, as by the Rust reader: a first member other than the marker, any member that is not
 * a regular file, a name that is not a plain file name, a name twice, members after the
 * manifest, no manifest, a manifest listing other files. Stricter: GNU long-name and pax
 * extension headers, which no sealpost writer makes, are refused as not regular files.
 */
export async function readBundle(plaintext: ReadableStream<Uint8Array>, sink: BundleSink): Promise<Item[]> {
  const reader = plaintext.getReader()
  const input = new ByteReader(reader)
  const got: Item[] = []
  let manifest: Item[] | undefined
  let first = true
  try {
    for (;;) {
      const block = await input.read(BLOCK)
      if (block.length === 0) break
      if (block.length < BLOCK) throw new BundleError('malformed', 'The bundle is malformed: it ends inside a header')
      if (block.every((b) => b === 0)) break
      if (readOctal(block, 148, 8) !== checksum(block)) {
        throw new BundleError('malformed', 'The bundle is malformed: a header checksum does not match')
      }
      const name = memberPath(block)
      const type = block[156] ?? 0
      if (type !== 0 && type !== 0x30) {
        throw new BundleError('unsafe', `The bundle holds “${name}”, which is ${whyRefused(type)}: refused`)
      }
      const size = readNumber(block, 124)
      const pad = padding(size)
      if (first) {
        if (name !== MARKER) throw new BundleError('not-a-bundle', 'The plaintext is not a sealpost bundle')
        first = false
        await skip(input, size + pad)
        continue
      }
      if (manifest) throw new BundleError('malformed', 'The bundle is malformed: members after the manifest')
      if (name === MANIFEST) {
        const keep = Math.min(size, MAX_MANIFEST)
        const bytes = await exact(input, keep)
        await skip(input, size - keep + pad)
        let text: string
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
        } catch {
          throw new BundleError('malformed', 'The bundle is malformed: its manifest is not UTF-8 text')
        }
        manifest = parseManifest(text)
        continue
      }
      if (!isPlainName(name)) {
        throw new BundleError('unsafe', `The bundle holds “${name}”, which is not a plain file name: refused`)
      }
      if (got.some((g) => g.name === name)) {
        throw new BundleError('malformed', `The bundle is malformed: “${name}” appears twice`)
      }
      const writer = await sink.create(name)
      const hash = sha256.create()
      let left = size
      while (left > 0) {
        const chunk = await input.some(Math.min(left, 1 << 20))
        if (chunk.length === 0) throw new BundleError('malformed', 'The bundle is malformed: it ends inside a file')
        hash.update(chunk)
        await writer.write(chunk)
        left -= chunk.length
      }
      await skip(input, pad)
      got.push({ name, size, digest: `sha256:${bytesToHex(hash.digest())}` })
    }
    // Read to the end, so the decryption authenticates the last chunk before anything appears.
    await input.drain()
  } catch (e) {
    await reader.cancel(e).catch(() => {})
    throw e
  } finally {
    reader.releaseLock()
  }
  if (first) throw new BundleError('not-a-bundle', 'The plaintext is not a sealpost bundle')
  if (!manifest) throw new BundleError('malformed', 'The bundle is malformed: it has no manifest')
  if (manifest.length !== got.length) {
    throw new BundleError('malformed', 'The bundle is malformed: the manifest lists other files than the bundle holds')
  }
  manifest.forEach((listed, i) => {
    const file = got[i]!
    if (listed.name !== file.name || listed.size !== file.size || listed.digest !== file.digest) {
      throw new BundleError('manifest-mismatch', `“${file.name}” differs from the bundle's manifest`)
    }
  })
  return manifest
}

async function exact(input: ByteReader, n: number): Promise<Uint8Array> {
  const bytes = await input.read(n)
  if (bytes.length < n) throw new BundleError('malformed', 'The bundle is malformed: it ends inside a member')
  return bytes
}

async function skip(input: ByteReader, n: number): Promise<void> {
  let left = n
  while (left > 0) {
    const chunk = await input.some(Math.min(left, 1 << 20))
    if (chunk.length === 0) throw new BundleError('malformed', 'The bundle is malformed: it ends inside a member')
    left -= chunk.length
  }
}
