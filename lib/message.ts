/**
 * The data-line path of one message through the filters of a process.
 *
 * smtpd sends the message one data-line request per line, still dot-stuffed,
 * and ends it with a lone "." (protocol.md §3.4). Each filter that handles
 * data is a stage; the output of stage n is the input of stage n+1 (as smtpd
 * chains separate filter processes), and the last stage's output goes back
 * to smtpd, re-stuffed, followed by exactly one "." once every stage has
 * finished. Whatever a stage does — throw, hang, hold the message — every
 * line goes on and the "." is written once: a registered data-line filter
 * that loses a line or the dot hangs the session.
 */

import { END_OF_MESSAGE, stuff, unstuff, type ProtocolVersion } from '../protocol/index.js'
import type { Logger } from './log.js'
import type { Context, DataHandler, FilterDefinition, HeaderField, LineSink, MessageContext, MessageEdit, SessionInfo, SmtpdConfig } from './filter.js'
import { Spool, type SpoolOptions } from './spool.js'

/** Header blocks beyond this are not collected for `ctx.headers` (the lines still pass). */
const HEADER_COLLECT_LIMIT = 1024 * 1024

export interface PipelineHost {
  /** sends one stuffed line to smtpd */
  write(line: string): void
  /**
   * sends the lines of `src[start, end)` (whole lines, unstuffed, each ending in '\n') to
   * smtpd: `write(stuff(line))` for each, without a string per line
   */
  writeLines(src: Buffer, start: number, end: number): void
  /** resolves when smtpd is reading our output again (backpressure) */
  ready(): Promise<void>
  readonly log: Logger
  readonly spool: SpoolOptions
}

/** Recognises header fields in a stream of lines (RFC 5322 §2.2: a field continues on lines starting with WSP). */
export class HeaderReader {
  inHeaders = true
  private current: string[] | undefined
  private name = ''

  /**
   * Feeds one line. Returns the field completed by this line, if any; after
   * the header block (an empty line, or a line that cannot start a field) it
   * returns nothing and `inHeaders` is false.
   */
  push(line: string): HeaderField | undefined {
    if (!this.inHeaders) return undefined
    const c = line.charCodeAt(0)
    if ((c === 32 || c === 9) && this.current) {
      this.current.push(line)
      return undefined
    }
    const done = this.take()
    const colon = line.indexOf(':')
    if (line === '' || colon <= 0 || !isFieldName(line, colon)) {
      this.inHeaders = false
    } else {
      this.current = [line]
      this.name = line.slice(0, colon).trimEnd()
    }
    return done
  }

  /** The field still open at the end of input (a message that is all headers). */
  take(): HeaderField | undefined {
    if (!this.current) return undefined
    const f: HeaderField = { name: this.name, lname: this.name.toLowerCase(), lines: this.current }
    this.current = undefined
    return f
  }
}

/** RFC 5322 §3.6.8 field-name: printable US-ASCII except ':' (WSP before the colon is tolerated, obs-syntax). */
function isFieldName(line: string, colon: number): boolean {
  const name = line.slice(0, colon).trimEnd()
  if (name === '') return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c < 33 || c > 126) return false
  }
  return true
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- handler state types vary per filter
type AnyDef = FilterDefinition<any>

export interface StageSpec {
  readonly index: number
  readonly def: AnyDef
  readonly handler: DataHandler<unknown>
  readonly base: Context<unknown>
  /** the version of the data-line requests */
  readonly version: ProtocolVersion
}

/** One filter's view of one message; it is also the handler's MessageContext. */
class Stage implements MessageContext<unknown> {
  readonly session: SessionInfo
  readonly state: unknown
  readonly log: Logger
  readonly config: SmtpdConfig
  readonly version: ProtocolVersion
  readonly headers: HeaderField[] = []
  bytes = 0
  failed = false
  /** once the stage has ended, late writes are dropped */
  private closed = false
  private readonly headerReader = new HeaderReader()
  private headerBytes = 0
  private readonly spool: Spool | undefined
  private wroteForLine = false
  private readonly sink: LineSink

  constructor(
    readonly spec: StageSpec,
    private readonly next: (line: string) => void,
    spoolOptions: SpoolOptions,
    /** for the last stage: sends held bytes to smtpd as `next` would send their lines */
    private readonly direct?: (held: Buffer) => void,
  ) {
    this.session = spec.base.session
    this.state = spec.base.state
    this.log = spec.base.log
    this.config = spec.base.config
    this.version = spec.version
    if (spec.handler.mode === 'hold') this.spool = new Spool(spoolOptions)
    this.sink = {
      write: (line: string) => {
        if (this.closed) {
          this.log.warn({ filter: spec.def.name }, 'data line written after the message ended: dropped')
          return
        }
        this.wroteForLine = true
        this.emit(line)
      },
    }
  }

  /** Lines written by a filter: split on LF (a '\n' would end the protocol line), UTF-8 encode wide chars. */
  private emit(line: string): void {
    if (line.indexOf('\n') >= 0) {
      for (const piece of line.split('\n')) this.next(toLatin1(piece))
    } else this.next(toLatin1(line))
  }

  input(line: string): void {
    this.bytes += line.length + 2
    if (this.headerReader.inHeaders && this.headerBytes < HEADER_COLLECT_LIMIT) {
      this.headerBytes += line.length + 2
      const f = this.headerReader.push(line)
      if (f) this.headers.push(f)
    }
    const h = this.spec.handler
    if (h.mode === 'hold') {
      this.spool!.append(line)
      if (h.line && !this.failed) {
        try {
          h.line(this, line)
        } catch (err) {
          this.fail(err)
        }
      }
      return
    }
    if (!h.line || this.failed) {
      this.next(line)
      return
    }
    this.wroteForLine = false
    try {
      h.line(this, line, this.sink)
    } catch (err) {
      this.fail(err)
      // Lose nothing: if the handler failed before passing the line on, pass it now.
      if (!this.wroteForLine) this.next(line)
    }
  }

  async heldMessage(maxBytes = Infinity): Promise<{ bytes: Buffer; truncated: boolean }> {
    const parts: Buffer[] = []
    let n = 0
    let truncated = false
    if (this.spool) {
      for await (const chunk of this.spool.chunks()) {
        if (n + chunk.length > maxBytes) {
          const room = maxBytes - n
          const last = room > 0 ? chunk.lastIndexOf(10, room - 1) : -1
          if (last >= 0) parts.push(Buffer.from(chunk.subarray(0, last + 1)))
          n += last + 1
          truncated = true
          break
        }
        // a copy: chunks read from the temp file are views of one buffer, reused
        parts.push(Buffer.from(chunk))
        n += chunk.length
      }
    }
    return { bytes: Buffer.concat(parts, n), truncated }
  }

  private fail(err: unknown): void {
    if (!this.failed) this.log.error({ filter: this.spec.def.name, err: errText(err) }, 'data handler failed: message passed on unchanged')
    this.failed = true
  }

  async end(host: PipelineHost, isAborted: () => boolean): Promise<void> {
    const last = this.headerReader.take()
    if (last && this.headerBytes < HEADER_COLLECT_LIMIT) this.headers.push(last)
    const h = this.spec.handler
    const timeout = this.spec.def.answerTimeoutMs ?? 60_000
    if (h.mode === 'stream') {
      if (h.end && !this.failed) {
        try {
          await withTimeout(Promise.resolve(h.end(this, this.sink)), timeout)
        } catch (err) {
          this.fail(err)
        }
      }
      this.closed = true
      return
    }
    let edit: MessageEdit = {}
    if (!this.failed) {
      try {
        edit = await withTimeout(Promise.resolve(h.end(this)), timeout)
      } catch (err) {
        this.fail(err)
        edit = {}
      }
    }
    this.closed = true
    try {
      if (!isAborted()) await this.replay(this.failed ? {} : edit, host, isAborted)
    } finally {
      this.spool!.dispose()
    }
  }

  /** Sends the held message on: prepended lines, then the message with header edits applied. */
  private async replay(edit: MessageEdit, host: PipelineHost, isAborted: () => boolean): Promise<void> {
    for (const l of edit.prepend ?? []) this.emit(l)
    const editHeader = edit.header
    if (editHeader === undefined && this.direct !== undefined) {
      // Nothing to edit and smtpd next: the held bytes go out as they are (re-stuffed), with
      // no string per line (a third of the cost of a held 4 KB message when replayed line by
      // line).
      for await (const held of this.spool!.chunks()) {
        if (isAborted()) return
        this.direct(held)
        await host.ready()
      }
      return
    }
    const reader = editHeader ? new HeaderReader() : undefined
    let index = 0
    const pass = (f: HeaderField): void => {
      let out: readonly string[] | null | undefined
      try {
        out = editHeader!(f, index++)
      } catch (err) {
        this.fail(err)
        out = undefined
      }
      if (out === null) return
      for (const l of out ?? f.lines) this.emit(l)
    }
    for await (const batch of this.spool!.read()) {
      if (isAborted()) return
      for (const line of batch) {
        if (reader?.inHeaders) {
          const f = reader.push(line)
          if (f) pass(f)
          if (reader.inHeaders) continue
        }
        this.next(line)
      }
      await host.ready()
    }
    const open = reader?.take()
    if (open) pass(open)
  }

  dispose(): void {
    this.closed = true
    this.spool?.dispose()
  }
}

export class MessagePipeline {
  private readonly stages: Stage[] = []
  private aborted = false
  private ended = false

  constructor(
    private readonly host: PipelineHost,
    specs: readonly StageSpec[],
  ) {
    // Build back to front: each stage feeds the next; the last one feeds smtpd.
    let next = (line: string): void => {
      if (!this.aborted) this.host.write(stuff(line))
    }
    const direct = (held: Buffer): void => {
      if (!this.aborted) this.host.writeLines(held, 0, held.length)
    }
    const built: Stage[] = []
    for (let i = specs.length - 1; i >= 0; i--) {
      const stage = new Stage(specs[i]!, next, host.spool, i === specs.length - 1 ? direct : undefined)
      built.unshift(stage)
      next = (line: string) => stage.input(line)
    }
    this.stages = built
  }

  /** One data-line as smtpd sent it (still stuffed). */
  push(raw: string): void {
    if (this.aborted || this.ended) return
    if (this.stages.length === 0) this.host.write(raw)
    else this.stages[0]!.input(unstuff(raw))
  }

  /** The input "." arrived: finish every stage in order, then send our ".". Never rejects. */
  async end(): Promise<Set<number>> {
    this.ended = true
    const failed = new Set<number>()
    for (const s of this.stages) {
      try {
        await s.end(this.host, () => this.aborted)
      } catch (err) {
        // Only I/O on the spool can land here: the rest of the message is lost for this stage.
        this.host.log.error({ filter: s.spec.def.name, err: errText(err) }, 'message replay failed')
        s.failed = true
      }
      if (s.failed) failed.add(s.spec.index)
    }
    if (!this.aborted) this.host.write(END_OF_MESSAGE)
    return failed
  }

  /** The transaction is gone (tx-rollback, link-disconnect): drop everything, write nothing more. */
  abort(): void {
    this.aborted = true
    for (const s of this.stages) s.dispose()
  }
}

function toLatin1(s: string): string {
  // Filters build headers from JS strings; anything beyond one byte per char is UTF-8 on the wire.
  // eslint-disable-next-line no-control-regex
  return /[^\x00-\xff]/.test(s) ? Buffer.from(s, 'utf8').toString('latin1') : s
}

export function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export class TimeoutError extends Error {
  override name = 'TimeoutError'
}

export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new TimeoutError(`no answer after ${ms} ms`)), ms)
    p.then(
      (v) => {
        clearTimeout(t)
        resolve(v)
      },
      (e: unknown) => {
        clearTimeout(t)
        reject(e)
      },
    )
  })
}
