/**
 * The one writer of protocol lines. stdout is smtpd's channel: any line that
 * is not a protocol answer makes smtpd exit, so nothing else in the process
 * may write there (see {@link guardStdout}).
 *
 * Lines are batched: everything produced while one input chunk is handled
 * goes out in one write at the next turn of the event loop (a write per line
 * costs a syscall each; batching is what brings a Node pass-through from
 * ~375 to ~145–260 µs of CPU per message, shared/bench/RESULTS.md). When smtpd
 * reads slower than we write, `onPressure(true)` asks the runtime to stop
 * reading stdin until the output drains.
 */

import { Socket } from 'node:net'
import type { Writable } from 'node:stream'

const FLUSH_BYTES = 256 * 1024
const HIGH_WATER = 4 * 1024 * 1024
/** bytes are gathered in slabs of this size (a buffer of a line's size for a longer line) */
const SLAB = 128 * 1024
/** written slabs kept for reuse */
const FREE_SLABS = 8

/** A buffer bytes are gathered in, and the writes of it still under way. */
class Slab {
  pending = 0
  /** bytes go to another slab now */
  retired = false
  constructor(readonly buf: Buffer) {}
}

export type RawWrite = (data: string | Uint8Array, encoding: BufferEncoding, cb?: () => void) => boolean

const EMPTY = Buffer.alloc(0)

export class ProtocolWriter {
  /**
   * What is queued: bytes in `buf[start, used)` (from `datalines`), then the strings of
   * `batch` (from `line`). A batch of strings alone is joined and written as one string, as
   * always; bytes spare the string per line that a held message replayed line by line would
   * cost. Each flush writes a view of `buf` and the next bytes continue in the rest of the
   * same slab. When the output is a socket (smtpd's socketpair, a pipe), a slab whose writes
   * have all completed is free for reuse: the kernel has the bytes. New buffers for output
   * that waits for a slow reader would outlive a few young-generation collections, move to
   * the old generation and, dead, stay allocated until a full collection, which a small heap
   * seldom needs: megabytes of them after a few large messages.
   */
  private batch: string[] = []
  private batchBytes = 0
  private buf: Buffer = EMPTY
  /** the slab `buf` is, if it is one */
  private slab: Slab | undefined
  private readonly free: Buffer[] = []
  private readonly recycle: boolean
  private start = 0
  private used = 0
  private scheduled = false
  private blocked = false
  private waiters: (() => void)[] = []
  private broken = false

  constructor(
    private readonly out: Writable,
    /** the real write of `out` (see guardStdout) */
    private readonly write: RawWrite = out.write.bind(out) as RawWrite,
    private readonly onPressure: (blocked: boolean) => void = () => {},
    private readonly onError: (err: Error) => void = () => {},
  ) {
    // A socket is done with a buffer when its write's callback runs; any other stream (a
    // PassThrough in tests) may hand the buffer itself on to its reader.
    this.recycle = out instanceof Socket
    out.on('error', (err: Error) => {
      // EPIPE: smtpd is gone; EOF on stdin follows and ends the process.
      this.broken = true
      this.batch = []
      this.batchBytes = 0
      this.buf = EMPTY
      this.slab = undefined
      this.start = this.used = 0
      this.onError(err)
    })
    out.on('drain', () => this.drained())
  }

  /** Queues one line (a latin1 string without '\n'). */
  line(s: string): void {
    if (this.broken) return
    this.batch.push(s)
    this.batchBytes += s.length + 1
    this.queued()
  }

  /**
   * Queues one data-line answer per line of `src[start, end)`, which holds whole lines as a
   * message holds them (unstuffed, each ending in '\n'): `prefix` (the answer's
   * `filter-dataline|…|`), a '.' before a line that starts with one (smtpd removes it), the
   * line. This is `line(prefix + stuff(l))` for each line, without a string per line. A line
   * whose stuffed form is longer than `max` bytes is given to `long` instead, in its place,
   * unstuffed and without its '\n'.
   */
  datalines(prefix: Buffer, src: Buffer, start: number, end: number, max: number, long: (line: string) => void): void {
    if (this.broken) return
    this.settle()
    const p = prefix.length
    let s = start
    while (s < end) {
      const nl = src.indexOf(10, s)
      const dot = src[s] === 46 ? 1 : 0
      if (nl - s + dot > max) {
        long(src.toString('latin1', s, nl))
        this.settle()
      } else {
        this.room(p + dot + nl + 1 - s)
        const b = this.buf
        let w = this.used
        b.set(prefix, w)
        w += p
        if (dot) b[w++] = 46
        w += src.copy(b, w, s, nl + 1)
        this.used = w
        if (w - this.start >= FLUSH_BYTES) this.flush()
      }
      s = nl + 1
    }
    this.queued()
  }

  /** Moves the batch of strings behind the queued bytes. */
  private settle(): void {
    if (this.batch.length === 0) return
    const text = this.takeBatch()
    this.room(text.length)
    this.used += this.buf.write(text, this.used, 'latin1')
  }

  /** Makes room for `n` more bytes in `buf`: what is queued is written first, then a new slab. */
  private room(n: number): void {
    if (n <= this.buf.length - this.used) return
    if (this.used > this.start) this.writeBytes()
    const old = this.slab
    if (old !== undefined) {
      old.retired = true
      if (old.pending === 0) this.release(old)
    }
    if (n <= SLAB) {
      this.slab = new Slab(this.free.pop() ?? Buffer.allocUnsafe(SLAB))
      this.buf = this.slab.buf
    } else {
      this.slab = undefined
      this.buf = Buffer.allocUnsafe(n)
    }
    this.start = this.used = 0
  }

  private release(slab: Slab): void {
    if (this.recycle && this.free.length < FREE_SLABS) this.free.push(slab.buf)
  }

  /** Writes the queued bytes (`buf[start, used)`). */
  private writeBytes(): void {
    const data = this.buf.subarray(this.start, this.used)
    this.start = this.used
    const slab = this.slab
    let ok: boolean
    if (slab !== undefined && this.recycle) {
      slab.pending++
      ok = this.write(data, 'latin1', () => {
        if (--slab.pending === 0 && slab.retired) this.release(slab)
      }) // stdout-ok: the only protocol writer
    } else ok = this.write(data, 'latin1') // stdout-ok: the only protocol writer
    this.pressure(ok)
  }

  private pressure(ok: boolean): void {
    if (!ok || this.out.writableLength > HIGH_WATER) {
      if (!this.blocked) {
        this.blocked = true
        this.onPressure(true)
      }
    }
  }

  private queued(): void {
    if (this.used - this.start + this.batchBytes >= FLUSH_BYTES) this.flush()
    else if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.flushScheduled)
    }
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false
    this.flush()
  }

  flush(): void {
    if (this.broken) return
    if (this.used > this.start) {
      this.settle()
      this.writeBytes()
      return
    }
    if (this.batch.length === 0) return
    this.pressure(this.write(this.takeBatch(), 'latin1')) // stdout-ok: the only protocol writer
  }

  /** The queued strings as one text, each line ending in '\n'; the batch is emptied. */
  private takeBatch(): string {
    const text = this.batch.length === 1 ? this.batch[0] + '\n' : this.batch.join('\n') + '\n'
    this.batch = []
    this.batchBytes = 0
    return text
  }

  /** Resolves when the output is below its high-water mark (for senders of large messages). */
  ready(): Promise<void> {
    if (!this.blocked || this.broken) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** Flushes and resolves once everything queued has been handed to the kernel. */
  end(): Promise<void> {
    this.flush()
    if (this.broken || this.out.writableLength === 0) return Promise.resolve()
    return new Promise((resolve) => {
      this.write('', 'latin1', () => resolve()) // stdout-ok: empty write, only to wait for the queue
    })
  }

  private drained(): void {
    if (this.out.writableLength > HIGH_WATER) return
    if (this.blocked) {
      this.blocked = false
      this.onPressure(false)
    }
    const w = this.waiters
    this.waiters = []
    for (const resolve of w) resolve()
  }
}

/**
 * Makes `process.stdout.write` (and so console.log) go to stderr, and returns
 * the real write for the protocol writer. A library that prints to stdout
 * would otherwise kill smtpd ("Invalid filter message type").
 */
let realStdoutWrite: RawWrite | undefined

export function guardStdout(onStray: (text: string) => void): RawWrite {
  if (realStdoutWrite) return realStdoutWrite
  const stdout = process.stdout
  const realWrite = stdout.write.bind(stdout) as RawWrite
  realStdoutWrite = realWrite
  stdout.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    onStray(typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk))
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined
    if (cb) process.nextTick(cb)
    return true
  }) as typeof stdout.write
  return realWrite
}
