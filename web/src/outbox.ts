// The outbox: where the ciphertext of a send waits while it uploads, so that a reload or a
// dropped connection resumes the upload rather than encrypting again. The ciphertext is kept in
// the origin-private file system (OPFS); a small record in localStorage names it, with the
// addressing and the signed manifest (never a file name: the bundle's names are inside the
// encryption). Browsers without a writable OPFS keep the ciphertext in memory, and then a
// reload cannot resume.

import { b64decode, b64encode } from './tlog.ts'

/** What a send in progress is, without its files. */
export interface Pending {
  /** Random id naming the ciphertext file and the tus fingerprint. */
  id: string
  /** Recipients, ORG/NAME. */
  to: string[]
  expires: string
  classification: string
  /** Ciphertext bytes. */
  size: number
  /** When it was encrypted (ISO 8601). */
  created: string
  /** SHA-256 of the ciphertext, `sha256:<hex>`. */
  digest?: string
  /** The signed manifest v2 sent with the upload's creation, when this browser signed it. */
  signed?: SignedManifest
}

/** A manifest v2 with its signature (standard base64) and key (`sha256:…`). */
export interface SignedManifest {
  manifest: string
  signature: string
  key: string
}

const RECORD = 'sealpost-outbox'
const DIR = 'sealpost-outbox'

/** Whether the OPFS can hold the ciphertext. */
export function canStore(): boolean {
  return (
    typeof navigator !== 'undefined' &&
    typeof navigator.storage?.getDirectory === 'function' &&
    typeof FileSystemFileHandle !== 'undefined' &&
    'createWritable' in FileSystemFileHandle.prototype
  )
}

async function dir(): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory()
  return root.getDirectoryHandle(DIR, { create: true })
}

export function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16))
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
}

/** Writes the ciphertext stream into the outbox and returns it as a File (read in pieces by the
 * upload). Without a writable OPFS, returns a Blob held in memory. */
export async function store(id: string, ciphertext: ReadableStream<Uint8Array>): Promise<Blob> {
  if (!canStore()) {
    const parts: Blob[] = []
    let buffer: Uint8Array[] = []
    let buffered = 0
    const reader = ciphertext.getReader()
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      buffer.push(value.slice())
      buffered += value.length
      if (buffered >= 8 << 20) {
        parts.push(new Blob(buffer as BlobPart[]))
        buffer = []
        buffered = 0
      }
    }
    return new Blob([...parts, ...(buffer as BlobPart[])])
  }
  const handle = await (await dir()).getFileHandle(`${id}.age`, { create: true })
  const writable = await handle.createWritable()
  await ciphertext.pipeTo(writable as unknown as WritableStream<Uint8Array>)
  return handle.getFile()
}

/** Remembers the send, once its ciphertext is complete in the outbox. */
export function remember(p: Pending): void {
  localStorage.setItem(RECORD, JSON.stringify(p))
}

/** The unfinished send and its ciphertext, if both are there and agree; stray files and records
 * are removed. */
export async function unfinished(): Promise<{ pending: Pending; file: File } | undefined> {
  if (!canStore()) return undefined
  let pending: Pending | undefined
  try {
    const raw = localStorage.getItem(RECORD)
    pending = raw ? (JSON.parse(raw) as Pending) : undefined
  } catch {
    pending = undefined
  }
  const d = await dir()
  let file: File | undefined
  for await (const [name] of (d as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) {
    if (pending && name === `${pending.id}.age`) {
      file = await (await d.getFileHandle(name)).getFile()
    } else {
      await d.removeEntry(name).catch(() => {})
    }
  }
  if (!pending || !file || file.size !== pending.size) {
    await forget(pending?.id)
    return undefined
  }
  return { pending, file }
}

/** Deletes the send's ciphertext and record. */
export async function forget(id: string | undefined): Promise<void> {
  localStorage.removeItem(RECORD)
  if (id && canStore()) await (await dir()).removeEntry(`${id}.age`).catch(() => {})
}

/** tus `Upload-Metadata`: `key base64` pairs. The addressing, and with a signed manifest its
 * text, its 64 raw signature bytes and its key, each base64 as tus requires. */
export function uploadMetadata(pending: Pick<Pending, 'to' | 'expires' | 'classification' | 'signed'>): string {
  const text = (v: string) => b64encode(new TextEncoder().encode(v))
  const pairs = [
    ['to', text(pending.to.join(' '))],
    ['expires', text(pending.expires)],
    ['classification', text(pending.classification)],
  ]
  if (pending.signed) {
    const raw = b64decode(pending.signed.signature)
    if (!raw || raw.length !== 64) throw new Error('The manifest’s signature is not 64 bytes. Nothing was sent; try again.')
    // The 64 raw bytes, base64: the same text as the signature's own standard base64.
    pairs.push(['manifest', text(pending.signed.manifest)], ['manifest_signature', b64encode(raw)], ['manifest_key', text(pending.signed.key)])
  }
  return pairs.map(([k, v]) => `${k} ${v}`).join(',')
}
