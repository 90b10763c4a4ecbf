// The transparency log's formats, checked in the browser: a port of the Rust `tlog` module
// (`src/transparency/tlog/{merkle,note,checkpoint,proof}.rs`) and of the strict entry reader
// (`src/transparency/verify/entry.rs`). Pure: no fetching, no page. Signatures are checked with
// WebCrypto's Ed25519; the rest is SHA-256 from @noble/hashes.

import { sha256 } from '@noble/hashes/sha2.js'

/** Why a receipt, note, checkpoint or entry was refused; the text names the rule broken. */
export class TlogError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'TlogError'
  }
}

const enc = new TextEncoder()

// ---- base64 (the Rust `STANDARD` engine: canonical padding, no stray bits) -------------------

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export function b64encode(bytes: Uint8Array): string {
  let s = ''
  for (const b of bytes) s += String.fromCharCode(b)
  return btoa(s)
}

/** Decodes canonical standard base64, or returns undefined. */
export function b64decode(text: string): Uint8Array | undefined {
  if (!B64.test(text)) return undefined
  const raw = atob(text)
  const out = Uint8Array.from(raw, (c) => c.charCodeAt(0))
  return b64encode(out) === text ? out : undefined
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

// ---- RFC 6962 / RFC 9162 Merkle trees (merkle.rs) --------------------------------------------

/** `SHA-256(0x00 || entry)` (RFC 6962 section 2.1). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return sha256.create().update(new Uint8Array([0])).update(entry).digest()
}

/** `SHA-256(0x01 || left || right)` (RFC 6962 section 2.1). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256.create().update(new Uint8Array([1])).update(left).update(right).digest()
}

/** The root an inclusion proof leads to (RFC 9162 section 2.1.3.2 steps 1 to 5). */
export function rootFromInclusionProof(leaf: Uint8Array, index: bigint, size: bigint, proof: Uint8Array[]): Uint8Array {
  if (index >= size) throw new TlogError(`leaf index ${index} is outside a tree of size ${size}`)
  let fn = index
  let sn = size - 1n
  let r = leaf
  for (const p of proof) {
    if (sn === 0n) throw new TlogError('proof has more hashes than the tree sizes allow')
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r)
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n
          sn >>= 1n
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn >>= 1n
    sn >>= 1n
  }
  if (sn !== 0n) throw new TlogError('proof has fewer hashes than the tree sizes require')
  return r
}

/** Verifies that `leaf` is leaf `index` of the tree of `size` leaves with root `root`. */
export function verifyInclusion(leaf: Uint8Array, index: bigint, size: bigint, proof: Uint8Array[], root: Uint8Array): void {
  if (!equalBytes(rootFromInclusionProof(leaf, index, size, proof), root)) {
    throw new TlogError('inclusion proof does not lead to the checkpoint root')
  }
}

// ---- C2SP signed-note (note.rs) --------------------------------------------------------------

const SIG_TYPE_ED25519 = 0x01
const MAX_SIGNATURES = 100
const SIG_PREFIX = '\u2014 '

// Rust's `char::is_whitespace` (the Unicode White_Space property).
const WHITE_SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/

/** Non-empty, no (Unicode) space, no `+`. */
export function isValidName(name: string): boolean {
  return name !== '' && !WHITE_SPACE.test(name) && !name.includes('+')
}

/** `SHA-256(name || 0x0A || type || public key)[:4]`, big-endian. */
export function keyId(name: string, type: number, key: Uint8Array): number {
  const d = sha256.create().update(enc.encode(name)).update(new Uint8Array([0x0a, type])).update(key).digest()
  return ((d[0]! << 24) | (d[1]! << 16) | (d[2]! << 8) | d[3]!) >>> 0
}

export interface NoteSignature {
  name: string
  keyId: number
  signature: Uint8Array
}

/** A log verifier key (`name+hexid+base64(0x01 || key)`), ready for WebCrypto. */
export interface Verifier {
  name: string
  keyId: number
  publicKey: Uint8Array
  key: CryptoKey
}

// The encodings of the Ed25519 points of small order, sign bit cleared (as libsodium's list):
// `verify_strict` refuses them as key or as R.
const SMALL_ORDER = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
]

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Whether a 32-byte point encoding is one of small order (either sign). */
export function isSmallOrder(point: Uint8Array): boolean {
  const masked = Uint8Array.from(point)
  masked[31] = (masked[31] ?? 0) & 0x7f
  return SMALL_ORDER.includes(hex(masked))
}

// The group order L, little-endian: S must be below it (RFC 8032 section 5.1.7).
const L = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
])

function isCanonicalScalar(s: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! < L[i]!) return true
    if (s[i]! > L[i]!) return false
  }
  return false
}

/** Ed25519 verification with the strict checks of `verify_strict`: 64-byte signature, S below
 * the group order, no small-order key or R. */
export async function ed25519Verify(v: Verifier, message: Uint8Array, sig: Uint8Array): Promise<boolean> {
  if (sig.length !== 64) return false
  if (!isCanonicalScalar(sig.subarray(32)) || isSmallOrder(sig.subarray(0, 32)) || isSmallOrder(v.publicKey)) {
    return false
  }
  try {
    return await crypto.subtle.verify({ name: 'Ed25519' }, v.key, sig as BufferSource, message as BufferSource)
  } catch {
    return false
  }
}

/** Reads a verifier key string, checking its type byte and key ID. */
export async function parseVerifierKey(vkey: string): Promise<Verifier> {
  const s = vkey.replace(new RegExp(WHITE_SPACE.source + '+$'), '')
  const first = s.indexOf('+')
  const second = first < 0 ? -1 : s.indexOf('+', first + 1)
  if (second < 0) throw new TlogError('key is not of the form `name+hexid+base64`')
  const name = s.slice(0, first)
  const hexId = s.slice(first + 1, second)
  if (!isValidName(name)) throw new TlogError(`key name \`${name}\` is empty or contains a space or \`+\``)
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw new TlogError('key is not of the form `name+hexid+base64`')
  const raw = b64decode(s.slice(second + 1))
  if (!raw || raw.length < 1) throw new TlogError('key is not of the form `name+hexid+base64`')
  if (raw[0] !== SIG_TYPE_ED25519) throw new TlogError(`key has signature type ${raw[0]}, expected 1`)
  const publicKey = raw.slice(1)
  if (publicKey.length !== 32) throw new TlogError('key material is not a valid ed25519 key')
  const stated = parseInt(hexId, 16) >>> 0
  const computed = keyId(name, SIG_TYPE_ED25519, publicKey)
  if (stated !== computed) throw new TlogError('key id does not match the key')
  let key: CryptoKey
  try {
    key = await crypto.subtle.importKey('raw', publicKey as BufferSource, { name: 'Ed25519' }, false, ['verify'])
  } catch {
    throw new TlogError('key material is not a valid ed25519 key')
  }
  return { name, keyId: stated, publicKey, key }
}

/** A parsed, not yet verified, signed note. */
export interface Note {
  text: string
  signatures: NoteSignature[]
}

/** Parses a signed note: no control character but newline, the text up to the last blank line,
 * then 1 to 100 signature lines `— name base64(keyid || signature)`. */
export function parseNote(note: string): Note {
  for (let i = 0; i < note.length; i++) {
    const c = note.charCodeAt(i)
    if (c < 0x20 && c !== 0x0a) throw new TlogError(`note contains control character ${c} at ${i}`)
  }
  const split = note.lastIndexOf('\n\n')
  if (split < 0) throw new TlogError('note has no signature block after a blank line')
  const text = note.slice(0, split + 1)
  const sigs = note.slice(split + 2)
  if (sigs === '') throw new TlogError('note has no signature block after a blank line')
  if (!sigs.endsWith('\n')) throw new TlogError('note does not end in a newline')
  const signatures: NoteSignature[] = []
  sigs
    .slice(0, -1)
    .split('\n')
    .forEach((line, i) => {
      if (i >= MAX_SIGNATURES) throw new TlogError(`note has more than ${MAX_SIGNATURES} signatures`)
      const malformed = () => new TlogError(`signature line ${i + 1} is malformed`)
      if (!line.startsWith(SIG_PREFIX)) throw malformed()
      const rest = line.slice(SIG_PREFIX.length)
      const space = rest.indexOf(' ')
      if (space < 0) throw malformed()
      const name = rest.slice(0, space)
      if (!isValidName(name)) throw new TlogError(`key name \`${name}\` is empty or contains a space or \`+\``)
      const raw = b64decode(rest.slice(space + 1))
      if (!raw || raw.length < 5) throw malformed()
      const id = ((raw[0]! << 24) | (raw[1]! << 16) | (raw[2]! << 8) | raw[3]!) >>> 0
      signatures.push({ name, keyId: id, signature: raw.slice(4) })
    })
  return { text, signatures }
}

/** Checks a note's signatures against `verifiers`: unknown keys are set aside, every signature by
 * a known key must verify, at least one must. Returns the verified signatures. */
export async function verifyNote(note: Note, verifiers: Verifier[]): Promise<NoteSignature[]> {
  const verified: NoteSignature[] = []
  const body = enc.encode(note.text)
  for (const sig of note.signatures) {
    const known = verifiers.filter((v) => v.name === sig.name && v.keyId === sig.keyId)
    if (known.length === 0) continue
    if (known.length > 1) throw new TlogError(`more than one verifier key is named \`${sig.name}\``)
    if (verified.some((s) => s.name === sig.name && s.keyId === sig.keyId)) continue
    if (!(await ed25519Verify(known[0]!, body, sig.signature))) {
      throw new TlogError(`signature by \`${sig.name}\` does not verify`)
    }
    verified.push(sig)
  }
  if (verified.length === 0) throw new TlogError('note has no signature from a known key')
  return verified
}

// ---- C2SP tlog-checkpoint (checkpoint.rs) ----------------------------------------------------

export interface Checkpoint {
  origin: string
  size: bigint
  root: Uint8Array
  extensions: string[]
}

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

function isCanonicalDecimal(s: string): boolean {
  return /^(0|[1-9][0-9]*)$/.test(s) && BigInt(s) <= 18446744073709551615n
}

/** Parses checkpoint note text strictly: origin, size, base64 root, extension lines. */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new TlogError('checkpoint needs origin, size and root hash lines')
  const lines = text.slice(0, -1).split('\n')
  if (lines.length < 3) throw new TlogError('checkpoint needs origin, size and root hash lines')
  const [origin, size, root, ...extensions] = lines as [string, string, string, ...string[]]
  if (CONTROL.test(size)) throw new TlogError('checkpoint line 2 contains a control character')
  if (CONTROL.test(root)) throw new TlogError('checkpoint line 3 contains a control character')
  if (!isCanonicalDecimal(size)) throw new TlogError(`checkpoint size \`${size}\` is not a decimal number`)
  const rootBytes = b64decode(root)
  if (!rootBytes || rootBytes.length !== 32) throw new TlogError(`checkpoint root hash \`${root}\` is not 32 bytes`)
  if (origin === '') throw new TlogError('checkpoint origin is empty')
  if (CONTROL.test(origin)) throw new TlogError('checkpoint line 1 contains a control character')
  extensions.forEach((ext, i) => {
    if (ext === '') throw new TlogError(`checkpoint extension line ${i + 4} is empty`)
    if (CONTROL.test(ext)) throw new TlogError(`checkpoint line ${i + 4} contains a control character`)
  })
  return { origin, size: BigInt(size), root: rootBytes, extensions }
}

/** Verifies a signed checkpoint under a policy trusting one log key and no witnesses
 * (`Policy::log_only` then `verify_checkpoint`): the log's signature verifies and the origin is
 * the key's name. Witness cosignatures are left unchecked, as unknown keys. */
export async function verifyCheckpoint(signed: string, log: Verifier): Promise<Checkpoint> {
  const note = parseNote(signed)
  const verified = await verifyNote(note, [log])
  if (!verified.some((s) => s.name === log.name && s.keyId === log.keyId)) {
    throw new TlogError(`checkpoint is not signed by the log key \`${log.name}\``)
  }
  const checkpoint = parseCheckpoint(note.text)
  if (checkpoint.origin !== log.name) {
    throw new TlogError(`checkpoint origin \`${checkpoint.origin}\` does not match the log key name \`${log.name}\``)
  }
  return checkpoint
}

// ---- C2SP tlog-proof (proof.rs) --------------------------------------------------------------

const PROOF_HEADER = 'c2sp.org/tlog-proof@v1'
const MAX_PROOF_HASHES = 64

export interface TlogProof {
  extra: Uint8Array | undefined
  index: bigint
  proof: Uint8Array[]
  checkpoint: string
}

/** Parses the text form strictly; the checkpoint must be a well-formed signed note. */
export function parseProof(text: string): TlogProof {
  if (!text.startsWith(PROOF_HEADER + '\n')) throw new TlogError(`proof does not start with \`${PROOF_HEADER}\``)
  let rest = text.slice(PROOF_HEADER.length + 1)
  const nextLine = (): string | undefined => {
    const nl = rest.indexOf('\n')
    if (nl < 0) return undefined
    const line = rest.slice(0, nl)
    rest = rest.slice(nl + 1)
    return line
  }
  let lineNo = 2
  let line = nextLine()
  if (line === undefined) throw new TlogError('proof has no valid `index` line')
  let extra: Uint8Array | undefined
  if (line.startsWith('extra ')) {
    extra = b64decode(line.slice(6))
    if (!extra) throw new TlogError('proof `extra` line is not base64')
    line = nextLine()
    if (line === undefined) throw new TlogError('proof has no valid `index` line')
    lineNo += 1
  }
  const index = line.startsWith('index ') ? line.slice(6) : ''
  if (!isCanonicalDecimal(index)) throw new TlogError('proof has no valid `index` line')
  const proof: Uint8Array[] = []
  for (;;) {
    lineNo += 1
    const l = nextLine()
    if (l === undefined) throw new TlogError('proof has no checkpoint after a blank line')
    if (l === '') break
    if (proof.length === MAX_PROOF_HASHES) throw new TlogError(`proof has more than ${MAX_PROOF_HASHES} hashes`)
    const hash = b64decode(l)
    if (!hash || hash.length !== 32) throw new TlogError(`proof line ${lineNo} is not the base64 of a 32-byte hash`)
    proof.push(hash)
  }
  if (rest === '') throw new TlogError('proof has no checkpoint after a blank line')
  parseNote(rest)
  return { extra, index: BigInt(index), proof, checkpoint: rest }
}

/** Verifies a proof for the entry in `extra`: the checkpoint under the log key, then the leaf
 * hash of `extra` included at `index` under its root (RFC 9162 section 2.1.3.2). Returns the
 * now authenticated entry and the checkpoint. */
export async function verifyProof(proof: TlogProof, log: Verifier): Promise<{ entry: Uint8Array; checkpoint: Checkpoint }> {
  if (!proof.extra) throw new TlogError('proof has no `extra` line with the entry')
  const checkpoint = await verifyCheckpoint(proof.checkpoint, log)
  verifyInclusion(leafHash(proof.extra), proof.index, checkpoint.size, proof.proof, checkpoint.root)
  return { entry: proof.extra, checkpoint }
}

// ---- log entries (verify/entry.rs) -----------------------------------------------------------

const ENTRY_VERSION = 'sealpost.audit/v1'
const MAX_ENTRY_BYTES = 65_535
const FIXED_KEYS = ['event', 'time', 'actor', 'transfer', 'subject', 'code'] as const
const REQUIRED: Record<string, string[]> = {
  'upload.accepted': ['transfer', 'size', 'digest'],
  'link.issued': ['transfer', 'subject', 'link'],
  'download.started': ['transfer', 'link'],
  'download.completed': ['transfer', 'link', 'size', 'digest'],
  'download.failed': ['transfer', 'link'],
  'download.partial': ['transfer', 'link', 'range', 'size'],
  'link.revoked': ['transfer', 'link'],
  'link.expired': ['transfer', 'link'],
}

/** A parsed log entry: the fixed keys and the facts, in order. */
export interface Entry {
  event: string
  time: string
  fields: Map<string, string>
}

const isKey = (s: string) => /^[a-z][a-z0-9_.-]*$/.test(s)
const isWord = (s: string) => /^[a-z][a-z0-9_]*$/.test(s)
const isDigest = (s: string) => /^sha256:[0-9a-f]{64}$/.test(s)

/** Parses one entry strictly, as the Rust `parse_entry`. */
export function parseEntry(bytes: Uint8Array): Entry {
  if (bytes.length > MAX_ENTRY_BYTES) throw new TlogError(`entry is ${bytes.length} bytes long`)
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    throw new TlogError('entry is not valid utf-8')
  }
  if (!text.endsWith('\n')) throw new TlogError('entry does not end in a newline')
  const lines = text.slice(0, -1).split('\n')
  if (lines[0] !== ENTRY_VERSION) throw new TlogError(`entry does not start with \`${ENTRY_VERSION}\``)
  const fields = new Map<string, string>()
  let lastRank = 0
  lines.slice(1).forEach((line, i) => {
    const number = i + 2
    if (line === '') throw new TlogError(`entry line ${number} is empty`)
    if (CONTROL.test(line)) throw new TlogError(`entry line ${number} contains a control character`)
    const space = line.indexOf(' ')
    if (space < 0) throw new TlogError(`entry line ${number} is not a \`key value\` line`)
    const key = line.slice(0, space)
    if (!isKey(key)) throw new TlogError(`entry line ${number} is not a \`key value\` line`)
    if (fields.has(key)) throw new TlogError(`entry line ${number} repeats the key \`${key}\``)
    const fixed = (FIXED_KEYS as readonly string[]).indexOf(key)
    const rank = fixed < 0 ? FIXED_KEYS.length : fixed
    if (rank < lastRank) throw new TlogError(`entry line ${number} has the key \`${key}\` out of order`)
    lastRank = rank
    fields.set(key, line.slice(space + 1))
  })
  const event = fields.get('event')
  const time = fields.get('time')
  if (event === undefined) throw new TlogError('entry has no `event` line')
  if (time === undefined) throw new TlogError('entry has no `time` line')
  const parts = event.split('.')
  if (parts.length < 2 || !parts.every(isWord)) throw new TlogError(`entry event \`${event}\` is not a lowercase dotted name`)
  const parsed = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(time) ? new Date(time) : undefined
  if (!parsed || Number.isNaN(parsed.getTime()) || parsed.toISOString() !== time) {
    throw new TlogError(`entry time \`${time}\` is not an rfc 3339 utc time with milliseconds`)
  }
  const digest = fields.get('digest')
  if (digest !== undefined && !isDigest(digest)) throw new TlogError(`entry digest \`${digest}\` is malformed`)
  const size = fields.get('size')
  if (size !== undefined && !isCanonicalDecimal(size)) throw new TlogError(`entry size \`${size}\` is malformed`)
  for (const key of REQUIRED[event] ?? []) {
    if (!fields.get(key)) throw new TlogError(`\`${event}\` entry has no \`${key}\``)
  }
  return { event, time, fields }
}
