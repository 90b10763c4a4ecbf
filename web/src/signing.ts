// Signing keys in the browser. A browser signing key is an Ed25519 WebCrypto key pair whose
// private half is not extractable, kept in IndexedDB beside the browser's age key (a structured
// clone of the CryptoKey: the browser stores it without ever exposing its bytes), one per signed-
// in user (`signing-key:ORG/NAME`), so a shared browser never signs as the wrong person. Its
// public half is registered in the directory as a `sealpost-signing1…` key with
// `POST /api/v1/keys`; the collect page signs delivery statements with it and the send page signs
// manifests. Whether it is registered is asked of the gateway each time (`GET /api/v1/keys`): a
// key removed from the directory no longer signs.

import { ApiError, json, type KeyInfo } from './api.ts'
import { transact } from './keys.ts'
import { keyFingerprint, signingPublic } from './statements.ts'
import { messageOf, say } from './ui.ts'

/** The signing key this browser keeps for one user. */
export interface SigningKey {
  /** Ed25519, not extractable, usable to sign. */
  privateKey: CryptoKey
  /** Its public half. */
  publicKey: CryptoKey
  /** The directory's spelling: `sealpost-signing1…`. */
  public: string
  /** `sha256:…` of `public`: the key's name on the wire. */
  fingerprint: string
  /** ORG/NAME of the user it was made for. */
  user: string
  /** When it was made (ISO 8601). */
  created: string
}

/** `GET /api/v1/keys`: the caller and their live keys. */
interface OwnKeys {
  user: string
  keys: KeyInfo[]
}

/** Where this browser stands for signing, for the signed-in user. */
export type SigningState =
  | { kind: 'none'; user: string }
  | { kind: 'unregistered'; user: string; key: SigningKey }
  | { kind: 'registered'; user: string; key: SigningKey }

const recordName = (user: string) => `signing-key:${user}`

/** The signing key kept in this browser for `user`, if there is one (and IndexedDB works). */
export async function loadSigningKey(user: string): Promise<SigningKey | undefined> {
  if (typeof indexedDB === 'undefined') return undefined
  try {
    const found = (await transact<unknown>('readonly', (s) => s.get(recordName(user)))) as Partial<SigningKey> | undefined
    return found?.privateKey instanceof CryptoKey && typeof found.public === 'string' && found.user === user
      ? (found as SigningKey)
      : undefined
  } catch {
    return undefined
  }
}

/** Makes a new signing key for `user` and keeps it; refuses to replace one. */
export async function makeSigningKey(user: string): Promise<SigningKey> {
  if (typeof indexedDB === 'undefined') {
    throw new Error('This browser cannot keep keys (its storage is switched off). Sign with `sealpost keygen --signing` and the command line instead.')
  }
  if (await loadSigningKey(user)) throw new Error('This browser already keeps a signing key for you.')
  let pair: CryptoKeyPair
  try {
    pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as CryptoKeyPair
  } catch {
    throw new Error(
      'This browser cannot make Ed25519 signing keys. Use a current version of Chrome, Edge, Firefox or Safari, or sign with `sealpost keygen --signing` and the command line.',
    )
  }
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey))
  const pub = signingPublic(raw)
  const record: SigningKey = {
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    public: pub,
    fingerprint: keyFingerprint(pub),
    user,
    created: new Date().toISOString(),
  }
  await transact('readwrite', (s) => s.add(record, recordName(user)))
  return record
}

/** The signed-in user and their live keys, from the gateway. */
export async function ownKeys(): Promise<OwnKeys> {
  return json<OwnKeys>('/api/v1/keys')
}

/** Where this browser stands for signing as the signed-in user: no key, a key the directory
 * does not (or no longer) hold, or a registered key. */
export async function signingState(): Promise<SigningState> {
  const own = await ownKeys()
  const key = await loadSigningKey(own.user)
  if (!key) return { kind: 'none', user: own.user }
  const registered = own.keys.some((k) => k.fingerprint === key.fingerprint && k.recipient === key.public)
  return { kind: registered ? 'registered' : 'unregistered', user: own.user, key }
}

/** Registers the key's public half as one of the caller's keys; one already registered is fine. */
export async function registerSigningKey(key: SigningKey): Promise<'registered' | 'already'> {
  try {
    await json('/api/v1/keys', 'POST', { recipient: key.public })
    return 'registered'
  } catch (e) {
    if (e instanceof ApiError && e.code === 'already_exists') return 'already'
    throw e
  }
}

/** A sentence saying where this browser stands for signing. */
export function describeSigning(state: SigningState): string {
  switch (state.kind) {
    case 'registered':
      return `This browser holds a registered signing key for ${state.user}: ${state.key.public} (${state.key.fingerprint}).`
    case 'unregistered':
      return `This browser holds a signing key for ${state.user}, but it is not registered (it may have been removed): ${state.key.public}. Select “Register this browser’s signing key” to sign with it.`
    case 'none':
      return `This browser holds no signing key for ${state.user}.`
  }
}

/** The keys page's signing part: `#make-signing-key` makes (or registers again) this browser's
 * signing key, and `#signing-key-status` says whether this browser holds a registered one. */
export function signingKeysPage(): void {
  const button = document.getElementById('make-signing-key') as HTMLButtonElement | null
  const status = document.getElementById('signing-key-status')
  if (!button || !status) return
  status.hidden = false
  say(status, 'Checking whether this browser holds a signing key…')
  const show = async (): Promise<SigningState | undefined> => {
    try {
      const state = await signingState()
      say(status, describeSigning(state))
      status.dataset.state = state.kind
      button.textContent = state.kind === 'none' ? 'Make a signing key in this browser' : 'Register this browser’s signing key'
      button.hidden = state.kind === 'registered'
      return state
    } catch (e) {
      say(status, `Whether this browser holds a signing key cannot be checked: ${messageOf(e)}`)
      return undefined
    }
  }
  void show()
  button.addEventListener('click', async () => {
    button.disabled = true
    try {
      const state = await signingState()
      const key = state.kind === 'none' ? await makeSigningKey(state.user) : state.key
      say(status, state.kind === 'none' ? 'Signing key made. Registering it…' : 'Registering this browser’s signing key…')
      await registerSigningKey(key)
      const now = await show()
      if (now?.kind === 'registered') {
        say(
          status,
          `${describeSigning(now)} It signs for what you collect and what you send in this browser. ` +
            'It cannot be copied out of this browser: elsewhere, make another one, or use `sealpost keygen --signing` with the command line.',
        )
      }
    } catch (e) {
      say(status, `The signing key could not be made or registered. ${messageOf(e)}`)
    } finally {
      button.disabled = false
    }
  })
}
