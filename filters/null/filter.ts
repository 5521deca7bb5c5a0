/**
 * filter-null: the pass-through filter. It registers every report event and
 * every phase (like the reference null filter that recorded
 * ../shared/recordings), answers proceed and returns every data-line
 * unchanged. A test subject and a benchmark baseline; in smtpd.conf it
 * changes nothing.
 */

import { FILTER_PHASES, REPORT_EVENTS } from '../../protocol/index.js'
import { proceed, type FilterDefinition, type PhaseHandlers, type ReportHandlers } from '../../lib/filter.js'
import type { ProgramSpec } from '../../lib/main.js'

const ignore = (): void => {}

export function nullFilter(): FilterDefinition {
  const reports = Object.fromEntries(REPORT_EVENTS.map((e) => [e, ignore])) as ReportHandlers<undefined>
  const phases = Object.fromEntries(FILTER_PHASES.filter((p) => p !== 'data-line').map((p) => [p, proceed])) as PhaseHandlers<undefined>
  return { name: 'null', reports, phases, data: { mode: 'stream' } }
}

export const program: ProgramSpec = {
  program: 'filter-null',
  flags: [],
  build: () => nullFilter(),
}
