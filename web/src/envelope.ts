// The age header of a ciphertext, checked from its first bytes: does an identity open it? This
// is what lets the collect page refuse a wrong identity before the link is used up, as
// `sealpost fetch` does (`seal::check_header`).

import type { Decrypter } from 'age-encryption'
import { dearmorPrefix, isArmored } from './armor.ts'
import { messageOf } from './ui.ts'

// What age-encryption (at the version locked in package-lock.json) throws when no identity
// matches a stanza; test/envelope.test.ts pins it.
const NO_MATCH = 'no identity matched any of the file'

export type HeaderVerdict = 'opens' | 'need-more' | 'no-match' | { broken: string }

/** The age header at the start of `bytes` (binary, after the armour is unwrapped), if complete. */
export function headerOf(bytes: Uint8Array): Uint8Array | undefined {
  // The header ends with the line `--- <MAC>`; no other line starts with `---`.
  for (let i = 0; i + 4 < bytes.length; i++) {
    if (bytes[i] === 0x0a && bytes[i + 1] === 0x2d && bytes[i + 2] === 0x2d && bytes[i + 3] === 0x2d && bytes[i + 4] === 0x20) {
      const end = bytes.indexOf(0x0a, i + 5)
      return end < 0 ? undefined : bytes.subarray(0, end + 1)
    }
  }
  return undefined
}

/** Whether the identities of `decrypter` open the header at the start of `prefix`: `need-more`
 * while the header is incomplete, `broken` when an identity matched but the header does not
 * authenticate (or the armour is damaged). */
export async function checkHeader(prefix: Uint8Array, decrypter: Decrypter): Promise<HeaderVerdict> {
  let binary = prefix
  if (isArmored(prefix)) {
    try {
      binary = dearmorPrefix(prefix)
    } catch (e) {
      return { broken: messageOf(e) }
    }
  }
  const header = headerOf(binary)
  if (!header) return 'need-more'
  try {
    await decrypter.decryptHeader(header)
    return 'opens'
  } catch (e) {
    const m = messageOf(e)
    return m.includes(NO_MATCH) ? 'no-match' : { broken: m }
  }
}

