// The age ASCII armour (c2sp.org/age, "ASCII armor": PEM of type `AGE ENCRYPTED FILE`), which
// the gateway accepts: unwrapped here, streaming, so an armoured upload (`age -a`) opens in the
// browser as it does with `sealpost fetch`. The armour's content is authenticated by age itself.

const BEGIN = '-----BEGIN AGE ENCRYPTED FILE-----'
const END = '-----END AGE ENCRYPTED FILE-----'

/** Whether a ciphertext's first bytes are armoured. */
export function isArmored(prefix: Uint8Array): boolean {
  const head = new TextDecoder().decode(prefix.subarray(0, 64)).replace(/^\s+/, '')
  return head.length > 0 && (head.startsWith(BEGIN) || BEGIN.startsWith(head))
}

function decodeLine(line: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(line) || line.length % 4 !== 0 || line.length > 64) {
    throw new Error('the armour holds a line that is not base64')
  }
  return Uint8Array.from(atob(line), (c) => c.charCodeAt(0))
}

/** Unwraps armour as it streams: the BEGIN line, base64 lines, the END line. */
export class Dearmor {
  private pending = ''
  private state: 'before' | 'body' | 'after' = 'before'
  private readonly decoder = new TextDecoder()

  /** The bytes of the complete lines in `chunk` (with what was held back before). */
  push(chunk: Uint8Array): Uint8Array {
    this.pending += this.decoder.decode(chunk, { stream: true })
    const lines = this.pending.split('\n')
    this.pending = lines.pop() ?? ''
    return this.lines(lines)
  }

  /** The whole base64 groups of the line the input so far ends in (the gateway serves an
   * armoured header through the group of 4 characters that completes it, often mid-line). */
  partial(): Uint8Array {
    if (this.state !== 'body') return new Uint8Array(0)
    const line = this.pending.replace(/\r$/, '').trim()
    const whole = line.slice(0, line.length - (line.length % 4))
    return whole === '' || whole.startsWith('-') ? new Uint8Array(0) : decodeLine(whole)
  }

  /** The end of the input: the END line must have come. */
  finish(): Uint8Array {
    const rest = this.lines([this.pending])
    this.pending = ''
    if (this.state !== 'after') throw new Error('the armour has no END line')
    return rest
  }

  private lines(lines: string[]): Uint8Array {
    const parts: Uint8Array[] = []
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '').trim()
      if (this.state === 'before') {
        if (line === '') continue
        if (line !== BEGIN) throw new Error('the armour does not start with its BEGIN line')
        this.state = 'body'
      } else if (this.state === 'body') {
        if (line === END) this.state = 'after'
        else parts.push(decodeLine(line))
      } else if (line !== '') {
        throw new Error('data after the armour END line')
      }
    }
    const total = parts.reduce((n, p) => n + p.length, 0)
    const out = new Uint8Array(total)
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.length
    }
    return out
  }
}

/** The bytes an armoured prefix holds: its complete lines and the whole groups of the last. */
export function dearmorPrefix(prefix: Uint8Array): Uint8Array {
  const d = new Dearmor()
  const lines = d.push(prefix)
  const tail = d.partial()
  const out = new Uint8Array(lines.length + tail.length)
  out.set(lines)
  out.set(tail, lines.length)
  return out
}

/** A TransformStream that unwraps armour. */
export function dearmorStream(): TransformStream<Uint8Array, Uint8Array> {
  const d = new Dearmor()
  return new TransformStream({
    transform(chunk, controller) {
      const out = d.push(chunk)
      if (out.length > 0) controller.enqueue(out)
    },
    flush(controller) {
      const out = d.finish()
      if (out.length > 0) controller.enqueue(out)
    },
  })
}
