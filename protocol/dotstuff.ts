/**
 * Dot-stuffing (RFC 5321 §4.5.2). smtpd hands data-lines to filters exactly
 * as the client sent them, still stuffed, and removes one leading dot from
 * every line a filter sends back (issue #948, observed: `..x` echoed is
 * delivered as `.x`). Filters look at plain lines; what goes back is
 * stuffed again. A lone "." is the end of the message, never content.
 */

export const END_OF_MESSAGE = '.'

/** The line as the message holds it (one leading dot removed). */
export function unstuff(line: string): string {
  return line.charCodeAt(0) === 46 ? line.slice(1) : line
}

/** The line as smtpd must receive it so that it delivers `line`. */
export function stuff(line: string): string {
  return line.charCodeAt(0) === 46 ? '.' + line : line
}
