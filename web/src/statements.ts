// The texts a person signs in the browser, byte for byte as the gateway checks them (issue 13's
// shared formats): the delivery statement a recipient signs after the bundle decrypted and its
// digest matched the logged one, and the manifest v2 a sender signs before the upload. Pure, and
// WebCrypto Ed25519 for the signatures: no page, no storage, no fetching.
//
// Every text is UTF-8 lines, each ending in one `\n`; the builders refuse a value that would
// break a line or the format, and the readers accept only the canonical text (parse, render
// again, compare).

import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { b64decode, b64encode } from './tlog.ts'

/** Why a statement or manifest cannot be built or read. */
export class StatementError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'StatementError'
  }
}

/** The prefix of a signing key's public string in the directory. */
export const SIGNING_PREFIX = 'sealpost-signing1'

const DELIVERY_VERSION = 'sealpost.delivery/v1'
const MANIFEST_VERSION = 'sealpost.manifest/v2'
const TRANSFER = /^[0-9a-f]{32}$/
const DIGEST = /^sha256:[0-9a-f]{64}$/
// ORG/NAME: two non-empty parts, nothing that would break a line or a field.
const USER = /^[^/\s]+\/[^/\s]+$/
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/
const DECIMAL = /^(?:0|[1-9][0-9]*)$/
const CLASSIFICATION = /^[A-Z][A-Z0-9-]*$/

// ---- encodings -----------------------------------------------------------------------------

/** Unpadded base64url (the directory's spelling of a signing key). */
export function b64url(bytes: Uint8Array): string {
  return b64encode(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** Decodes canonical unpadded base64url, or returns undefined. */
export function b64urlDecode(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined
  const std = text.replace(/-/g, '+').replace(/_/g, '/')
  const out = b64decode(std + '='.repeat((4 - (std.length % 4)) % 4))
  return out && b64url(out) === text ? out : undefined
}

/** The directory's public string of a 32-byte Ed25519 public key: `sealpost-signing1…`. */
export function signingPublic(raw: Uint8Array): string {
  if (raw.length !== 32) throw new StatementError(`an Ed25519 public key is 32 bytes, not ${raw.length}`)
  return SIGNING_PREFIX + b64url(raw)
}

/** The 32 key bytes of a `sealpost-signing1…` string. */
export function signingKeyBytes(pub: string): Uint8Array {
  const raw = pub.startsWith(SIGNING_PREFIX) ? b64urlDecode(pub.slice(SIGNING_PREFIX.length)) : undefined
  if (!raw || raw.length !== 32) throw new StatementError(`\`${pub}\` is not a \`${SIGNING_PREFIX}…\` key`)
  return raw
}

/** A key's name on the wire: `sha256:` and the hex SHA-256 of its public string. */
export function keyFingerprint(pub: string): string {
  return `sha256:${bytesToHex(sha256(new TextEncoder().encode(pub)))}`
}

/** A time as the statement writes it: UTC, whole seconds (`2026-12-06T09:30:00Z`). */
export function statementTime(t: Date): string {
  if (Number.isNaN(t.getTime())) throw new StatementError('the time is not a valid date')
  return t.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Compares two strings by their UTF-8 bytes (as Rust sorts `String`s). */
export function compareBytes(a: string, b: string): number {
  const enc = new TextEncoder()
  const x = enc.encode(a)
  const y = enc.encode(b)
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!
  }
  return x.length - y.length
}

function need(ok: boolean, message: string): void {
  if (!ok) throw new StatementError(message)
}

/** The lines of a text that must end in `\n` and hold no `\r` or blank line. */
function linesOf(text: string, what: string): string[] {
  need(text.endsWith('\n'), `the ${what} does not end in a newline`)
  need(!text.includes('\r'), `the ${what} holds a carriage return`)
  const lines = text.slice(0, -1).split('\n')
  need(lines.every((l) => l !== ''), `the ${what} holds a blank line`)
  return lines
}

/** The value of line `n` (`key value`), or an error naming it. */
function field(lines: string[], n: number, key: string, what: string): string {
  const line = lines[n]
  need(line !== undefined && line.startsWith(key + ' '), `line ${n + 1} of the ${what} is not \`${key} …\``)
  return line!.slice(key.length + 1)
}

// ---- the delivery statement (spec section 1) -------------------------------------------------

/** What a recipient signs for. */
export interface Delivery {
  /** The transfer id: 32 lowercase hex. */
  transfer: string
  /** `sha256:<hex>` of the ciphertext the page hashed and found equal to the logged one. */
  digest: string
  /** The signer, ORG/NAME as the gateway spells it. */
  recipient: string
  /** When it is signed (written in whole UTC seconds). */
  time: Date
  /** The checkpoint the upload receipt was verified against: its size and root hash. */
  checkpoint: { size: bigint; root: Uint8Array }
}

/** The delivery statement's exact text. */
export function deliveryStatement(d: Delivery): string {
  need(TRANSFER.test(d.transfer), `\`${d.transfer}\` is not a transfer id (32 lowercase hex digits)`)
  need(DIGEST.test(d.digest), `\`${d.digest}\` is not a sha256 digest in lowercase hex`)
  need(USER.test(d.recipient), `\`${d.recipient}\` is not ORG/NAME`)
  need(d.checkpoint.size >= 1n, 'the checkpoint is of an empty log')
  need(d.checkpoint.root.length === 32, 'the checkpoint root is not 32 bytes')
  return (
    `${DELIVERY_VERSION}\n` +
    `transfer ${d.transfer}\n` +
    `digest ${d.digest}\n` +
    `recipient ${d.recipient}\n` +
    `time ${statementTime(d.time)}\n` +
    `checkpoint ${d.checkpoint.size} ${b64encode(d.checkpoint.root)}\n`
  )
}

/** Reads a delivery statement strictly: only its canonical text is accepted. */
export function parseDeliveryStatement(text: string): Delivery {
  const what = 'delivery statement'
  const lines = linesOf(text, what)
  need(lines[0] === DELIVERY_VERSION, `the ${what} does not start with \`${DELIVERY_VERSION}\``)
  need(lines.length === 6, `the ${what} has ${lines.length} lines, not 6`)
  const time = field(lines, 4, 'time', what)
  need(TIME.test(time), `the ${what}'s time \`${time}\` is not UTC in whole seconds`)
  const [size, root, ...more] = field(lines, 5, 'checkpoint', what).split(' ')
  need(more.length === 0 && DECIMAL.test(size ?? '') && root !== undefined, `the ${what}'s checkpoint is not \`SIZE ROOT\``)
  const rootBytes = b64decode(root!)
  need(rootBytes?.length === 32, `the ${what}'s checkpoint root is not the base64 of 32 bytes`)
  const d: Delivery = {
    transfer: field(lines, 1, 'transfer', what),
    digest: field(lines, 2, 'digest', what),
    recipient: field(lines, 3, 'recipient', what),
    time: new Date(time),
    checkpoint: { size: BigInt(size!), root: rootBytes! },
  }
  need(deliveryStatement(d) === text, `the ${what} is not in its canonical form`)
  return d
}

// ---- the manifest v2 (spec section 3) --------------------------------------------------------

/** What a sender signs before the upload. */
export interface ManifestV2 {
  /** The uploader, ORG/NAME. */
  sender: string
  /** `sha256:<hex>` of the whole age file. */
  digest: string
  /** As the gateway resolves it, such as `OFFICIAL-SENSITIVE`. */
  classification: string
  /** The transfer's lifetime in whole seconds. */
  expires: number
  /** The addressed recipients, ORG/NAME (sorted bytewise and each once in the text). */
  recipients: string[]
}

/** The manifest's exact text: the recipients sorted by their bytes, each once. */
export function manifestV2(m: ManifestV2): string {
  need(USER.test(m.sender), `\`${m.sender}\` is not ORG/NAME`)
  need(DIGEST.test(m.digest), `\`${m.digest}\` is not a sha256 digest in lowercase hex`)
  need(CLASSIFICATION.test(m.classification), `\`${m.classification}\` is not a classification`)
  need(Number.isSafeInteger(m.expires) && m.expires > 0, `\`${m.expires}\` is not a lifetime in whole seconds`)
  need(m.recipients.length > 0, 'the manifest names no recipient')
  for (const r of m.recipients) need(USER.test(r), `\`${r}\` is not ORG/NAME`)
  const recipients = [...new Set(m.recipients)].sort(compareBytes)
  return (
    `${MANIFEST_VERSION}\n` +
    `sender ${m.sender}\n` +
    `digest ${m.digest}\n` +
    `classification ${m.classification}\n` +
    `expires ${m.expires}\n` +
    recipients.map((r) => `recipient ${r}\n`).join('')
  )
}

/** Reads a manifest v2 strictly: only its canonical text is accepted. */
export function parseManifestV2(text: string): ManifestV2 {
  const what = 'manifest'
  const lines = linesOf(text, what)
  need(lines[0] === MANIFEST_VERSION, `the ${what} does not start with \`${MANIFEST_VERSION}\``)
  need(lines.length >= 6, `the ${what} names no recipient`)
  const expires = field(lines, 4, 'expires', what)
  need(DECIMAL.test(expires) && Number.isSafeInteger(Number(expires)), `the ${what}'s expiry \`${expires}\` is not whole seconds`)
  const m: ManifestV2 = {
    sender: field(lines, 1, 'sender', what),
    digest: field(lines, 2, 'digest', what),
    classification: field(lines, 3, 'classification', what),
    expires: Number(expires),
    recipients: lines.slice(5).map((_, i) => field(lines, i + 5, 'recipient', what)),
  }
  need(manifestV2(m) === text, `the ${what} is not in its canonical form (recipients sorted, each once)`)
  return m
}

/** The lifetime the gateway resolves from an `expires` value such as `72h` or `7d` (humantime's
 * units), in whole seconds. */
export function expirySeconds(value: string): number {
  const units: Record<string, number> = {
    s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
    m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
    h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
    d: 86400, day: 86400, days: 86400,
    w: 604800, week: 604800, weeks: 604800,
  }
  const parts = value.trim().split(/\s+/).filter((p) => p !== '')
  let total = 0
  for (const part of parts.length ? parts : ['']) {
    const m = /^(\d+)([a-z]+)$/.exec(part)
    const unit = m ? units[m[2]!] : undefined
    if (!m || unit === undefined) throw new StatementError(`\`${value}\` is not a duration such as 72h or 7d`)
    total += Number(m[1]) * unit
  }
  need(Number.isSafeInteger(total) && total > 0, `\`${value}\` is not a duration such as 72h or 7d`)
  return total
}

// ---- signatures ------------------------------------------------------------------------------

/** Signs the exact bytes of `text` with an Ed25519 private key; standard base64 (padded) of the
 * 64 signature bytes. */
export async function signText(privateKey: CryptoKey, text: string): Promise<string> {
  const sig = new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, privateKey, new TextEncoder().encode(text)))
  return b64encode(sig)
}

/** Whether `signature` (standard base64) is the `sealpost-signing1…` key's signature of `text`. */
export async function verifyText(pub: string, text: string, signature: string): Promise<boolean> {
  const sig = b64decode(signature)
  if (!sig || sig.length !== 64) return false
  let key: CryptoKey
  try {
    key = await crypto.subtle.importKey('raw', signingKeyBytes(pub) as BufferSource, { name: 'Ed25519' }, false, ['verify'])
  } catch {
    return false
  }
  return crypto.subtle.verify({ name: 'Ed25519' }, key, sig as BufferSource, new TextEncoder().encode(text))
}
