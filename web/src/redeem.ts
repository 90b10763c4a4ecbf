// Redeeming a link from the page: `POST /api/v1/redeem` with `{"token"}` (a `/d#TOKEN` link) or
// `{"transfer"}` (the caller's own link, from the inbox), always with a `Range`, as
// `sealpost fetch` does: a closed range that stops short of the last byte gives the link back,
// and `bytes=N-` takes the rest and uses the link up when its last byte goes. A broken answer
// is resumed from the bytes received.

import { ApiError, errorOf, request } from './api.ts'

/** Which link to redeem. */
export type LinkRef = { token: string } | { transfer: string }

/** A ranged answer: the body, and what the headers say of the whole bundle. */
export interface Ranged {
  response: Response
  /** The first byte served. */
  start: number
  /** The whole bundle's size. */
  size: number
  /** The transfer, from `X-Sealpost-Transfer`. */
  transfer: string
  /** The ciphertext digest the gateway recorded, from `X-Sealpost-Digest`. */
  digest: string
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Redeems bytes `first..=last` (`last` undefined: to the end). Right after a broken download the
 * gateway may not have given the link back yet (409 `link_in_use`): that is retried briefly. */
export async function redeemRange(link: LinkRef, first: number, last?: number): Promise<Ranged> {
  const range = last === undefined ? `bytes=${first}-` : `bytes=${first}-${last}`
  let response: Response
  for (let attempt = 0; ; attempt++) {
    response = await request('/api/v1/redeem', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Range: range },
      body: JSON.stringify(link),
    })
    if (response.status !== 409 || attempt >= 20) break
    await sleep(100 + 50 * attempt)
  }
  if (response.status !== 206) throw await errorOf(response)
  const contentRange = response.headers.get('Content-Range') ?? ''
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange)
  if (!m || Number(m[1]) !== first) {
    await response.body?.cancel()
    throw new ApiError(
      206,
      'bad_range',
      "The gateway did not serve the part of the bundle asked for. A proxy in front of it may not pass byte ranges: tell the gateway's operators.",
    )
  }
  return {
    response,
    start: first,
    size: Number(m[3]),
    transfer: response.headers.get('X-Sealpost-Transfer') ?? '',
    digest: response.headers.get('X-Sealpost-Digest') ?? '',
  }
}

/** The whole body of a ranged answer. */
export async function bodyOf(answer: Ranged): Promise<Uint8Array> {
  return new Uint8Array(await answer.response.arrayBuffer())
}

/** How many times a broken download is resumed. */
const RESUMES = 5

/**
 * The ciphertext from byte 0 to `size`: `prefix` (bytes already received), then the rest with
 * `bytes=N-`, resumed from the bytes received when the answer breaks off. `onBytes` is told the
 * running total.
 */
export function ciphertextStream(
  link: LinkRef,
  prefix: Uint8Array,
  size: number,
  onBytes: (have: number) => void = () => {},
): ReadableStream<Uint8Array> {
  let have = 0
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined
  let resumes = 0
  const open = async () => {
    const answer = await redeemRange(link, have)
    if (!answer.response.body) throw new Error('The gateway sent no bytes. Try again.')
    reader = answer.response.body.getReader()
  }
  return new ReadableStream<Uint8Array>(
    {
      async start(controller) {
        if (prefix.length > 0) {
          have = prefix.length
          controller.enqueue(prefix)
          onBytes(have)
        }
        if (have >= size) controller.close()
      },
      async pull(controller) {
        for (;;) {
          try {
            if (!reader) await open()
            const { done, value } = await reader!.read()
            if (done) {
              reader = undefined
              if (have >= size) {
                controller.close()
                return
              }
              throw new Error('the answer ended early')
            }
            if (value.length === 0) continue
            const room = size - have
            const chunk = value.length > room ? value.subarray(0, room) : value
            have += chunk.length
            controller.enqueue(chunk)
            onBytes(have)
            if (have >= size) {
              await reader!.cancel().catch(() => {})
              reader = undefined
              controller.close()
            }
            return
          } catch (e) {
            reader = undefined
            if (e instanceof ApiError || resumes >= RESUMES) {
              controller.error(
                e instanceof ApiError
                  ? e
                  : new Error(
                      `The download broke off after ${have} of ${size} bytes. The link is still usable: select Collect again.`,
                    ),
              )
              return
            }
            resumes += 1
            await sleep(200 << resumes)
          }
        }
      },
      async cancel() {
        await reader?.cancel().catch(() => {})
      },
    },
    { highWaterMark: 0 },
  )
}
