import t from 'tap'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { proceed, type FilterDefinition } from '../lib/filter.js'
import { parseFlags } from '../lib/flags.js'
import { programFlags, withFailurePolicy } from '../lib/main.js'

const root = join(import.meta.dirname, '..')
const def: FilterDefinition = { name: 'x', phases: { helo: () => proceed() } }

t.test('the common -onError is offered to filters without a failure flag of their own', async (t) => {
  const plain = { flags: [] }
  const own = { flags: [{ name: 'onError', kind: 'string' as const, help: 'its own' }] }
  t.ok(programFlags(plain).some((f) => f.name === 'onError'))
  t.equal(programFlags(own).filter((f) => f.name === 'onError').length, 1, 'a filter\'s own -onError is not shadowed')
  t.equal(programFlags(own).find((f) => f.name === 'onError')!.help, 'its own')
  const given = parseFlags(['-onError', 'tempfail'], programFlags(plain)).values
  t.equal(withFailurePolicy(plain, given, [def])[0]!.onFailure, 'tempfail')
  t.equal(withFailurePolicy(plain, {}, [def])[0]!.onFailure, undefined, 'not given: the definition decides')
  t.equal(withFailurePolicy(plain, given, [{ ...def, onFailure: 'proceed' }])[0]!.onFailure, 'proceed', 'a definition that chose keeps its choice')
  t.equal(withFailurePolicy(own, given, [def])[0]!.onFailure, undefined, 'a filter with its own flag applies it itself')
  t.throws(() => parseFlags(['-onError', 'maybe'], programFlags(plain)), /proceed or tempfail/)
})

t.test('the executables: a bad -onError is a usage error; filter-chain members take it too', async (t) => {
  const run = (...args: string[]) => spawnSync(process.execPath, args, { input: 'config|ready\n', encoding: 'utf8' })
  t.equal(run(join(root, 'dist/filters/null/main.js'), '-onError', 'maybe').status, 2)
  t.equal(run(join(root, 'dist/filters/null/main.js'), '-onError', 'tempfail').status, 0)
  t.equal(run(join(root, 'dist/filters/chain/main.js'), '-onError', 'tempfail', 'null', '--', 'null', '-onError', 'proceed').status, 0)
  t.equal(run(join(root, 'dist/filters/chain/main.js'), 'null', '-onError', 'maybe').status, 2)
})
