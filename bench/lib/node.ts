/**
 * How the installed launchers run node (package.json config.nodeFlags, see
 * packaging/launcher.sh.in): benchmarks measure our filters as they ship.
 */

import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const root = join(import.meta.dirname, '..', '..', '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { config?: { nodeFlags?: string } }

export const NODE_FLAGS: readonly string[] = (pkg.config?.nodeFlags ?? '').split(/\s+/).filter(Boolean)

/** argv running one of our compiled entry points the way the launchers do. */
export function nodeCommand(main: string): string[] {
  return [process.execPath, ...NODE_FLAGS, main]
}
