// Keys in the browser. A browser key is an X25519 WebCrypto key pair whose private half is not
// extractable: it is kept in IndexedDB (a structured clone of the CryptoKey, which the browser
// stores without ever exposing the bytes), and age-encryption uses it directly. Its recipient
// (`age1…`) is registered with `POST /api/v1/keys`. An identity file chosen from disk is read
// here and never leaves the page.

import { identityToRecipient } from 'age-encryption'
import { ApiError, json } from './api.ts'
import { messageOf, say } from './ui.ts'

const DB = 'sealpost'
const STORE = 'keys'
const BROWSER_KEY = 'browser-key'

/** The key this browser keeps. */
export interface BrowserKey {
  /** The private key: X25519, not extractable, usable for `deriveBits`. */
  key: CryptoKey
  /** Its age recipient, `age1…`. */
  recipient: string
  /** When it was made (ISO 8601). */
  created: string
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1)
    req.onupgradeneeded = () => req.result.createObjectStore(STORE)
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error ?? new Error('IndexedDB cannot be opened'))
  })
}

/** Runs one request in a transaction of the `keys` store of the `sealpost` database. */
export async function transact<T>(mode: IDBTransactionMode, run: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open()
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode)
      const req = run(tx.objectStore(STORE))
      tx.oncomplete = () => resolve(req.result)
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'))
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'))
    })
  } finally {
    db.close()
  }
}

/** The key kept in this browser, if there is one (and IndexedDB works). */
export async function loadBrowserKey(): Promise<BrowserKey | undefined> {
  if (typeof indexedDB === 'undefined') return undefined
  try {
    const found = await transact<unknown>('readonly', (s) => s.get(BROWSER_KEY))
    const k = found as Partial<BrowserKey> | undefined
    return k?.key instanceof CryptoKey && typeof k.recipient === 'string' ? (k as BrowserKey) : undefined
  } catch {
    return undefined
  }
}

/** Makes a new browser key and keeps it; refuses to replace one. */
export async function makeBrowserKey(): Promise<BrowserKey> {
  if (await loadBrowserKey()) throw new Error('This browser already keeps a key.')
  let pair: CryptoKeyPair
  try {
    pair = (await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits'])) as CryptoKeyPair
  } catch {
    throw new Error('This browser cannot make X25519 keys. Use a current version of Chrome, Edge, Firefox or Safari, or make a key with `sealpost keygen`.')
  }
  const recipient = await identityToRecipient(pair.privateKey)
  const record: BrowserKey = { key: pair.privateKey, recipient, created: new Date().toISOString() }
  await transact('readwrite', (s) => s.add(record, BROWSER_KEY))
  return record
}

/** Registers `recipient` as one of the caller's keys; one already registered is fine. */
export async function registerKey(recipient: string): Promise<'registered' | 'already'> {
  try {
    await json('/api/v1/keys', 'POST', { recipient })
    return 'registered'
  } catch (e) {
    if (e instanceof ApiError && e.code === 'already_exists') return 'already'
    throw e
  }
}

/** The identities in an age identity file's text: `AGE-SECRET-KEY-1…` (and post-quantum
 * `AGE-SECRET-KEY-PQ-1…`) lines; blank lines and `#` comments are skipped; anything else is
 * refused, as age does. Each identity is checked by deriving its recipient. */
export async function parseIdentityFile(text: string): Promise<string[]> {
  const identities: string[] = []
  const lines = text.split(/\r?\n/)
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const upper = line.toUpperCase()
    if (!upper.startsWith('AGE-SECRET-KEY-1') && !upper.startsWith('AGE-SECRET-KEY-PQ-1')) {
      throw new Error(
        `Line ${i + 1} of the identity file is not an age identity. Choose the file that \`sealpost keygen\` or \`age-keygen\` wrote (its key line starts with AGE-SECRET-KEY-1).`,
      )
    }
    try {
      await identityToRecipient(upper)
    } catch {
      throw new Error(`Line ${i + 1} of the identity file is a damaged age identity. Choose an undamaged copy of the file.`)
    }
    identities.push(upper)
  }
  if (identities.length === 0) {
    throw new Error('The identity file holds no age identity. Choose the file that `sealpost keygen` or `age-keygen` wrote.')
  }
  return identities
}

/** The keys page: `#make-browser-key` makes a browser key and registers it. */
export function keysPage(): void {
  const button = document.getElementById('make-browser-key') as HTMLButtonElement | null
  if (!button) return
  let region = document.getElementById('browser-key-status')
  if (!region) {
    region = document.createElement('p')
    region.id = 'browser-key-status'
    region.className = 'govuk-body'
    region.setAttribute('role', 'status')
    region.setAttribute('aria-live', 'polite')
    button.after(region)
  }
  const status = region
  void loadBrowserKey().then((k) => {
    if (k) say(status, `This browser keeps a key: ${k.recipient}`)
  })
  button.addEventListener('click', async () => {
    button.disabled = true
    try {
      const existing = await loadBrowserKey()
      const key = existing ?? (await makeBrowserKey())
      say(status, existing ? 'This browser already keeps a key. Registering it…' : 'Key made. Registering it…')
      const done = await registerKey(key.recipient)
      say(
        status,
        `${done === 'registered' ? 'Registered' : 'Already registered'}: ${key.recipient}. ` +
          'This key lives only in this browser and cannot be copied, so keep a second key as an offline backup: ' +
          'make one with `sealpost keygen` and register its public key below.',
      )
    } catch (e) {
      say(status, `The key could not be made or registered. ${messageOf(e)}`)
    } finally {
      button.disabled = false
    }
  })
}
