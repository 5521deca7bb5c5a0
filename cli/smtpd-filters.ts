#!/usr/bin/env node
/**
 * smtpd-filters: the administration command of opensmtpd-filters.
 * Each subcommand lives in its own module and exports `run(argv)`, which
 * returns the exit status.
 */

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> }> = {
  record: { summary: 'record a filter\'s protocol streams (a proc-exec wrapper)', load: () => import('./record.js') },
  replay: { summary: 'replay a recorded stream to a filter and compare its answers', load: () => import('./replay.js') },
  'dkim-keygen': { summary: 'make a DKIM key and print its DNS record', load: () => import('./dkim-keygen.js') },
  learn: { summary: 'teach filter-spamscore a message (spam, ham or --forget), a Maildir or an mbox', load: () => import('./learn.js') },
  check: { summary: 'score messages as filter-spamscore would', load: () => import('./check.js') },
  stats: { summary: 'what filter-spamscore\'s statistics have learned', load: () => import('./stats.js') },
}

function help(): string {
  const names = Object.keys(COMMANDS)
  const w = Math.max(...names.map((n) => n.length))
  return ['usage: smtpd-filters command [arguments]', '', ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n]!.summary}`), ''].join('\n')
}

const [name, ...argv] = process.argv.slice(2)
if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
  process.stderr.write(help())
  process.exit(name === undefined ? 2 : 0)
}
const cmd = COMMANDS[name]
if (!cmd) {
  process.stderr.write(`smtpd-filters: unknown command "${name}"\n${help()}`)
  process.exit(2)
}
try {
  const mod = await cmd.load()
  process.exitCode = await mod.run(argv)
} catch (err) {
  process.stderr.write(`smtpd-filters ${name}: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
}
