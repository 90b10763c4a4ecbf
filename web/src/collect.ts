// The collect page (`/inbox/{id}` and `/d#TOKEN`): the identity is read here and never sent;
// the age header is checked with ranges that give the link back, so a wrong identity leaves the
// link usable; the upload receipt is verified against the log key before the link is used up;
// then the ciphertext streams in, is hashed, decrypted and unpacked; only when the digest matches
// the logged one, age has authenticated every chunk and every file matches the bundle's
// manifest are the files offered, and the delivery is reported.

import { Decrypter } from 'age-encryption'
import { ApiError, json, segment } from './api.ts'
import { dearmorStream, isArmored } from './armor.ts'
import { checkHeader } from './envelope.ts'
import { BundleError, isBundle, readBundle } from './bundle.ts'
import { loadBrowserKey, parseIdentityFile } from './keys.ts'
import { bodyOf, ciphertextStream, type LinkRef, redeemRange } from './redeem.ts'
import { canPickFolder, ExistsError, FolderSink, MEMORY_LIMIT, MemorySink, pickFolder, type Saved, type Sink } from './save.ts'
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'
import { byId, bytes, clearErrors, govukButton, messageOf, pressed, type Problem, say, showErrors } from './ui.ts'
import { loggedUpload } from './verify.ts'

/** The first bytes asked for: fewer than any age file holds, so this never uses the link up. */
const PROBE = 64
/** The first slice of the header asked for after the probe; doubled while the header is longer. */
const HEADER_SLICE = 64 * 1024
/** The gateway serves closed ranges only within the first MiB, where the header is. */
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

/** A stream that hashes what passes through it. */
function hashing(): { stream: TransformStream<Uint8Array, Uint8Array>; digest: () => string } {
  const h = sha256.create()
  let result: string | undefined
  return {
    stream: new TransformStream({
      transform(chunk, c) {
        h.update(chunk)
        c.enqueue(chunk)
      },
    }),
    digest: () => (result ??= `sha256:${bytesToHex(h.digest())}`),
  }
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
  let busy = false

  void offerBrowserKey()

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
    const logged = await loggedDigest(id)
    if (logged !== announced) {
      throw new Refusal(
        `The gateway is serving a bundle (${announced}) other than the one the log records as uploaded (${logged}). Nothing was collected and the link is still usable; tell the gateway's operators.`,
      )
    }

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

    // 5. The files, and the report.
    offer(saved, sink.where)
    await report(id, undefined)
    const names = saved.map((s) => `${s.name} (${bytes(s.size)})`).join(', ')
    say(
      status,
      sink.where === 'folder'
        ? `Collected and checked ${saved.length} ${saved.length === 1 ? 'file' : 'files'}, saved in the folder you chose: ${names}.`
        : `Collected and checked ${saved.length} ${saved.length === 1 ? 'file' : 'files'}: ${names}. Your browser is saving ${saved.length === 1 ? 'it' : 'them'}; use the links below if a download does not start.`,
    )
  }

  /** The digest the verified `upload.accepted` receipt records; the log may take a moment. */
  async function loggedDigest(id: string): Promise<string> {
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
      if (logged) return logged.digest
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

  async function report(id: string, failed: string | undefined): Promise<void> {
    if (!id) return
    const body = failed ? { status: 'failed', reason: failed } : { status: 'decrypted' }
    try {
      await json(`/api/v1/transfers/${segment(id)}/delivery`, 'POST', body)
    } catch {
      // The files are what matter; the sender sees the link used up either way.
    }
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
