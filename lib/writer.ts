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

import type { Writable } from 'node:stream'

const FLUSH_BYTES = 256 * 1024
const HIGH_WATER = 4 * 1024 * 1024
/** bytes are gathered in buffers of at least this size */
const CHUNK = 64 * 1024

export type RawWrite = (data: string | Uint8Array, encoding: BufferEncoding, cb?: () => void) => boolean

const EMPTY = Buffer.alloc(0)

export class ProtocolWriter {
  /**
   * What is queued: bytes in `buf[start, used)` (from `datalines`), then the strings of
   * `batch` (from `line`). A batch of strings alone is joined and written as one string, as
   * always; bytes spare the string per line that a held message replayed line by line would
   * cost. Each flush writes a view of `buf` and the next bytes continue in the rest of the
   * same buffer, so buffers are allocated per 64 KiB of output, not per flush.
   */
  private batch: string[] = []
  private batchBytes = 0
  private buf: Buffer = EMPTY
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
    out.on('error', (err: Error) => {
      // EPIPE: smtpd is gone; EOF on stdin follows and ends the process.
      this.broken = true
      this.batch = []
      this.batchBytes = 0
      this.buf = EMPTY
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
    const text = this.batch.length === 1 ? this.batch[0] + '\n' : this.batch.join('\n') + '\n'
    this.batch = []
    this.batchBytes = 0
    this.room(text.length)
    this.used += this.buf.write(text, this.used, 'latin1')
  }

  /** Makes room for `n` more bytes in `buf`. */
  private room(n: number): void {
    if (n <= this.buf.length - this.used) return
    // The queued bytes move to a new buffer (twice their size, so that a batch growing to
    // FLUSH_BYTES is copied a few times, not once per line); what was flushed stays with
    // its write.
    const queued = this.used - this.start
    const b = Buffer.allocUnsafe(Math.max(CHUNK, 2 * (queued + n)))
    if (queued > 0) this.buf.copy(b, 0, this.start, this.used)
    this.buf = b
    this.start = 0
    this.used = queued
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
    let data: string | Buffer
    if (this.used === this.start) {
      if (this.batch.length === 0) return
      data = this.batch.length === 1 ? this.batch[0] + '\n' : this.batch.join('\n') + '\n'
      this.batch = []
      this.batchBytes = 0
    } else {
      this.settle()
      data = this.buf.subarray(this.start, this.used)
      this.start = this.used
    }
    const ok = this.write(data, 'latin1') // stdout-ok: the only protocol writer
    if (!ok || this.out.writableLength > HIGH_WATER) {
      if (!this.blocked) {
        this.blocked = true
        this.onPressure(true)
      }
    }
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
