/**
 * Byte-exact line splitting of smtpd's stream.
 *
 * Splits on '\n' only (never on a bare '\r', unlike Node's readline) and hands
 * each line on as a latin1 string: one char per byte, so 8-bit data and inner
 * CRs survive (split2 decodes UTF-8 and turns 0xE9 into U+FFFD). smtpd sends
 * lines of up to ~65.6 KB; anything longer than `maxLine` cannot come from
 * smtpd and is dropped whole (reported through `onOverlong`) instead of
 * growing memory without bound.
 */

export const DEFAULT_MAX_LINE = 4 * 1024 * 1024

export class LineSplitter {
  private parts: Buffer[] = []
  private partBytes = 0
  private overlong = false

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLine = DEFAULT_MAX_LINE,
    private readonly onOverlong: (bytes: number) => void = () => {},
  ) {}

  push(chunk: Buffer): void {
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(10, start)
      if (nl < 0) break
      if (this.partBytes === 0 && !this.overlong) {
        this.onLine(chunk.toString('latin1', start, nl))
      } else {
        this.finishPartial(chunk, start, nl)
      }
      start = nl + 1
    }
    if (start < chunk.length) this.keep(chunk.subarray(start))
  }

  /** At EOF: a last line without '\n' is incomplete (smtpd always ends lines); it is passed on anyway. */
  end(): void {
    if (this.overlong) {
      this.onOverlong(this.partBytes)
    } else if (this.partBytes > 0) {
      this.onLine(Buffer.concat(this.parts, this.partBytes).toString('latin1'))
    }
    this.parts = []
    this.partBytes = 0
    this.overlong = false
  }

  private keep(rest: Buffer): void {
    if (this.overlong) {
      this.partBytes += rest.length
      return
    }
    // Copy: the chunk's memory is reused by the stream.
    this.parts.push(Buffer.from(rest))
    this.partBytes += rest.length
    if (this.partBytes > this.maxLine) {
      this.overlong = true
      this.parts = []
    }
  }

  private finishPartial(chunk: Buffer, start: number, nl: number): void {
    const total = this.partBytes + (nl - start)
    if (this.overlong || total > this.maxLine) {
      this.onOverlong(total)
    } else {
      this.parts.push(chunk.subarray(start, nl))
      this.onLine(Buffer.concat(this.parts, total).toString('latin1'))
    }
    this.parts = []
    this.partBytes = 0
    this.overlong = false
  }
}
