/**
 * The filters of the suite by name, for filter-chain. Loaded on demand, so a
 * chain pays only for the filters it runs.
 */

import type { ProgramSpec } from '../lib/main.js'

export const FILTERS: Readonly<Record<string, () => Promise<ProgramSpec>>> = {
  rdns: async () => (await import('./rdns/filter.js')).program,
  senderscore: async () => (await import('./senderscore/filter.js')).program,
  dkimsign: async () => (await import('./dkimsign/filter.js')).program,
  spamscore: async () => (await import('./spamscore/filter.js')).program,
  null: async () => (await import('./null/filter.js')).program,
}

/** `rdns` or `filter-rdns`. */
export function filterName(arg: string): string {
  return arg.startsWith('filter-') ? arg.slice('filter-'.length) : arg
}
