// The sender's signature, checked on the collect page before the link is used up, as `sealpost
// fetch` checks it (src/cli/fetch.rs `check_manifest`): the manifest the gateway serves must be
// signed by a `sealpost-signing1…` key whose `key.added` entry in the log registers it to the
// sender, and must agree with the log's record of the upload (digest, sender, classification,
// signing key, the manifest's own digest) and name the person collecting. An unsigned bundle is
// not refused, but the page says so; one the log records as signed but served without its
// manifest is refused.

import { ApiError, json, segment } from './api.ts'
import type { Keys } from './api.ts'
import { keyFingerprint, parseManifestV2, verifyText } from './statements.ts'
import type { ReceiptSummary } from './verify.ts'
import { logKey, verifyKey } from './verify.ts'

/** The manifest as the gateway serves it. */
interface SignedManifest {
  manifest: string
  signature: string
  key: { fingerprint: string; public: string }
  sender: string
}

/** Why the sender's signature does not hold: the page refuses the bundle. */
export class SenderRefusal extends Error {}

/** What the check found: who signed, or that nobody did. */
export type SenderCheck = { signed: true; sender: string; fingerprint: string } | { signed: false }

async function sha256Hex(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)))
  return 'sha256:' + Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Checks transfer `id`'s manifest against `logged` (its verified `upload.accepted` receipt),
 * `digest` (the ciphertext digest the log records) and `me` (ORG/NAME of the person collecting).
 */
export async function checkSender(id: string, digest: string, logged: ReceiptSummary, me: string): Promise<SenderCheck> {
  const fact = (k: string) => logged.entry.fields.get(k)
  let served: SignedManifest
  try {
    served = await json<SignedManifest>(`/api/v1/transfers/${segment(id)}/manifest`)
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      if (fact('signed') === 'yes') {
        throw new SenderRefusal('the log records that the sender signed this upload, but the gateway serves no signed manifest')
      }
      return { signed: false }
    }
    throw e
  }
  const { manifest, signature, sender } = served
  const fingerprint = served.key.fingerprint
  const [org, name] = sender.split('/') as [string, string]
  const directory = await json<Keys>(`/api/v1/keys/${segment(org)}/${segment(name)}`)
  const key = directory.keys.find((k) => k.fingerprint === fingerprint)
  if (!key || key.stanza_type !== 'sealpost-signing' || keyFingerprint(key.recipient) !== fingerprint) {
    throw new SenderRefusal(`${sender} has no signing key ${fingerprint} in the directory`)
  }
  if (typeof key.receipt !== 'string') throw new SenderRefusal(`${sender}'s signing key is not in the transparency log`)
  try {
    await verifyKey(key.receipt, await logKey(), fingerprint, directory.user, directory.name_salt)
  } catch (e) {
    throw new SenderRefusal(`${sender}'s signing key is not the one the log recorded: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (!(await verifyText(key.recipient, manifest, signature))) {
    throw new SenderRefusal(`the manifest's signature does not verify under ${sender}'s key ${fingerprint}`)
  }
  let m
  try {
    m = parseManifestV2(manifest)
  } catch {
    // A legacy manifest (v1, signed after the upload): only the CLI reads those.
    throw new SenderRefusal('the sender signed an older kind of manifest, which this page cannot check: collect it with `sealpost fetch`')
  }
  const mismatch = (why: string) => new SenderRefusal(why)
  if (m.digest !== digest) throw mismatch(`the signed manifest is for ${m.digest}, not this bundle (${digest})`)
  if (m.sender !== sender) throw mismatch(`the signed manifest names ${m.sender} as sender, not ${sender}`)
  if (!m.recipients.includes(me)) throw mismatch(`the signed manifest does not name you (${me}) as a recipient`)
  const classification = fact('classification')
  if (classification !== undefined && classification !== m.classification) {
    throw mismatch(`the signed manifest says ${m.classification}, but the transfer is ${classification}`)
  }
  if (fact('signed') === 'no') throw mismatch('the log records this upload as unsigned, but the gateway serves a manifest')
  const loggedKey = fact('signing_key')
  if (loggedKey !== undefined && loggedKey !== fingerprint) {
    throw mismatch(`the log records signing key ${loggedKey} for this upload, but the gateway serves ${fingerprint}`)
  }
  const loggedManifest = fact('manifest')
  if (loggedManifest !== undefined && loggedManifest !== (await sha256Hex(manifest))) {
    throw mismatch('the log records another manifest for this upload than the one the gateway serves')
  }
  return { signed: true, sender, fingerprint }
}
