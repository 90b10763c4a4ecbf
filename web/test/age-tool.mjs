// The `age-encryption` npm package (the library the browser pages use) as a small command, for
// the Rust interop tests (tests/it/pq_interop.rs) to run under Node: what it makes must open with
// `sealpost fetch`, and what `sealpost send` makes must open here.
//
//   node test/age-tool.mjs keygen-pq              prints a new hybrid identity, then its recipient
//   node test/age-tool.mjs encrypt RECIPIENT…     encrypts standard input to standard output
//   node test/age-tool.mjs decrypt IDENTITY_FILE  decrypts standard input to standard output
//
// Plain JavaScript, so it runs without a build step; it needs `npm ci` in web/ first.

import { readFileSync } from 'node:fs'
import { Decrypter, Encrypter, generateHybridIdentity, identityToRecipient } from 'age-encryption'

/** Standard input, whole. */
function stdin() {
  return new Uint8Array(readFileSync(0))
}

/** Writes bytes to standard output and waits until they are flushed. */
function stdout(bytes) {
  return new Promise((resolve, reject) => process.stdout.write(bytes, (e) => (e ? reject(e) : resolve())))
}

const [command, ...args] = process.argv.slice(2)
switch (command) {
  case 'keygen-pq': {
    const identity = await generateHybridIdentity()
    await stdout(`${identity}\n${await identityToRecipient(identity)}\n`)
    break
  }
  case 'encrypt': {
    const e = new Encrypter()
    for (const r of args) e.addRecipient(r)
    await stdout(await e.encrypt(stdin()))
    break
  }
  case 'decrypt': {
    const d = new Decrypter()
    const lines = readFileSync(args[0], 'utf8').split('\n').map((l) => l.trim())
    for (const line of lines.filter((l) => l !== '' && !l.startsWith('#'))) d.addIdentity(line)
    await stdout(await d.decrypt(stdin()))
    break
  }
  default:
    process.stderr.write('usage: age-tool.mjs keygen-pq | encrypt RECIPIENT… | decrypt IDENTITY_FILE\n')
    process.exit(2)
}
