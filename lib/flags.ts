/**
 * Command-line flags, in the two dialects our peers use, so their smtpd.conf
 * lines work unchanged:
 *
 * - Go's flag package (filter-senderscore): multi-letter names with one or
 *   two dashes, `-name value`, `-name=value`, `--name`, booleans as `-name` or
 *   `-name=true|false`; parsing stops at the first non-flag argument or `--`.
 * - getopt (filter-dkimsign): one-letter names, `-d value`, `-dvalue`,
 *   clusters like `-tz`, counted flags like `-zz`.
 *
 * An unknown flag or a bad value is a UsageError: the caller prints the usage
 * on stderr and exits 2 (as Go's flag.ExitOnError does); -h/-help/--help
 * exits 0.
 */

export type FlagKind = 'bool' | 'string' | 'int' | 'number' | 'count'

export interface FlagSpec {
  /** one letter = getopt style; longer = Go style */
  readonly name: string
  readonly kind: FlagKind
  /** other accepted names (e.g. the old `-whitelist` for `-allowlist`) */
  readonly aliases?: readonly string[]
  /** may be given several times; the value is an array */
  readonly repeat?: boolean
  /** name of the value in the usage text */
  readonly arg?: string
  readonly help: string
  readonly default?: string | number | boolean
  /** checks a value; returns an error message or undefined */
  readonly check?: (value: string | number | boolean) => string | undefined
  /** not shown in the usage (compatibility spellings) */
  readonly hidden?: boolean
}

export type FlagValue = string | number | boolean | string[] | number[]
export type FlagValues = Record<string, FlagValue | undefined>

export class UsageError extends Error {
  override name = 'UsageError'
  constructor(
    message: string,
    readonly help = false,
  ) {
    super(message)
  }
}

export interface ParsedFlags {
  readonly values: FlagValues
  /** arguments after the flags (after `--` when interspersed) */
  readonly rest: string[]
  /** with `interspersed`: the non-flag arguments found among the flags */
  readonly positional: string[]
}

export interface ParseOptions {
  /** GNU style: non-flag arguments may stand between flags; only `--` ends the flags */
  readonly interspersed?: boolean
}

export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[], opts: ParseOptions = {}): ParsedFlags {
  const positional: string[] = []
  const byName = new Map<string, FlagSpec>()
  for (const s of specs) {
    byName.set(s.name, s)
    for (const a of s.aliases ?? []) byName.set(a, s)
  }
  const values: FlagValues = {}
  for (const s of specs) if (s.default !== undefined) values[s.name] = s.default
  const seen = new Set<string>()

  const set = (spec: FlagSpec, raw: string | undefined, shown: string): void => {
    let v: string | number | boolean
    switch (spec.kind) {
      case 'bool':
        if (raw === undefined || raw === 'true' || raw === '1' || raw === 't' || raw === 'T' || raw === 'TRUE' || raw === 'True') v = true
        else if (raw === 'false' || raw === '0' || raw === 'f' || raw === 'F' || raw === 'FALSE' || raw === 'False') v = false
        else throw new UsageError(`invalid boolean value "${raw}" for flag ${shown}`)
        break
      case 'count':
        values[spec.name] = ((values[spec.name] as number | undefined) ?? 0) + 1
        return
      case 'int':
        if (raw === undefined || !/^[+-]?\d+$/.test(raw)) throw new UsageError(`invalid value "${raw ?? ''}" for flag ${shown}: not an integer`)
        v = Number(raw)
        break
      case 'number':
        if (raw === undefined || raw.trim() === '' || !Number.isFinite(Number(raw))) throw new UsageError(`invalid value "${raw ?? ''}" for flag ${shown}: not a number`)
        v = Number(raw)
        break
      case 'string':
        if (raw === undefined) throw new UsageError(`flag needs an argument: ${shown}`)
        v = raw
        break
    }
    const problem = spec.check?.(v)
    if (problem) throw new UsageError(`invalid value "${String(raw)}" for flag ${shown}: ${problem}`)
    if (spec.repeat) {
      const prev = seen.has(spec.name) ? (values[spec.name] as (string | number)[]) : []
      values[spec.name] = [...prev, v as string | number] as FlagValue
    } else values[spec.name] = v
    seen.add(spec.name)
  }

  let i = 0
  while (i < argv.length) {
    const arg = argv[i]!
    if (arg === '--') {
      i++
      break
    }
    if (arg.length < 2 || arg[0] !== '-') {
      if (!opts.interspersed) break
      positional.push(arg)
      i++
      continue
    }
    if (arg === '-h' || arg === '-help' || arg === '--help') {
      if (!byName.has(arg.replace(/^-+/, ''))) throw new UsageError('', true)
    }
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1)
    const eq = body.indexOf('=')
    const name = eq < 0 ? body : body.slice(0, eq)
    const long = byName.get(name)
    if (long && (name.length > 1 || arg.startsWith('--'))) {
      // Go style (also `--d` for a one-letter flag, as Go allows).
      if (eq >= 0) set(long, body.slice(eq + 1), '-' + name)
      else if (long.kind === 'bool' || long.kind === 'count') set(long, undefined, '-' + name)
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}`)
        set(long, argv[++i], '-' + name)
      }
      i++
      continue
    }
    if (arg.startsWith('--')) throw new UsageError(`flag provided but not defined: ${arg}`)
    // getopt style: a cluster of one-letter flags, the last may take the rest or the next argument.
    let j = 1
    while (j < arg.length) {
      const letter = arg[j]!
      const spec = byName.get(letter)
      if (!spec || spec.name.length !== 1) {
        throw new UsageError(`flag provided but not defined: -${j === 1 ? body : letter}`)
      }
      if (spec.kind === 'bool' || spec.kind === 'count') {
        set(spec, undefined, '-' + letter)
        j++
        continue
      }
      let raw: string
      if (j + 1 < arg.length) raw = arg.slice(j + 1)
      else {
        if (i + 1 >= argv.length) throw new UsageError(`option requires an argument -- '${letter}'`)
        raw = argv[++i]!
      }
      set(spec, raw, '-' + letter)
      break
    }
    i++
  }
  return { values, rest: argv.slice(i), positional }
}

/** The usage text, one line per flag, like Go's flag.PrintDefaults. */
export function usage(program: string, synopsis: string, specs: readonly FlagSpec[]): string {
  const lines = [`usage: ${program} ${synopsis}`.trimEnd()]
  for (const s of specs) {
    if (s.hidden) continue
    const arg = s.kind === 'bool' || s.kind === 'count' ? '' : ' ' + (s.arg ?? (s.kind === 'string' ? 'string' : s.kind))
    const names = [s.name, ...(s.aliases ?? [])].map((n) => '-' + n).join(', ')
    const def = s.default !== undefined && s.default !== false && s.default !== '' ? ` (default ${JSON.stringify(s.default)})` : ''
    lines.push(`  ${names}${arg}`, `    \t${s.help}${def}`)
  }
  return lines.join('\n') + '\n'
}

/** Typed accessors for parsed values. */
export function str(v: FlagValues, name: string): string | undefined {
  const x = v[name]
  return typeof x === 'string' ? x : undefined
}
export function num(v: FlagValues, name: string): number | undefined {
  const x = v[name]
  return typeof x === 'number' ? x : undefined
}
export function bool(v: FlagValues, name: string): boolean {
  return v[name] === true
}
export function list(v: FlagValues, name: string): string[] {
  const x = v[name]
  return Array.isArray(x) ? x.map(String) : typeof x === 'string' ? [x] : []
}
