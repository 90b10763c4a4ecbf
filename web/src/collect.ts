// The collect page (`/inbox/{id}` and `/d#TOKEN`): the identity is read here and never sent;
// the age header is checked with ranges that give the link back, so a wrong identity leaves the
// link usable; the upload receipt is verified against the log key before the link is used up;
// then the ciphertext streams in, is hashed, decrypted and unpacked; only when the digest matches
// the logged one, age has authenticated every chunk and every file matches the bundle's
// manifest are the files offered, and the delivery is reported: signed, when this browser holds
// a registered signing key, with a delivery statement naming the transfer, the digest checked,
// the recipient, the time and the checkpoint the upload receipt was verified against.

import { Decrypter } from 'age-encryption'
import { ApiError, errorOf, json, request, segment } from './api.ts'
import { dearmorStream, isArmored } from './armor.ts'
import { checkHeader } from './envelope.ts'
import { BundleError, isBundle, readBundle } from './bundle.ts'
import { loadBrowserKey, parseIdentityFile } from './keys.ts'
import { bodyOf, ciphertextStream, type LinkRef, redeemRange } from './redeem.ts'
import { canPickFolder, ExistsError, FolderSink, MEMORY_LIMIT, MemorySink, pickFolder, type Saved, type Sink } from './save.ts'
import { hashing } from './hash.ts'
import { byId, bytes, clearErrors, govukButton, messageOf, pressed, type Problem, say, showErrors } from './ui.ts'
import { type SigningState, signingState } from './signing.ts'
import { deliveryStatement, signText } from './statements.ts'
import { loggedUpload } from './verify.ts'
import { checkSender, type SenderCheck, SenderRefusal } from './sender.ts'
import type { ReceiptSummary } from './verify.ts'

/** The first bytes asked for: fewer than any age file holds, so this never uses the link up. */
const PROBE = 64
/** The first slice of the header asked for after the probe; doubled while the header is longer. */
const HEADER_SLICE = 64 * 1024
/** The most header this page reads before the link is used up (the gateway serves no more than the header). */
const MAX_HEADER = 1024 * 1024

/** A failure the page shows; `field` links it to a control; `report` is the delivery report's
 * reason code when the link was used up. */
class Refusal extends Error {
  constructor(
    message: string,
    readonly field?: string,
    readonly report?: string,
  ) {
    super(message)
  }
}

/** The checkpoint a receipt was verified against: its size and root hash. */
interface Checked {
  size: bigint
  root: Uint8Array
}

/** The gateway's answer to a delivery report. */
interface DeliveryAnswer {
  transfer: string
  status: string
  log_index?: number | null
  signed?: boolean
}

/** The first `n` bytes of `stream`, and a stream of all of it (those bytes included). */
async function peek(stream: ReadableStream<Uint8Array>, n: number): Promise<[Uint8Array, ReadableStream<Uint8Array>]> {
  const reader = stream.getReader()
  const seen: Uint8Array[] = []
  let have = 0
  let ended = false
  while (have < n) {
    const { done, value } = await reader.read()
    if (done) {
      ended = true
      break
    }
    seen.push(value)
    have += value.length
  }
  const head = new Uint8Array(have)
  let at = 0
  for (const s of seen) {
    head.set(s, at)
    at += s.length
  }
  const rest = new ReadableStream<Uint8Array>({
    start(c) {
      if (head.length > 0) c.enqueue(head)
      if (ended) c.close()
    },
    async pull(c) {
      const { done, value } = await reader.read()
      if (done) c.close()
      else c.enqueue(value)
    },
    cancel(reason) {
      return reader.cancel(reason)
    },
  })
  return [head.subarray(0, Math.min(n, have)), rest]
}

/** The collect page. */
export function collectPage(main: HTMLElement): void {
  const transfer = main.dataset.transfer
  const identity = byId<HTMLInputElement>('identity')
  const button = byId<HTMLButtonElement>('collect')
  const status = byId('collect-status')
  const summary = byId('collect-error')
  const list = byId<HTMLUListElement>('collected-files')
  const delivery = deliveryRegion()
  let busy = false

  void offerBrowserKey()
  void announceSigning()

  button.addEventListener('click', async (event) => {
    event.preventDefault()
    if (busy) return
    busy = true
    button.disabled = true
    clearErrors(summary)
    try {
      const link: LinkRef | undefined = transfer ? { transfer } : tokenFromHash()
      if (!link) {
        throw new Refusal(
          'This page has no link to collect: open the whole link the sender gave you, including the part after #.',
        )
      }
      await collect(link)
    } catch (e) {
      const problem: Problem = { text: messageOf(e) }
      if (e instanceof Refusal && e.field) problem.field = e.field
      say(status, problem.text)
      showErrors(summary, [problem])
    } finally {
      busy = false
      button.disabled = false
    }
  })

  function tokenFromHash(): LinkRef | undefined {
    const token = location.hash.replace(/^#/, '').trim()
    return token ? { token } : undefined
  }

  async function decrypterFor(): Promise<Decrypter> {
    const decrypter = new Decrypter()
    const useBrowser = document.getElementById('use-browser-key') as HTMLInputElement | null
    if (useBrowser?.checked) {
      const k = await loadBrowserKey()
      if (!k) throw new Refusal('This browser keeps no key any more. Choose your identity file instead.', '#identity')
      decrypter.addIdentity(k.key)
      return decrypter
    }
    const file = identity.files?.[0]
    if (!file) {
      throw new Refusal(
        document.getElementById('use-browser-key')
          ? 'Choose your identity file, or select “Use the key kept in this browser”.'
          : 'Choose your identity file: the file `sealpost keygen` or `age-keygen` made for you.',
        '#identity',
      )
    }
    if (file.size > 1024 * 1024) throw new Refusal('That file is too large to be an identity file. Choose your identity file.', '#identity')
    let ids: string[]
    try {
      ids = await parseIdentityFile(await file.text())
    } catch (e) {
      throw new Refusal(messageOf(e), '#identity')
    }
    for (const id of ids) decrypter.addIdentity(id)
    return decrypter
  }

  async function collect(link: LinkRef): Promise<void> {
    list.replaceChildren()
    delivery.replaceChildren()
    document.getElementById('delivery-actions')?.remove()
    const decrypter = await decrypterFor()

    // 1. The age header, with ranges that stop short of the last byte: the link stays usable.
    say(status, 'Checking that your identity can open the bundle…')
    const probe = await redeemRange(link, 0, PROBE - 1)
    const size = probe.size
    const id = probe.transfer
    const announced = probe.digest
    let prefix = await bodyOf(probe)
    for (;;) {
      const verdict = await checkHeader(prefix, decrypter)
      if (verdict === 'opens') break
      if (verdict === 'no-match') {
        throw new Refusal(
          'This identity cannot open the bundle. The link is still usable: choose the identity file (or browser key) for the key the sender encrypted to, then select Collect again.',
          '#identity',
        )
      }
      if (verdict !== 'need-more') {
        throw new Refusal(`The bundle's header is damaged (${verdict.broken}). Ask the sender to send it again.`)
      }
      if (prefix.length >= MAX_HEADER || prefix.length + 1 >= size) break // left to the decryption
      const want = prefix.length < HEADER_SLICE ? HEADER_SLICE : prefix.length * 2
      const last = Math.min(Math.min(want, MAX_HEADER) - 1, size - 2)
      const more = await bodyOf(await redeemRange(link, prefix.length, last))
      const joined = new Uint8Array(prefix.length + more.length)
      joined.set(prefix)
      joined.set(more, prefix.length)
      prefix = joined
    }

    // 2. The log's record of the upload, before the link is used up.
    say(status, 'Your identity opens the bundle. Checking its receipt in the transparency log…')
    const { digest: logged, checkpoint, summary } = await loggedDigest(id)
    if (logged !== announced) {
      throw new Refusal(
        `The gateway is serving a bundle (${announced}) other than the one the log records as uploaded (${logged}). Nothing was collected and the link is still usable; tell the gateway's operators.`,
      )
    }
    // The sender's signature, against the log's record of the upload: still before the link is used.
    say(status, 'Checking the sender’s signature…')
    let signedBy: SenderCheck
    try {
      signedBy = await checkSender(id, logged, summary, (await json<{ user: string }>('/api/v1/whoami')).user)
    } catch (e) {
      if (!(e instanceof SenderRefusal)) throw e
      throw new Refusal(
        `Do not trust this bundle: ${e.message}. Nothing was collected and the link is still usable; tell the sender and the gateway's operators.`,
      )
    }
    const senderNote = signedBy.signed
      ? ` ${signedBy.sender} signed it (key ${signedBy.fingerprint}, in the log).`
      : ' The sender did not sign this bundle: nothing but the gateway’s word says who sent it.'

    // 3. Where the files go.
    const sink = await chooseSink(size)

    // 4. The rest: received, hashed, decrypted and unpacked as it streams; the link is used up.
    let shown = -1
    let complete = false
    const cipher = ciphertextStream(link, prefix, size, (have) => {
      complete = have >= size
      const pct = Math.floor((have / size) * 10) * 10
      if (pct !== shown) {
        shown = pct
        say(status, `Receiving and decrypting the bundle: ${pct}% of ${bytes(size)}…`)
      }
    })
    const hash = hashing()
    let stream = cipher.pipeThrough(hash.stream)
    if (isArmored(prefix)) stream = stream.pipeThrough(dearmorStream())
    let saved: Saved[]
    let kind: 'bundle' | 'plain'
    try {
      let plaintext: ReadableStream<Uint8Array>
      try {
        plaintext = await decrypter.decrypt(stream)
      } catch (e) {
        throw new Refusal(`The bundle could not be decrypted: ${messageOf(e)}.`, undefined, 'decrypt_failed')
      }
      const [head, whole] = await peek(plaintext, 512)
      kind = isBundle(head) ? 'bundle' : 'plain'
      try {
        if (kind === 'bundle') {
          await readBundle(whole, sink)
        } else {
          // A plain age file (sent with `age` and curl): one file, named after the transfer.
          const writer = await sink.create(`sealpost-${id}.bin`)
          const reader = whole.getReader()
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            await writer.write(value)
          }
        }
      } catch (e) {
        if (e instanceof ApiError) throw e
        if (e instanceof ExistsError) throw new Refusal(e.message, undefined, 'output_exists')
        if (e instanceof BundleError) throw new Refusal(`${e.message}. Nothing was saved; ask the sender to send it again.`, undefined, 'bundle_invalid')
        throw new Refusal(`The bundle could not be decrypted: ${messageOf(e)}. Nothing was saved.`, undefined, 'decrypt_failed')
      }
      const digest = hash.digest()
      if (digest !== logged) {
        throw new Refusal(
          `The bundle received (${digest}) is not the one the log records as uploaded (${logged}). Nothing was saved; tell the gateway's operators.`,
          undefined,
          'digest_mismatch',
        )
      }
      saved = await sink.commit()
    } catch (e) {
      await sink.discard()
      // Only a recipient whose link is used up reports; a download stopped early gave it back.
      if (e instanceof Refusal && e.report && complete) {
        await report(id, e.report)
        throw new Refusal(`${e.message} The link is used up: ask the sender to send the bundle again.`)
      }
      throw e
    }

    // 5. The files, and the report (signed for when this browser can).
    offer(saved, sink.where)
    const names = saved.map((s) => `${s.name} (${bytes(s.size)})`).join(', ')
    say(
      status,
      sink.where === 'folder'
        ? `Collected and checked ${saved.length} ${saved.length === 1 ? 'file' : 'files'}, saved in the folder you chose: ${names}.${senderNote}`
        : `Collected and checked ${saved.length} ${saved.length === 1 ? 'file' : 'files'}: ${names}. Your browser is saving ${saved.length === 1 ? 'it' : 'them'}; use the links below if a download does not start.${senderNote}`,
    )
    await deliver(id, logged, checkpoint)
  }

  /** The digest the verified `upload.accepted` receipt records, and the checkpoint it was
   * verified against; the log may take a moment. */
  async function loggedDigest(id: string): Promise<{ digest: string; checkpoint: Checked; summary: ReceiptSummary }> {
    for (let attempt = 0; ; attempt++) {
      let logged
      try {
        logged = await loggedUpload(id)
      } catch (e) {
        if (e instanceof ApiError) throw e
        throw new Refusal(
          `The upload receipt does not verify against the log key: ${messageOf(e)}. Nothing was collected and the link is still usable; tell the gateway's operators.`,
        )
      }
      if (logged) {
        return { digest: logged.digest, checkpoint: { size: logged.summary.treeSize, root: logged.summary.root }, summary: logged.summary }
      }
      if (attempt >= 10) {
        throw new Refusal(
          'The transparency log does not hold this bundle’s upload receipt yet. Nothing was collected and the link is still usable: try again in a minute.',
        )
      }
      await new Promise((r) => setTimeout(r, 500))
    }
  }

  /** Memory for bundles up to MEMORY_LIMIT; a folder the user picks for larger ones, where the
   * browser can; memory otherwise. */
  async function chooseSink(size: number): Promise<Sink> {
    if (size <= MEMORY_LIMIT || !canPickFolder()) return new MemorySink()
    const choose = govukButton('choose-folder', 'Choose a folder to save the files in')
    button.after(choose)
    say(
      status,
      `This bundle is ${bytes(size)}, too large to hold in the page. Select “Choose a folder to save the files in”: the files are written there as they are decrypted.`,
    )
    try {
      for (;;) {
        await pressed(choose)
        try {
          return new FolderSink(await pickFolder())
        } catch (e) {
          if (e instanceof DOMException && e.name === 'AbortError') {
            say(status, 'No folder was chosen. Select “Choose a folder to save the files in” to continue.')
            continue
          }
          throw new Refusal(`The folder cannot be used: ${messageOf(e)}. The link is still usable.`)
        }
      }
    } finally {
      choose.remove()
    }
  }

  function offer(saved: Saved[], where: Sink['where']): void {
    list.replaceChildren(
      ...saved.map((s) => {
        const li = document.createElement('li')
        if (where === 'memory' && s.blob) {
          const a = document.createElement('a')
          a.className = 'govuk-link'
          a.href = URL.createObjectURL(s.blob)
          a.download = s.name
          a.textContent = s.name
          li.append(a, ` (${bytes(s.size)})`)
        } else {
          li.textContent = `${s.name} (${bytes(s.size)}), saved in the folder you chose`
        }
        return li
      }),
    )
    if (where === 'memory') list.querySelectorAll('a').forEach((a) => a.click())
  }

  /** Reports a failure (the link is used up; the sender sees it either way). */
  async function report(id: string, failed: string): Promise<void> {
    if (!id) return
    try {
      await json(`/api/v1/transfers/${segment(id)}/delivery`, 'POST', { status: 'failed', reason: failed })
    } catch {
      // The sender sees the link used up either way.
    }
  }

  /** Reports the delivery of the checked bundle: signed for when this browser holds a registered
   * signing key, unsigned otherwise, saying which and how to sign next time. A refused signature
   * records nothing: the page says why and offers to sign again or to record it unsigned. */
  async function deliver(id: string, digest: string, checkpoint: Checked): Promise<void> {
    if (!id) return
    let state: SigningState | undefined
    try {
      state = await signingState()
    } catch {
      state = undefined
    }
    if (state?.kind !== 'registered') {
      await reportUnsigned(id, state)
      return
    }
    say(delivery, `Signing for the delivery as ${state.user}…`)
    try {
      const answer = await reportSigned(id, digest, checkpoint, state)
      if (answer.signed === false) {
        say(delivery, 'The gateway recorded the delivery, but as unsigned, although this browser signed it. Tell the gateway’s operators.')
        delivery.dataset.delivery = 'unsigned'
        return
      }
      say(
        delivery,
        `Signed for as ${state.user}.` +
          (typeof answer.log_index === 'number' ? ` Your signed statement is entry ${answer.log_index} of the transparency log.` : ''),
      )
      delivery.dataset.delivery = 'signed'
    } catch (e) {
      const text = deliveryRefusal(e, state.user)
      say(delivery, text)
      delivery.dataset.delivery = 'refused'
      showErrors(summary, [{ text }])
      if (!(e instanceof ApiError && e.code === 'already_reported')) offerDeliveryChoices(id, digest, checkpoint)
    }
  }

  /** Signs the delivery statement and posts it. A `statement_late` refusal while this computer's
   * clock and the gateway's disagree is tried once more at the gateway's time. */
  async function reportSigned(
    id: string,
    digest: string,
    checkpoint: Checked,
    state: Extract<SigningState, { kind: 'registered' }>,
  ): Promise<DeliveryAnswer> {
    let time = new Date()
    for (let attempt = 0; ; attempt++) {
      const statement = deliveryStatement({ transfer: id, digest, recipient: state.user, time, checkpoint })
      const signature = await signText(state.key.privateKey, statement)
      const response = await request(`/api/v1/transfers/${segment(id)}/delivery`, {
        method: 'POST',
        headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: JSON.stringify({ status: 'decrypted', statement, signature, key: state.key.fingerprint }),
      })
      if (response.ok) return (await response.json()) as DeliveryAnswer
      const error = await errorOf(response)
      const theirs = Date.parse(response.headers.get('Date') ?? '')
      if (error.code === 'statement_late' && attempt === 0 && Number.isFinite(theirs) && Math.abs(theirs - Date.now()) > 50_000) {
        time = new Date(theirs)
        continue
      }
      throw error
    }
  }

  /** Reports the delivery without a signature, and says so. */
  async function reportUnsigned(id: string, state: SigningState | undefined): Promise<void> {
    document.getElementById('delivery-actions')?.remove()
    try {
      await json(`/api/v1/transfers/${segment(id)}/delivery`, 'POST', { status: 'decrypted' })
    } catch (e) {
      say(delivery, `The delivery could not be reported: ${messageOf(e)} The files are collected and checked; the sender sees the link used up.`)
      delivery.dataset.delivery = 'unreported'
      return
    }
    delivery.dataset.delivery = 'unsigned'
    const why =
      state === undefined
        ? 'whether this browser holds a signing key could not be checked.'
        : state.kind === 'unregistered'
          ? `this browser’s signing key for ${state.user} is not registered.`
          : state.kind === 'registered'
            ? 'you chose to record it without a signature.'
            : `this browser holds no signing key for ${state.user}.`
    const how = state?.kind === 'unregistered' ? 'register it on your Keys page' : 'make a signing key in this browser on your Keys page'
    sayWithLink(
      delivery,
      `The delivery was recorded as unsigned: ${why} To sign for what you collect next time, `,
      how,
      '/keys#signing-key',
      '.',
    )
  }

  /** After a refused signature: sign again, or record the delivery unsigned. */
  function offerDeliveryChoices(id: string, digest: string, checkpoint: Checked): void {
    document.getElementById('delivery-actions')?.remove()
    const group = document.createElement('div')
    group.id = 'delivery-actions'
    group.className = 'govuk-button-group'
    const again = govukButton('sign-again', 'Sign for the delivery again')
    const unsigned = govukButton('report-unsigned', 'Record the delivery unsigned', true)
    group.append(again, unsigned)
    delivery.after(group)
    const run = async (what: () => Promise<void>) => {
      again.disabled = true
      unsigned.disabled = true
      clearErrors(summary)
      group.remove()
      await what()
    }
    again.addEventListener('click', () => void run(() => deliver(id, digest, checkpoint)))
    unsigned.addEventListener('click', () =>
      void run(async () => {
        let state: SigningState | undefined
        try {
          state = await signingState()
        } catch {
          state = undefined
        }
        await reportUnsigned(id, state)
      }),
    )
  }

  /** Says, before collecting, whether the delivery will be signed for. */
  async function announceSigning(): Promise<void> {
    const note = document.getElementById('signing-note')
    if (!note) return
    let state: SigningState
    try {
      state = await signingState()
    } catch {
      return // Not signed in (a `/d` link): the page asks for that first.
    }
    note.hidden = false
    note.dataset.state = state.kind
    if (state.kind === 'registered') {
      say(note, `When the bundle has been collected and checked, this browser signs for its delivery as ${state.user}.`)
    } else {
      sayWithLink(
        note,
        state.kind === 'none'
          ? 'This browser holds no signing key for you, so the delivery will be recorded as unsigned. To sign for it, first '
          : 'This browser’s signing key is not registered, so the delivery will be recorded as unsigned. To sign for it, first ',
        state.kind === 'none' ? 'make a signing key on your Keys page' : 'register it on your Keys page',
        '/keys#signing-key',
        '.',
      )
    }
  }

  function deliveryRegion(): HTMLElement {
    const found = document.getElementById('delivery-status')
    if (found) return found
    const p = document.createElement('p')
    p.id = 'delivery-status'
    p.className = 'govuk-body'
    p.setAttribute('role', 'status')
    p.setAttribute('aria-live', 'polite')
    status.after(p)
    return p
  }

  /** Shows the browser-key choice when this browser keeps a key. */
  async function offerBrowserKey(): Promise<void> {
    const key = await loadBrowserKey()
    const radio = document.getElementById('use-browser-key') as HTMLInputElement | null
    if (radio) {
      const item = radio.closest<HTMLElement>('.govuk-radios__item') ?? radio
      const group = radio.closest<HTMLElement>('[hidden]')
      if (key) {
        item.hidden = false
        if (group) group.hidden = false
      } else {
        item.hidden = true
        radio.checked = false
      }
      return
    }
    if (!key) return
    // The server cannot know this browser keeps a key: the choice is added here.
    const group = identity.closest('.govuk-form-group') ?? identity
    const fieldset = document.createElement('div')
    fieldset.className = 'govuk-form-group'
    const radios = document.createElement('div')
    radios.className = 'govuk-radios govuk-radios--small'
    radios.append(
      radioItem('use-browser-key', 'Use the key kept in this browser', true),
      radioItem('use-identity-file', 'Use an identity file', false),
    )
    fieldset.append(radios)
    group.before(fieldset)
  }
}

function radioItem(id: string, label: string, checked: boolean): HTMLElement {
  const item = document.createElement('div')
  item.className = 'govuk-radios__item'
  const input = document.createElement('input')
  input.className = 'govuk-radios__input'
  input.type = 'radio'
  input.name = 'identity-source'
  input.id = id
  input.value = id
  input.checked = checked
  const l = document.createElement('label')
  l.className = 'govuk-label govuk-radios__label'
  l.htmlFor = id
  l.textContent = label
  item.append(input, l)
  return item
}

/** Writes `before`, a link and `after` into a live region (text only, nothing parsed as HTML). */
function sayWithLink(region: HTMLElement, before: string, link: string, href: string, after: string): void {
  if (!region.hasAttribute('aria-live')) region.setAttribute('aria-live', 'polite')
  const a = document.createElement('a')
  a.className = 'govuk-link'
  a.href = href
  a.textContent = link
  region.replaceChildren(before, a, after)
}

/** What the page says when the signed delivery report is refused: the refusal codes of the
 * delivery statement, each with what to do. Nothing was recorded. */
export function deliveryRefusal(e: unknown, user: string): string {
  const notYet = 'Your files are collected and checked, but the delivery is not recorded yet.'
  if (!(e instanceof ApiError)) return `The delivery could not be signed for: ${messageOf(e)}. ${notYet}`
  switch (e.code) {
    case 'delivery_signature_invalid':
      return `The gateway could not verify this browser’s signature against your signing key. ${notYet} Select “Sign for the delivery again”; if it is refused again, record the delivery unsigned and tell the gateway’s operators.`
    case 'statement_mismatch':
      return `The gateway says the signed statement does not match this transfer, its digest, your name (${user}) or its log: ${e.message} ${notYet} Select “Sign for the delivery again”; if it is refused again, tell the gateway’s operators.`
    case 'statement_late':
      return `The gateway refused the signed statement because its time is too far from the gateway’s clock: this computer’s clock is wrong. ${notYet} Set the clock right, then select “Sign for the delivery again”.`
    case 'unknown_signing_key':
      return `The signing key kept in this browser is no longer one of your signing keys (it may have been removed from the directory). ${notYet} Register it again on your Keys page and select “Sign for the delivery again”, or record the delivery unsigned.`
    case 'already_reported':
      return 'The delivery of this bundle was already reported, so it cannot be signed for now. Your files are collected and checked.'
    default:
      return `The delivery could not be signed for: ${e.message} ${notYet}`
  }
}
