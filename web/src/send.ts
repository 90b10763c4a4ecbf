// The send page: recipients from the directory, files by picker or drag and drop; each
// recipient's keys fetched and checked against the transparency log (key transparency, as
// `sealpost send` does); the files bundled (the `sealpost send` format) and encrypted with
// age-encryption to every key of every recipient, streaming into the outbox (OPFS) and hashed as
// it goes; the manifest v2 (sender, digest, classification, expiry, recipients) signed with this
// browser's registered signing key, if it holds one; then a tus upload in 8 MiB pieces, the
// signed manifest in its creation's `Upload-Metadata`, that a reload or a dropped connection
// resumes; then the answer: the transfer id, whether it is held, the links and the receipt.

import { Encrypter } from 'age-encryption'
import * as tus from 'tus-js-client'
import { ApiError, csrfToken, type Directory, json, type Keys, segment, type UploadAnswer } from './api.ts'
import { BundleError, bundleLength, checkNames, writeBundle } from './bundle.ts'
import { hashing } from './hash.ts'
import { forget, newId, type Pending, remember, type SignedManifest, store, unfinished, uploadMetadata } from './outbox.ts'
import { type SigningState, signingState } from './signing.ts'
import { expirySeconds, manifestV2, signText } from './statements.ts'
import { byId, bytes, clearErrors, govukButton, messageOf, type Problem, say, showErrors } from './ui.ts'
import { logKey, receipts, verifyKey, verifyUpload } from './verify.ts'

const SIGNING_TYPE = 'sealpost-signing'
const CHUNK = 8 * 1024 * 1024
const RECIPIENT = /^[^/\s,]+\/[^/\s,]+$/

class Invalid extends Error {
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message)
  }
}

/** A refusal of the upload by the gateway, with its code; `then` is a second problem (what to
 * do, with a link). */
class Refused extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly then?: Problem,
  ) {
    super(message)
  }
}

/** The send page. */
export function sendPage(): void {
  const recipients = byId<HTMLInputElement>('recipients')
  const filesInput = byId<HTMLInputElement>('files')
  const dropZone = document.getElementById('drop-zone')
  const classification = byId<HTMLSelectElement>('classification')
  const expires = byId<HTMLSelectElement>('expires')
  const button = byId<HTMLButtonElement>('send')
  const progress = byId<HTMLProgressElement>('send-progress')
  const result = byId('send-result')
  const status = region('send-status', progress)
  const summary = errorSummary()
  const chosen = chosenList()
  const signingNote = document.getElementById('send-signing-note')
  let dropped: File[] = []
  let busy = false

  void fillDirectory(recipients)
  filesInput.addEventListener('change', showChosen)
  if (dropZone) wireDropZone(dropZone)
  button.addEventListener('click', (event) => {
    event.preventDefault()
    void send()
  })
  void resumeUnfinished()
  void announceSigning()

  function files(): File[] {
    return [...Array.from(filesInput.files ?? []), ...dropped]
  }

  function showChosen(): void {
    const all = files()
    chosen.replaceChildren(
      ...all.map((f) => {
        const li = document.createElement('li')
        li.textContent = `${f.name} (${bytes(f.size)})`
        return li
      }),
    )
    chosen.hidden = all.length === 0
  }

  function wireDropZone(zone: HTMLElement): void {
    const over = (e: DragEvent) => {
      e.preventDefault()
      zone.classList.add('sealpost-drop-zone--over')
    }
    zone.addEventListener('dragenter', over)
    zone.addEventListener('dragover', over)
    zone.addEventListener('dragleave', () => zone.classList.remove('sealpost-drop-zone--over'))
    zone.addEventListener('drop', (e) => {
      e.preventDefault()
      zone.classList.remove('sealpost-drop-zone--over')
      const items = Array.from(e.dataTransfer?.items ?? [])
      const folders = items.filter((i) => i.webkitGetAsEntry?.()?.isDirectory).length
      const got = Array.from(e.dataTransfer?.files ?? []).filter((_, i) => !items[i]?.webkitGetAsEntry?.()?.isDirectory)
      dropped = [...dropped, ...got]
      showChosen()
      say(
        status,
        `${got.length} ${got.length === 1 ? 'file' : 'files'} added.` +
          (folders > 0 ? ' Folders cannot be sent: put a folder in a zip file first.' : ''),
      )
    })
  }

  function fail(e: unknown): void {
    const problem: Problem = { text: messageOf(e) }
    if (e instanceof Invalid && e.field) problem.field = e.field
    say(status, problem.text)
    showErrors(summary, e instanceof Refused && e.then ? [problem, e.then] : [problem])
  }

  /** Says, before sending, whether what is sent will be signed. */
  async function announceSigning(): Promise<void> {
    if (!signingNote) return
    let state: SigningState
    try {
      state = await signingState()
    } catch {
      return
    }
    signingNote.hidden = false
    signingNote.dataset.state = state.kind
    if (state.kind === 'registered') {
      say(signingNote, `This browser signs what you send as ${state.user}, before it is uploaded.`)
      return
    }
    const a = document.createElement('a')
    a.className = 'govuk-link'
    a.href = '/keys#signing-key'
    a.textContent = state.kind === 'none' ? 'make a signing key on your Keys page' : 'register it on your Keys page'
    signingNote.replaceChildren(
      state.kind === 'none'
        ? 'This browser holds no signing key for you, so what you send goes unsigned, and OFFICIAL-SENSITIVE or above may be refused. To sign it, first '
        : 'This browser’s signing key is not registered, so what you send goes unsigned, and OFFICIAL-SENSITIVE or above may be refused. To sign it, first ',
      a,
      '.',
    )
  }

  async function send(): Promise<void> {
    if (busy) return
    busy = true
    button.disabled = true
    clearErrors(summary)
    result.hidden = true
    try {
      const to = parseRecipients(recipients.value)
      const list = files()
      if (list.length === 0) throw new Invalid('Choose at least one file to send.', '#files')
      try {
        checkNames(list.map((f) => f.name))
      } catch (e) {
        throw new Invalid(messageOf(e), '#files')
      }
      say(status, 'Fetching the recipients’ keys and checking them against the transparency log…')
      const keys = await recipientKeys(to)
      const pending: Pending = {
        id: newId(),
        to,
        expires: expires.value,
        classification: classification.value,
        size: 0,
        created: new Date().toISOString(),
      }
      const file = await encrypt(list, keys, pending)
      await upload(file, pending)
    } catch (e) {
      fail(e)
    } finally {
      busy = false
      button.disabled = false
    }
  }

  /** Encrypts the bundle of `list` into the outbox; returns the ciphertext as a File or Blob. */
  async function encrypt(list: File[], keys: string[], pending: Pending): Promise<Blob> {
    const total = list.reduce((n, f) => n + f.size, 0)
    const tarLength = bundleLength(list)
    const encrypter = new Encrypter()
    for (const k of keys) encrypter.addRecipient(k)
    progress.max = 100
    progress.value = 0
    let shown = -1
    const { stream, manifest } = writeBundle(list, (done) => {
      const pct = total === 0 ? 100 : Math.floor((done / total) * 100)
      progress.value = pct
      if (Math.floor(pct / 10) !== shown) {
        shown = Math.floor(pct / 10)
        say(status, `Encrypting ${list.length} ${list.length === 1 ? 'file' : 'files'} in this browser: ${shown * 10}%…`)
      }
    })
    const encrypted = await encrypter.encrypt(stream)
    const size = encrypted.size(tarLength)
    const hash = hashing()
    let file: Blob
    try {
      file = await store(pending.id, encrypted.pipeThrough(hash.stream))
      await manifest
    } catch (e) {
      await forget(pending.id)
      if (e instanceof BundleError) throw new Invalid(e.message, '#files')
      throw new Error(`The files could not be encrypted: ${messageOf(e)}. Nothing was sent; try again.`)
    }
    if (file.size !== size) {
      await forget(pending.id)
      throw new Error(`The encrypted bundle has ${file.size} bytes where ${size} were expected. Nothing was sent; try again.`)
    }
    pending.size = size
    pending.digest = hash.digest()
    try {
      pending.signed = await signManifest(pending)
    } catch (e) {
      await forget(pending.id)
      throw e
    }
    remember(pending)
    return file
  }

  /** The manifest v2 of this send, signed with this browser's registered signing key; without
   * one, nothing (the upload goes unsigned). */
  async function signManifest(pending: Pending): Promise<SignedManifest | undefined> {
    let state: SigningState
    try {
      state = await signingState()
    } catch (e) {
      throw new Error(`Whether this browser holds your signing key cannot be checked: ${messageOf(e)} Nothing was sent; try again.`)
    }
    if (state.kind !== 'registered' || !pending.digest) return undefined
    say(status, `Signing the manifest as ${state.user}…`)
    const manifest = manifestV2({
      sender: state.user,
      digest: pending.digest,
      classification: pending.classification,
      expires: expirySeconds(pending.expires),
      recipients: pending.to,
    })
    return { manifest, signature: await signText(state.key.privateKey, manifest), key: state.key.fingerprint }
  }

  /** Uploads the ciphertext with tus, resuming an earlier upload of the same send. */
  function upload(file: Blob, pending: Pending): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      say(status, `Uploading the encrypted bundle (${bytes(pending.size)})…`)
      progress.max = 100
      progress.value = 0
      // The metadata is written here, not by tus-js-client: `manifest_signature` is raw bytes,
      // which its metadata (UTF-8 text only) cannot carry. Only the creation (POST) carries it.
      const metadata = uploadMetadata(pending)
      const up = new tus.Upload(file, {
        endpoint: '/api/v1/uploads',
        metadata: {},
        onBeforeRequest: (req) => {
          if (req.getMethod() === 'POST') req.setHeader('Upload-Metadata', metadata)
        },
        chunkSize: CHUNK,
        headers: { 'X-CSRF-Token': csrfToken() },
        fingerprint: async () => `sealpost-outbox-${pending.id}`,
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
        onProgress: (sent, total) => {
          progress.value = total > 0 ? Math.floor((sent / total) * 100) : 0
        },
        onChunkComplete: (_chunk, accepted, total) => {
          say(status, `Uploading the encrypted bundle: ${bytes(accepted)} of ${bytes(total)} sent…`)
        },
        onSuccess: () => {
          const id = up.url?.split('/').pop() ?? ''
          void finish(id, pending).then(resolve, reject)
        },
        onError: (error) => {
          void uploadFailed(error, pending).then(() => reject(uploadError(error, pending)))
        },
      })
      void up.findPreviousUploads().then((previous) => {
        const earlier = previous[0]
        if (earlier) up.resumeFromPreviousUpload(earlier)
        up.start()
      })
    })
  }

  /** A refusal by the gateway ends the send; a network failure keeps it for resuming. */
  async function uploadFailed(error: Error, pending: Pending): Promise<void> {
    const code = (error as tus.DetailedError).originalResponse?.getStatus() ?? 0
    if (code >= 400 && code < 500 && ![409, 423, 429].includes(code)) {
      await forget(pending.id)
      return
    }
    offerResume()
  }

  function offerResume(): void {
    if (document.getElementById('resume-upload')) return
    const again = govukButton('resume-upload', 'Resume the upload', true)
    button.after(again)
    again.addEventListener('click', () => {
      again.remove()
      void resumeUnfinished()
    })
  }

  /** Finds an unfinished send (after a reload, or a failed upload) and resumes its upload. */
  async function resumeUnfinished(): Promise<void> {
    if (busy) return
    let found
    try {
      found = await unfinished()
    } catch {
      return
    }
    if (!found) return
    busy = true
    button.disabled = true
    clearErrors(summary)
    try {
      say(status, `Resuming the upload you started earlier, to ${found.pending.to.join(', ')}…`)
      await upload(found.file, found.pending)
    } catch (e) {
      fail(e)
    } finally {
      busy = false
      button.disabled = false
    }
  }

  /** The upload's answer: id, status, links and receipt. */
  async function finish(id: string, pending: Pending): Promise<void> {
    progress.value = 100
    say(status, 'Uploaded. Fetching the links…')
    // The uploads endpoint speaks tus, even for this GET.
    const answer = await json<UploadAnswer>(`/api/v1/uploads/${segment(id)}`, 'GET', undefined, { 'Tus-Resumable': '1.0.0' })
    await forget(pending.id)
    byId('transfer-id').textContent = answer.id
    const held = answer.status === 'awaiting_approval'
    byId('transfer-status').textContent = held
      ? 'held for approval: the links work once a compliance officer approves the transfer'
      : 'available: the links work now'
    const links = byId<HTMLUListElement>('links')
    links.replaceChildren(
      ...(answer.links ?? [])
        .filter((l) => typeof l.url === 'string')
        .map((l) => {
          const li = document.createElement('li')
          const who = document.createElement('span')
          who.className = 'govuk-!-font-weight-bold'
          who.textContent = l.recipient
          const url = document.createElement('code')
          url.textContent = l.url
          li.append(who, ' ', url)
          return li
        }),
    )
    const [receipt, verdict] = await checkedReceipt(answer)
    showReceipt(answer.id, receipt)
    result.hidden = false
    say(
      status,
      `Sent: transfer ${answer.id}${held ? ', held for approval' : ''}. ${verdict} Give each recipient their link; it works once.`,
    )
  }

  /** The upload receipt (from the answer, or from the log a moment later), verified against the
   * log key for this transfer and digest; and a sentence saying how that went. */
  async function checkedReceipt(answer: UploadAnswer): Promise<[string | undefined, string]> {
    let receipt = answer.receipt ?? undefined
    try {
      const log = await logKey()
      for (let i = 0; !receipt && i < 10; i++) {
        await new Promise((r) => setTimeout(r, 500))
        receipt = (await receipts(answer.id)).receipts.find((r) => r.event === 'upload.accepted')?.receipt
      }
      if (!receipt) return [undefined, 'The log has not recorded the upload yet.']
      const s = await verifyUpload(receipt, log, answer.id, answer.digest)
      return [receipt, `The log records the upload as entry ${s.index} of ${s.treeSize}.`]
    } catch (e) {
      return [receipt, `Warning: the upload receipt does not verify (${messageOf(e)}); tell the gateway's operators.`]
    }
  }

  function showReceipt(id: string, receipt: string | undefined): void {
    let a = document.getElementById('receipt-download') as HTMLAnchorElement | null
    let note = document.getElementById('receipt-note')
    if (!a) {
      const p = document.createElement('p')
      p.className = 'govuk-body'
      a = document.createElement('a')
      a.id = 'receipt-download'
      a.className = 'govuk-link'
      note = document.createElement('span')
      note.id = 'receipt-note'
      p.append(a, ' ', note)
      result.append(p)
    }
    if (receipt) {
      a.href = URL.createObjectURL(new Blob([receipt], { type: 'text/plain' }))
      a.download = `sealpost-${id}-receipt.txt`
      a.textContent = 'Download the receipt'
      a.hidden = false
      if (note) note.textContent = '(proof, from the transparency log, that the gateway accepted this upload)'
    } else {
      a.hidden = true
      if (note) note.textContent = 'The receipt is not in the log yet: it will be listed with the transfer’s receipts.'
    }
  }

  function region(id: string, after: HTMLElement): HTMLElement {
    const found = document.getElementById(id)
    if (found) return found
    const p = document.createElement('p')
    p.id = id
    p.className = 'govuk-body'
    p.setAttribute('role', 'status')
    p.setAttribute('aria-live', 'polite')
    after.after(p)
    return p
  }

  function errorSummary(): HTMLElement {
    const found = document.getElementById('send-error')
    if (found) return found
    const div = document.createElement('div')
    div.id = 'send-error'
    div.className = 'govuk-error-summary'
    div.hidden = true
    div.setAttribute('data-module', 'govuk-error-summary')
    const alert = document.createElement('div')
    alert.setAttribute('role', 'alert')
    const title = document.createElement('h2')
    title.className = 'govuk-error-summary__title'
    title.textContent = 'There is a problem'
    const body = document.createElement('div')
    body.className = 'govuk-error-summary__body'
    const ul = document.createElement('ul')
    ul.className = 'govuk-list govuk-error-summary__list'
    body.append(ul)
    alert.append(title, body)
    div.append(alert)
    const main = document.querySelector('main')
    const h1 = main?.querySelector('h1')
    if (h1) h1.before(div)
    else main?.prepend(div)
    return div
  }

  function chosenList(): HTMLUListElement {
    const found = document.getElementById('chosen-files') as HTMLUListElement | null
    if (found) return found
    const ul = document.createElement('ul')
    ul.id = 'chosen-files'
    ul.className = 'govuk-list govuk-list--bullet'
    ul.hidden = true
    ;(dropZone ?? filesInput).after(ul)
    return ul
  }
}

/** `ORG/NAME` recipients, comma- or space-separated, each once. */
export function parseRecipients(value: string): string[] {
  const to = value
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (to.length === 0) throw new Invalid('Enter at least one recipient, as organisation/name, such as hmpps/alice.', '#recipients')
  for (const r of to) {
    if (!RECIPIENT.test(r)) throw new Invalid(`“${r}” is not a recipient: enter recipients as organisation/name, such as hmpps/alice.`, '#recipients')
  }
  return [...new Set(to)]
}

/** `sha256:<hex>` of a recipient string (the directory's fingerprint). */
async function fingerprint(recipient: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(recipient)))
  return 'sha256:' + Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Every encryption key of every recipient, each checked against its fingerprint and its
 * `key.added` receipt in the log. A key registered a moment ago may not be in the log yet: a
 * missing receipt is asked for again briefly. */
async function recipientKeys(to: string[]): Promise<string[]> {
  const log = await logKey()
  const all: string[] = []
  for (const who of to) {
    const [org, name] = who.split('/') as [string, string]
    const path = `/api/v1/keys/${segment(org)}/${segment(name)}`
    let answer: Keys
    try {
      answer = await json<Keys>(path)
      for (let i = 0; i < 30 && answer.keys.some((k) => typeof k.receipt !== 'string'); i++) {
        await new Promise((r) => setTimeout(r, 100))
        answer = await json<Keys>(path)
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) {
        throw new Invalid(`There is no user ${who}. Check the spelling, or pick them from the list.`, '#recipients')
      }
      throw e
    }
    const keys = answer.keys.filter((k) => k.stanza_type !== SIGNING_TYPE)
    if (keys.length === 0) {
      throw new Invalid(`${who} has no key to encrypt to. Ask them to make one on their Keys page or with \`sealpost keygen\`.`, '#recipients')
    }
    for (const k of keys) {
      if (k.recipient.startsWith('ssh-')) {
        throw new Invalid(`${who} has an SSH key, which the browser cannot encrypt to. Send to them with \`sealpost send\` instead.`, '#recipients')
      }
      if ((await fingerprint(k.recipient)) !== k.fingerprint) {
        throw new Error(`The directory's key for ${who} does not match its own fingerprint. Do not send; tell the gateway's operators.`)
      }
      if (typeof k.receipt !== 'string') {
        throw new Error(`${who}'s key ${k.fingerprint} is not in the transparency log yet. Try again in a minute; if it persists, tell the gateway's operators.`)
      }
      try {
        await verifyKey(k.receipt, log, k.fingerprint, answer.user, answer.name_salt)
      } catch (e) {
        throw new Error(`${who}'s key ${k.fingerprint} is not the one the log recorded (${messageOf(e)}). Do not send; tell the gateway's operators.`)
      }
      all.push(k.recipient)
    }
  }
  return all
}

/** The message of a failed upload: the gateway's own when it sent one, and what to do for the
 * refusals of a signed manifest and of an unsigned upload the policies require signed. */
function uploadError(error: Error, pending: Pending): Error {
  const res = (error as tus.DetailedError).originalResponse
  if (res) {
    if (res.getStatus() === 401) return new Error('Your session has ended. Sign in again, then come back to this page: the upload resumes.')
    try {
      const body = JSON.parse(res.getBody()) as { error?: { code?: string; message?: string } }
      if (body.error?.message) {
        const m = body.error.message
        const said = `${m.charAt(0).toUpperCase()}${m.slice(1)}${/[.!?]$/.test(m) ? '' : '.'}`
        return refusal(body.error.code ?? `http_${res.getStatus()}`, said, pending)
      }
    } catch {
      // Not JSON.
    }
  }
  return new Error('The upload stopped: the gateway could not be reached. Select “Resume the upload” when the connection is back; what was sent is kept.')
}

/** What to do when an upload needed a signature this browser could not give. */
const SIGN_THEN_SEND: Problem = {
  text: 'To sign what you send, make a signing key in this browser (or register it again) on your Keys page, then send again',
  field: '/keys#signing-key',
}

/** A refusal of the upload as the page says it: the gateway's words, and for the manifest's
 * codes and an unsigned upload the policies refused, what to do. */
function refusal(code: string, said: string, pending: Pending): Refused {
  switch (code) {
    case 'policy_denied':
      return pending.signed
        ? new Refused(`The gateway refused the upload: ${said}`, code)
        : new Refused(`The gateway refused the upload: ${said} It was not signed: this browser holds no registered signing key for you.`, code, SIGN_THEN_SEND)
    case 'manifest_mismatch':
      return new Refused(
        `The gateway refused the signed manifest because it does not match the upload: ${said} Nothing was kept. Send again; if it is refused again, tell the gateway’s operators.`,
        code,
      )
    case 'unknown_signing_key':
      return new Refused(
        `The gateway does not hold this browser’s signing key as one of your keys (it may have been removed): ${said} Nothing was kept.`,
        code,
        SIGN_THEN_SEND,
      )
    case 'sender_signature_invalid':
      return new Refused(
        `The gateway could not verify the manifest’s signature against your signing key: ${said} Nothing was kept. Send again; if it is refused again, tell the gateway’s operators.`,
        code,
      )
    default:
      return new Refused(`The gateway refused the upload: ${said}`, code)
  }
}

/** Fills the recipients' datalist from the directory (unless the page did), suggesting the
 * rest of the field for each name after the last comma. */
async function fillDirectory(input: HTMLInputElement): Promise<void> {
  let list = input.list
  if (list && list.options.length > 0) return
  let dir: Directory
  try {
    dir = await json<Directory>('/api/v1/directory')
  } catch {
    return // Typing ORG/NAME still works.
  }
  const names = dir.orgs.flatMap((o) => o.users.map((u) => `${o.name}/${u}`)).sort()
  if (!list) {
    list = document.createElement('datalist')
    list.id = 'recipients-directory'
    input.after(list)
    input.setAttribute('list', list.id)
  }
  const datalist = list
  const suggest = () => {
    const cut = Math.max(input.value.lastIndexOf(','), input.value.lastIndexOf(' '))
    const before = cut < 0 ? '' : input.value.slice(0, cut + 1).replace(/\s*$/, ' ')
    datalist.replaceChildren(
      ...names.map((n) => {
        const o = document.createElement('option')
        o.value = before === '' ? n : `${before}${n}`
        return o
      }),
    )
  }
  suggest()
  input.addEventListener('input', suggest)
}
