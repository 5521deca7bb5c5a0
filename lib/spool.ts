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
 * All messages together keep at most `totalMemoryLimit` in memory: past it, a
 * message of more than one block spills whatever its own size, so ten large
 * messages in flight do not hold ten times `memoryLimit`.
 *
 * Blocks are reused: those of a message that spilled or ended go to a free
 * list for the next messages. A block lives as long as its message, long
 * enough for V8 to move its Buffer to the old generation, whose garbage is
 * collected rarely while the heap stays small: blocks allocated anew for each
 * message piled up there (20 MB after twenty 5 MB messages) before any
 * collection freed them.
 */

import { closeSync, openSync, read, unlinkSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const DEFAULT_MEMORY_LIMIT = 1024 * 1024
export const DEFAULT_TOTAL_MEMORY_LIMIT = 4 * 1024 * 1024
const BLOCK = 64 * 1024
/** lines shorter than this are copied byte by byte (see append) */
const SHORT_LINE = 256

let counter = 0

/** blocks free for the next message (at most the total memory limit's worth) */
const free: Buffer[] = []
const FREE_MAX = DEFAULT_TOTAL_MEMORY_LIMIT / BLOCK
/** bytes of blocks held by every spool of the process */
let held = 0

function takeBlock(): Buffer {
  held += BLOCK
  return free.pop() ?? Buffer.allocUnsafe(BLOCK)
}

function giveBlock(b: Buffer): void {
  held -= BLOCK
  if (free.length < FREE_MAX) free.push(b)
}

export interface SpoolOptions {
  /** bytes of one message kept in memory before it spills to a file */
  readonly memoryLimit?: number
  /** bytes of all messages kept in memory (see above; at least `memoryLimit`) */
  readonly totalMemoryLimit?: number
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
  private readonly totalMemoryLimit: number
  private readonly directory: string | undefined

  constructor(opts: SpoolOptions = {}) {
    this.memoryLimit = opts.memoryLimit ?? DEFAULT_MEMORY_LIMIT
    // one message may always use its own limit
    this.totalMemoryLimit = Math.max(opts.totalMemoryLimit ?? DEFAULT_TOTAL_MEMORY_LIMIT, this.memoryLimit)
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
    if (this.fd === undefined && (this.bytes > this.memoryLimit || (held > this.totalMemoryLimit && this.bytes > BLOCK))) this.spill()
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
    this.block = this.fd !== undefined && this.block ? this.block : takeBlock()
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
    // Written: free for other messages, except the one being filled (reused for the next lines).
    for (const b of this.blocks) if (b !== this.block) giveBlock(b)
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
    const block = takeBlock()
    let chunk = block
    // bytes of a line not yet complete, at the start of `chunk`
    let kept = 0
    let pos = 0
    try {
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
    } finally {
      giveBlock(block)
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
    // Nothing reads a block after this: a replay stops at its next chunk once its message is
    // aborted, and the bytes it already had were copied (to the writer, or into strings).
    for (const b of this.blocks) giveBlock(b)
    if (this.block) giveBlock(this.block)
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
