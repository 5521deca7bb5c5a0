/**
 * Drives the runtime in-process, as smtpd would, and collects what it
 * writes: for unit tests of the runtime and of filter policies.
 */

import { PassThrough } from 'node:stream'
import type { FilterDefinition } from '../../lib/filter.js'
import { createLogger, type Logger } from '../../lib/log.js'
import { Runtime } from '../../lib/runtime.js'
import type { SpoolOptions } from '../../lib/spool.js'
import { ProtocolWriter } from '../../lib/writer.js'
import { StreamBuilder, type Version } from './stream.js'

export class Driver {
  readonly output: string[] = []
  readonly runtime: Runtime
  readonly b: StreamBuilder
  private taken = 0
  private partial = ''

  constructor(
    defs: FilterDefinition<any>[],
    opts: { version?: Version; spool?: SpoolOptions; logLevel?: 'silent' | 'debug' | 'info' | 'error'; log?: Logger } = {},
  ) {
    this.b = new StreamBuilder(opts.version ?? '0.6')
    const out = new PassThrough()
    out.on('data', (c: Buffer) => {
      const text = this.partial + c.toString('latin1')
      const lines = text.split('\n')
      this.partial = lines.pop()!
      this.output.push(...lines)
    })
    const writer = new ProtocolWriter(out)
    this.runtime = new Runtime({ filters: defs, writer, log: opts.log ?? createLogger(opts.logLevel ?? 'silent'), spool: opts.spool })
  }

  send(...lines: (string | string[])[]): this {
    for (const l of lines.flat()) this.runtime.line(l)
    return this
  }

  handshake(): this {
    return this.send(this.b.handshake())
  }

  /** Lets pending promises, timers of `ms` and the writer's flush run. */
  async settle(ms = 0): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
    if (ms > 0) await new Promise((r) => setTimeout(r, ms))
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r))
  }

  /** Output lines since the last take(). */
  async take(ms = 0): Promise<string[]> {
    await this.settle(ms)
    const out = this.output.slice(this.taken)
    this.taken = this.output.length
    return out
  }
}
