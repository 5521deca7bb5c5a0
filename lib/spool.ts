/**
 * Storage for a message held until its end (a DKIM signature or spam
 * headers go before it, so nothing can be sent until the last line).
 *
 * Lines are copied as bytes into 64 KiB blocks: a line string handed to us is
 * a slice of its whole protocol line, and keeping the string would keep that
 * line (and its ~70-byte request prefix) alive — 1 MB held as strings cost
 * ~2.4 MB of heap. Up to `memoryLimit` bytes the blocks stay in memory;
 * beyond that the whole message moves to a temp file created with mode 0600
 * and unlinked at once, so nothing is left behind whatever happens to the
 * process, and memory per message stays bounded however large the message is.
 */

import { closeSync, openSync, read, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const DEFAULT_MEMORY_LIMIT = 1024 * 1024
const BLOCK = 64 * 1024
/** lines shorter than this are copied byte by byte (see append) */
const SHORT_LINE = 256
/** a spilled message is read back through a buffer of this size */
const READ_CHUNK = 64 * 1024

let counter = 0

export interface SpoolOptions {
  readonly memoryLimit?: number
  readonly directory?: string
}

export class Spool {
  /** full blocks, then `block` being filled up to `used` */
  private blocks: Buffer[] = []
  private block: Buffer | undefined
  private used = 0
  private bytes = 0
  private fd: number | undefined
  private fileBytes = 0
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

  /** Keeps one line (latin1, without '\n'). */
  append(line: string): void {
    if (this.disposed) return
    const n = line.length
    this.bytes += n + 1
    const b = this.block
    if (b !== undefined && n < SHORT_LINE && n < b.length - this.used) {
      // Most lines are short: a JS loop copies them faster than a Buffer.write call per line
      // (a native call, with a slice of the string for what fits and another for the '\n').
      let w = this.used
      for (let i = 0; i < n; i++) b[w++] = line.charCodeAt(i)
      b[w++] = 10
      this.used = w
    } else {
      this.put(line)
      this.put('\n')
    }
    if (this.fd === undefined && this.bytes > this.memoryLimit) this.spill()
  }

  private put(s: string): void {
    let off = 0
    while (off < s.length) {
      if (!this.block || this.used === this.block.length) this.nextBlock()
      const n = this.block!.write(s.slice(off, off + this.block!.length - this.used), this.used, 'latin1')
      this.used += n
      off += n
    }
  }

  private nextBlock(): void {
    if (this.block) {
      this.blocks.push(this.block)
      // On disk, full blocks go to the file as they fill; one block is reused.
      if (this.fd !== undefined) this.writeBlocks()
    }
    this.block = this.fd !== undefined && this.block ? this.block : Buffer.allocUnsafe(BLOCK)
    this.used = 0
  }

  private spill(): void {
    const path = join(this.directory ?? tmpdir(), `opensmtpd-filters.${process.pid}.${++counter}.${Math.random().toString(36).slice(2)}`)
    // 'wx+': fail rather than follow a planted symlink; 0600: message content is private.
    this.fd = openSync(path, 'wx+', 0o600)
    unlinkSync(path)
    this.writeBlocks()
  }

  /** Writes the full blocks (and, with `all`, the block being filled) to the file. */
  private writeBlocks(all = false): void {
    const fd = this.fd!
    const out = all && this.block ? [...this.blocks, this.block.subarray(0, this.used)] : this.blocks
    for (const b of out) {
      let off = 0
      while (off < b.length) off += writeSync(fd, b, off, b.length - off, this.fileBytes + off)
      this.fileBytes += b.length
    }
    this.blocks = []
    if (all) this.used = 0
  }

  /**
   * Reads the message back in order, as Buffers of whole lines: each holds one or more lines
   * as appended, each ending in '\n'. In memory these are the blocks themselves (a line that
   * straddles two blocks comes on its own); from the file, views of one read buffer, valid
   * until the next is asked for.
   */
  async *chunks(): AsyncGenerator<Buffer> {
    if (this.fd === undefined) {
      const blocks = this.block ? [...this.blocks, this.block.subarray(0, this.used)] : this.blocks
      let carry: Buffer | undefined
      for (const b of blocks) {
        let from = 0
        if (carry !== undefined) {
          const nl = b.indexOf(10)
          if (nl < 0) {
            carry = Buffer.concat([carry, b])
            continue
          }
          yield Buffer.concat([carry, b.subarray(0, nl + 1)])
          carry = undefined
          from = nl + 1
        }
        const last = b.lastIndexOf(10)
        if (last >= from) yield b.subarray(from, last + 1)
        if (Math.max(last + 1, from) < b.length) carry = b.subarray(Math.max(last + 1, from))
      }
      return
    }
    this.writeBlocks(true)
    const fd = this.fd
    let chunk = Buffer.allocUnsafe(READ_CHUNK)
    // bytes of a line not yet complete, at the start of `chunk`
    let kept = 0
    let pos = 0
    while (pos < this.fileBytes && !this.disposed) {
      if (kept === chunk.length) {
        // a line longer than the buffer (smtpd's are below 66 KB; ours cannot be)
        const bigger = Buffer.allocUnsafe(2 * chunk.length)
        chunk.copy(bigger, 0, 0, kept)
        chunk = bigger
      }
      const into = chunk
      const n = await new Promise<number>((resolve, reject) =>
        read(fd, into, kept, Math.min(into.length - kept, this.fileBytes - pos), pos, (err, got) => (err ? reject(err) : resolve(got))),
      )
      if (n === 0) break
      pos += n
      const filled = kept + n
      const last = chunk.lastIndexOf(10, filled - 1)
      if (last < 0) {
        kept = filled
        continue
      }
      yield chunk.subarray(0, last + 1)
      kept = filled - last - 1
      if (kept > 0) chunk.copyWithin(0, last + 1, filled)
    }
  }

  /** Reads the message back, in batches of lines (without their '\n'), in order. */
  async *read(): AsyncGenerator<string[]> {
    for await (const c of this.chunks()) {
      // one string per chunk, the lines slices of it: no native call per line
      const text = c.toString('latin1')
      const batch: string[] = []
      let from = 0
      for (;;) {
        const nl = text.indexOf('\n', from)
        if (nl < 0) break
        batch.push(text.slice(from, nl))
        from = nl + 1
      }
      yield batch
    }
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.blocks = []
    this.block = undefined
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
