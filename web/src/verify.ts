// Receipts checked in the browser, as `src/client/receipts.rs` and `verify_receipt` check them:
// a C2SP tlog-proof whose checkpoint the log key signed, whose entry is included under that
// checkpoint, and whose entry parses strictly and says what it must (the `upload.accepted` of
// this transfer with this digest; the `key.added` of this key). The log key comes from
// `/log/key`. Used by the collect page, the send page (key transparency) and the compliance
// transfer page (`#verify-status`).

import { json, segment, text, type Receipts } from './api.ts'
import { type Entry, parseEntry, parseProof, parseVerifierKey, TlogError, type Verifier, verifyProof } from './tlog.ts'
import { messageOf, say } from './ui.ts'

/** What a verified receipt proves. */
export interface ReceiptSummary {
  entry: Entry
  index: bigint
  origin: string
  treeSize: bigint
  /** The root hash of the checkpoint the receipt was verified against. */
  root: Uint8Array
}

/** Verifies the tlog-proof `receipt` under `log`: the proof, then the entry's format, and when
 * `expectDigest` is given, that the entry's digest is it. */
export async function verifyReceipt(receipt: string, log: Verifier, expectDigest?: string): Promise<ReceiptSummary> {
  const proof = parseProof(receipt)
  const { entry: bytes, checkpoint } = await verifyProof(proof, log)
  const entry = parseEntry(bytes)
  if (expectDigest !== undefined) {
    const actual = entry.fields.get('digest')
    if (actual === undefined) throw new TlogError(`the \`${entry.event}\` entry has no digest`)
    const expected = normaliseDigest(expectDigest)
    if (actual !== expected) throw new TlogError(`the log records digest ${actual}, not ${expected}`)
  }
  return { entry, index: proof.index, origin: checkpoint.origin, treeSize: checkpoint.size, root: checkpoint.root }
}

function normaliseDigest(d: string): string {
  return `sha256:${(d.startsWith('sha256:') ? d.slice(7) : d).toLowerCase()}`
}

/** The `upload.accepted` receipt of `transfer`, for ciphertext `digest` (when known). */
export async function verifyUpload(receipt: string, log: Verifier, transfer: string, digest?: string): Promise<ReceiptSummary> {
  const summary = await verifyReceipt(receipt, log, digest)
  if (summary.entry.event !== 'upload.accepted') {
    throw new TlogError(`the receipt proves \`${summary.entry.event}\`, not \`upload.accepted\``)
  }
  const actual = summary.entry.fields.get('transfer') ?? ''
  if (actual !== transfer) throw new TlogError(`the receipt is for transfer \`${actual}\`, not \`${transfer}\``)
  return summary
}

/**
 * The commitment by which log entries name a user: `hex(HMAC-SHA256(salt, "ORG/NAME"))`, with the
 * salt (64 hex digits) the directory gives beside the user's keys (`src/names.rs`).
 */
export async function nameCommitment(saltHex: string, user: string): Promise<string> {
  if (!/^[0-9a-f]{64}$/.test(saltHex)) throw new TlogError('the directory gave a name salt that is not 64 hex digits')
  const salt = new Uint8Array(saltHex.match(/../g)!.map((h) => parseInt(h, 16)))
  const key = await crypto.subtle.importKey('raw', salt, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, new TextEncoder().encode(user)))
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Key transparency: the receipt is for the `key.added` entry of the key with `fingerprint`, and
 * that entry registers it to `owner` (its `owner` commitment is the owner's name under `salt`).
 */
export async function verifyKey(
  receipt: string,
  log: Verifier,
  fingerprint: string,
  owner: string,
  salt: string,
): Promise<ReceiptSummary> {
  const summary = await verifyReceipt(receipt, log)
  const logged = summary.entry.fields.get('fingerprint') ?? ''
  if (summary.entry.event !== 'key.added' || logged !== fingerprint) {
    throw new TlogError(`the log entry is \`${summary.entry.event}\` for key \`${logged}\`, not the registration of \`${fingerprint}\``)
  }
  if (summary.entry.fields.get('owner') !== (await nameCommitment(salt, owner))) {
    throw new TlogError(`the log entry does not register the key to \`${owner}\``)
  }
  return summary
}

/** Where this browser keeps the log key it pinned on first use of this gateway. */
const PINNED_LOG_KEY = 'sealpost.pinned-log-key'

/**
 * The log's verifier key, pinned: the first key this browser sees at `/log/key` is kept (per
 * gateway origin), and every later check uses it, so a gateway that starts serving another key
 * (to hide a rewritten log behind a new one) is caught instead of trusted. A key the operators
 * rotated is accepted only after the person clears this site's data, having confirmed the new key
 * with them (the log page shows it).
 */
export async function logKey(): Promise<Verifier> {
  const served = (await text('/log/key')).trim()
  let pinned: string | null = null
  try {
    pinned = window.localStorage.getItem(PINNED_LOG_KEY)
    if (pinned === null) window.localStorage.setItem(PINNED_LOG_KEY, served)
  } catch {
    // No storage (a locked-down profile): the key is checked against the log's own signature only.
  }
  if (pinned !== null && pinned !== served) {
    throw new TlogError(
      `the gateway now serves the log key \`${served}\`, but this browser pinned \`${pinned}\` when it first used this gateway: ` +
        'do not rely on its receipts until the operators confirm a key rotation; then clear this site\'s data to pin the new key',
    )
  }
  return parseVerifierKey(pinned ?? served)
}

/** The transfer's receipts from the gateway. */
export async function receipts(transfer: string): Promise<Receipts> {
  return json<Receipts>(`/api/v1/transfers/${segment(transfer)}/receipts`)
}

/**
 * The upload as the log records it: fetches the transfer's receipts and the log key, verifies
 * the `upload.accepted` receipt and returns the digest it logs. `undefined` when the log holds no
 * such receipt yet.
 */
export async function loggedUpload(transfer: string): Promise<{ digest: string; summary: ReceiptSummary } | undefined> {
  const [answer, log] = await Promise.all([receipts(transfer), logKey()])
  const upload = answer.receipts.find((r) => r.event === 'upload.accepted')
  if (!upload) return undefined
  const summary = await verifyUpload(upload.receipt, log, transfer)
  return { digest: summary.entry.fields.get('digest') ?? '', summary }
}

/** The compliance transfer page: `#verify-status` gets the verdict on every receipt of the
 * transfer named by `<main data-transfer>`. */
export async function verifyStatus(): Promise<void> {
  const region = document.getElementById('verify-status')
  const transfer = document.querySelector<HTMLElement>('main[data-transfer]')?.dataset.transfer
  if (!region || !transfer) return
  if (!region.hasAttribute('aria-live')) region.setAttribute('aria-live', 'polite')
  say(region, 'Checking the receipts against the log key…')
  try {
    const [answer, log] = await Promise.all([receipts(transfer), logKey()])
    if (answer.receipts.length === 0) {
      say(region, 'Not verified yet: the log holds no receipt for this transfer. Reload the page in a minute.')
      return
    }
    const lines: string[] = []
    for (const r of answer.receipts) {
      const s = await verifyReceipt(r.receipt, log)
      const about = s.entry.fields.get('transfer')
      if (about !== transfer) throw new TlogError(`the \`${r.event}\` receipt is for transfer \`${about ?? 'none'}\``)
      lines.push(`${s.entry.event} (entry ${s.index})`)
    }
    say(
      region,
      `Verified: all ${answer.receipts.length} receipts are in the log ${log.name}, signed by its key ${log.keyId.toString(16).padStart(8, '0')}: ${lines.join(', ')}.`,
    )
    region.dataset.verified = 'true'
  } catch (e) {
    region.dataset.verified = 'false'
    say(region, `Verification failed: ${messageOf(e)}. Do not rely on this transfer's record; tell the gateway's operators.`)
  }
}
