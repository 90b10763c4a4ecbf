// SHA-256 of a stream as it passes: the collect page checks the ciphertext it receives against
// the logged digest, the send page signs the digest of the ciphertext it wrote.

import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

/** A stream that hashes what passes through it; `digest()` (once it has ended) is
 * `sha256:<lowercase hex>`. */
export function hashing(): { stream: TransformStream<Uint8Array, Uint8Array>; digest: () => string } {
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
