/**
 * filter-chain: several filters of the suite in one Node process, in order,
 * each with the flags it takes alone:
 *
 *     filter-chain rdns -fcrdns disconnect -- senderscore -junkBelow 70 -- spamscore
 *
 * It behaves like smtpd's `filter "x" chain { … }` of the separate processes
 * (protocol.md §4.8): for each phase the members that handle it are asked in
 * order and the first decision other than proceed wins; data-lines flow
 * through each member in turn. One process instead of four saves the memory
 * of three Node runtimes.
 */

import type { FilterDefinition } from '../../lib/filter.js'
import { UsageError } from '../../lib/flags.js'
import { parseProgramFlags, StartupError, withFailurePolicy, type ProgramSpec } from '../../lib/main.js'
import type { Logger } from '../../lib/log.js'
import { filterName, FILTERS } from '../index.js'

export const SYNOPSIS = '[-loglevel level] [-tmpdir dir] name [flags] [-- name [flags] ...]'

/** Splits `a -x 1 -- b -- c -y` into members, each a name and its flags. */
export function members(argv: readonly string[]): { name: string; argv: string[] }[] {
  const out: { name: string; argv: string[] }[] = []
  let current: string[] = []
  const flush = (): void => {
    if (current.length === 0) throw new UsageError('empty member between --')
    out.push({ name: filterName(current[0]!), argv: current.slice(1) })
    current = []
  }
  for (const a of argv) {
    if (a === '--') flush()
    else current.push(a)
  }
  flush()
  return out
}

export async function buildChain(argv: readonly string[], log: Logger): Promise<FilterDefinition<any>[]> {
  const list = members(argv)
  const defs: FilterDefinition<any>[] = []
  for (const [i, m] of list.entries()) {
    const load = FILTERS[m.name]
    if (!load || m.name === 'chain') throw new UsageError(`unknown filter "${m.name}" (known: ${Object.keys(FILTERS).join(', ')})`)
    const spec = await load()
    const named: ProgramSpec = { ...spec, program: `filter-chain: ${m.name}` }
    const { values, rest } = parseProgramFlags(named, m.argv)
    let built: FilterDefinition<any> | FilterDefinition<any>[]
    try {
      built = await spec.build(values, rest, log)
    } catch (err) {
      if (err instanceof StartupError || err instanceof UsageError) throw new StartupError(`${m.name}: ${err.message}`)
      throw err
    }
    for (const d of withFailurePolicy(spec, values, Array.isArray(built) ? built : [built])) {
      // The same filter twice (two dkimsign keys, say) stays apart in the logs.
      defs.push(list.filter((x) => x.name === m.name).length > 1 ? { ...d, name: `${d.name}#${i + 1}` } : d)
    }
  }
  return defs
}

export const program: ProgramSpec = {
  program: 'filter-chain',
  synopsis: SYNOPSIS,
  flags: [],
  positional: true,
  build: (_values, rest, log) => buildChain(rest, log),
}

