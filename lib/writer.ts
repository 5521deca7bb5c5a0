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

export type RawWrite = (data: string, encoding: BufferEncoding, cb?: () => void) => boolean

export class ProtocolWriter {
  private batch: string[] = []
  private batchBytes = 0
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
      this.onError(err)
    })
    out.on('drain', () => this.drained())
  }

  /** Queues one line (a latin1 string without '\n'). */
  line(s: string): void {
    if (this.broken) return
    this.batch.push(s)
    this.batchBytes += s.length + 1
    if (this.batchBytes >= FLUSH_BYTES) this.flush()
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
    if (this.batch.length === 0 || this.broken) return
    const data = this.batch.length === 1 ? this.batch[0] + '\n' : this.batch.join('\n') + '\n'
    this.batch = []
    this.batchBytes = 0
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
