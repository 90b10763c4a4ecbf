// The JSON API as the pages call it: the session cookie (`credentials: 'same-origin'`, never an
// Authorization header), and the page's CSRF token in `X-CSRF-Token` on every method but GET,
// HEAD and OPTIONS. Error answers are `{"error":{"code","message"}}`; the message is written
// for people, so it is what the page shows.

/** An error answer, or a failure to reach the gateway. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

/** The CSRF token of the page (`<meta name="csrf-token">`), or an empty string. */
export function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? ''
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS'])

/** `fetch` with the session cookie and, for state-changing methods, the CSRF header. A network
 * failure becomes an ApiError with status 0. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase()
  const headers = new Headers(init.headers)
  if (!SAFE.has(method)) headers.set('X-CSRF-Token', csrfToken())
  try {
    return await fetch(path, { ...init, method, headers, credentials: 'same-origin', cache: 'no-store' })
  } catch {
    throw new ApiError(0, 'unreachable', 'The gateway could not be reached. Check your connection and try again.')
  }
}

/** The ApiError an unsuccessful answer stands for, with the gateway's message when it sent one. */
export async function errorOf(response: Response): Promise<ApiError> {
  let code = 'http_' + response.status
  let message = `The gateway answered ${response.status} ${response.statusText}. Try again, and tell the gateway's operators if it persists.`
  try {
    const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } }
    if (typeof body.error?.code === 'string') code = body.error.code
    if (typeof body.error?.message === 'string' && body.error.message !== '') message = sentence(body.error.message)
  } catch {
    // Not JSON: keep the status line.
  }
  if (response.status === 401) {
    message = 'Your session has ended. Sign in again, then come back to this page.'
  }
  return new ApiError(response.status, code, message)
}

/** The gateway's messages are lowercase fragments; a page shows sentences. */
function sentence(message: string): string {
  const text = message.charAt(0).toUpperCase() + message.slice(1)
  return /[.!?]$/.test(text) ? text : text + '.'
}

/** A JSON request; rejects with an ApiError unless the answer is 2xx. */
export async function json<T>(path: string, method = 'GET', body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const init: RequestInit = { method, headers: { Accept: 'application/json', ...headers } }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers = { ...init.headers, 'Content-Type': 'application/json' }
  }
  const response = await request(path, init)
  if (!response.ok) throw await errorOf(response)
  return (await response.json()) as T
}

/** A text resource (such as `/log/key`). */
export async function text(path: string): Promise<string> {
  const response = await request(path)
  if (!response.ok) throw await errorOf(response)
  return response.text()
}

// The answers the pages read (the server's wire types, only the fields used).

export interface KeyInfo {
  recipient: string
  stanza_type: string
  fingerprint: string
  receipt?: string | null
}

export interface Keys {
  /** The user, `ORG/NAME`. */
  user: string
  /** The user's name salt: log entries name them by `hex(HMAC-SHA256(salt, "ORG/NAME"))`. */
  name_salt: string
  keys: KeyInfo[]
}

export interface Receipt {
  event: string
  index: number
  receipt: string
}

export interface Receipts {
  receipts: Receipt[]
}

export interface LinkAnswer {
  recipient: string
  url: string
  expires_at: string
}

export interface UploadAnswer {
  id: string
  status: string
  receipt?: string | null
  size: number
  digest: string
  classification: string
  expires_at: string
  links?: LinkAnswer[]
}

export interface Directory {
  orgs: { name: string; kind: string; users: string[] }[]
}

/** Encodes one path segment (ids and names are checked by the server; this keeps them whole). */
export function segment(s: string): string {
  return encodeURIComponent(s)
}
