// A minimal smtpd filter for the lab's own tests, independent of the project's protocol
// code: it echoes every data-line unchanged and logs each link-connect report on stderr,
// which smtpd copies into its log as "<filter-name>: <line>" (harness/README.md).
//   filter "pass" proc-exec "/usr/bin/node <root>/dist/test/lib/passthrough-filter.js"
const out = (line: string) => process.stdout.write(Buffer.from(line + '\n', 'latin1'));

let buf = '';
process.stdin.on('data', (chunk: Buffer) => {
  // latin1: one char per byte, so 8-bit data-lines go back exactly as they came.
  buf += chunk.toString('latin1');
  let nl: number;
  while ((nl = buf.indexOf('\n')) !== -1) {
    handle(buf.slice(0, nl));
    buf = buf.slice(nl + 1);
  }
});
// smtpd closes our stdin when it exits: that is the only way out.
process.stdin.on('end', () => process.exit(0));

function handle(line: string): void {
  if (line === 'config|ready') {
    out('register|report|smtp-in|link-connect');
    out('register|filter|smtp-in|data-line');
    out('register|ready');
    return;
  }
  const f = line.split('|');
  // report|<version>|<time>|smtp-in|link-connect|<session>|<rdns>|<fcrdns>|<src>|<dest>
  if (f[0] === 'report' && f[4] === 'link-connect') {
    process.stderr.write(`link-connect ${f[5]} rdns=${f[6]} fcrdns=${f[7]} src=${f[8]}\n`);
  }
  // filter|<version>|<time>|smtp-in|data-line|<session>|<token>|<line, may hold "|">;
  // protocol 0.5+ answers session first, then token.
  if (f[0] === 'filter' && f[4] === 'data-line') {
    out(`filter-dataline|${f[5]}|${f[6]}|${f.slice(7).join('|')}`);
  }
}
