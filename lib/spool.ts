/**
 * Storage for a message held until its end (a DKIM signature or spam
 * headers go before it, so nothing can be sent until the last line).
 *
 * Lines stay in memory up to `memoryLimit` bytes; beyond that the whole
 * message moves to a temp file created with mode 0600 and unlinked at once,
 * so nothing is left behind whatever happens to the process, and memory per
 * message stays bounded however large the message is.
 */

import { closeSync, openSync, read, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LineSplitter } from './lines.js'

export const DEFAULT_MEMORY_LIMIT = 1024 * 1024

let counter = 0

export interface SpoolOptions {
  readonly memoryLimit?: number
  readonly directory?: string
}

export class Spool {
  private lines: string[] = []
  private bytes = 0
  private fd: number | undefined
  private fileBytes = 0
  private pending: string[] = []
  private pendingBytes = 0
  private disposed = false
  private readonly memoryLimit: number
  private readonly directory: string | undefined

  constructor(opts: SpoolOptions = {}) {
    this.memoryLimit = opts.memoryLimit ?? DEFAULT_MEMORY_LIMIT
    // os.tmpdir() reads three environment variables: ~10 µs, paid only by a message that spills
    this.directory = opts.directory
  }

  get size(): number {
    return this.bytes
  }

  get onDisk(): boolean {
    return this.fd !== undefined
  }

  append(line: string): void {
    if (this.disposed) return
    this.bytes += line.length + 1
    if (this.fd === undefined) {
      this.lines.push(line)
      if (this.bytes > this.memoryLimit) this.spill()
      return
    }
    this.pending.push(line)
    this.pendingBytes += line.length + 1
    if (this.pendingBytes >= 64 * 1024) this.writePending()
  }

  private spill(): void {
    const path = join(this.directory ?? tmpdir(), `opensmtpd-filters.${process.pid}.${++counter}.${Math.random().toString(36).slice(2)}`)
    // 'wx+': fail rather than follow a planted symlink; 0600: message content is private.
    this.fd = openSync(path, 'wx+', 0o600)
    unlinkSync(path)
    this.pending = this.lines
    this.pendingBytes = this.bytes
    this.lines = []
    this.writePending()
  }

  private writePending(): void {
    if (this.pending.length === 0 || this.fd === undefined) return
    const buf = Buffer.from(this.pending.join('\n') + '\n', 'latin1')
    let off = 0
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off, this.fileBytes + off)
    this.fileBytes += buf.length
    this.pending = []
    this.pendingBytes = 0
  }

  /** Reads the message back, in batches of lines, in order. */
  async *read(): AsyncGenerator<string[]> {
    if (this.fd === undefined) {
      if (this.lines.length > 0) yield this.lines
      return
    }
    this.writePending()
    const fd = this.fd
    const chunk = Buffer.allocUnsafe(256 * 1024)
    let batch: string[] = []
    const splitter = new LineSplitter((l) => batch.push(l), Number.MAX_SAFE_INTEGER)
    let pos = 0
    while (pos < this.fileBytes && !this.disposed) {
      const n = await new Promise<number>((resolve, reject) =>
        read(fd, chunk, 0, Math.min(chunk.length, this.fileBytes - pos), pos, (err, got) => (err ? reject(err) : resolve(got))),
      )
      if (n === 0) break
      pos += n
      splitter.push(chunk.subarray(0, n))
      if (batch.length > 0) {
        yield batch
        batch = []
      }
    }
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.lines = []
    this.pending = []
    if (this.fd !== undefined) {
      try {
        closeSync(this.fd)
      } catch {
        // already closed: nothing to release
      }
      this.fd = undefined
    }
  }
}
