#!/usr/bin/env node
// The Debian copyright file: debian/copyright.in (the project's own paragraphs) followed
// by one Files paragraph per bundled module and a License paragraph for each licence they
// use that the input does not define. Generated from what npm installed, never typed:
// the modules are those of NODE_MODULES/.package-lock.json, the licence is the one the
// module's package.json declares, the holders come from the "Copyright" lines of its
// licence file (else its author), the licence text from the licence file of the first
// module that uses it, or a pointer to /usr/share/common-licenses when Debian has it.
//
//   node packaging/copyright.mjs NODE_MODULES < debian/copyright.in > debian/copyright
//
// Files patterns are relative to /usr/lib/opensmtpd-filters, where the package installs
// node_modules (the source package has no node_modules: npm ci fetches them).

import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'

const COMMON = '/usr/share/common-licenses'

function fail(msg) {
  process.stderr.write(`copyright.mjs: ${msg}\n`)
  process.exit(1)
}

const nodeModules = process.argv[2]
if (!nodeModules) fail('usage: copyright.mjs NODE_MODULES < copyright.in > copyright')
const lock = join(nodeModules, '.package-lock.json')
if (!existsSync(lock)) fail(`${lock} is missing (not a tree installed by npm ci)`)

// The input's paragraphs: the header, Files paragraphs, stand-alone License paragraphs.
const input = readFileSync(0, 'utf8').trim().split(/\n\s*\n/)
const header = input[0]
const files = input.slice(1).filter((p) => p.startsWith('Files:'))
const licenses = input.slice(1).filter((p) => p.startsWith('License:'))
const defined = new Set(licenses.map((p) => /^License: (.+)$/m.exec(p)[1].trim()))

/** A DEP-5 licence name from an SPDX expression: "(MIT OR Apache-2.0)" -> "MIT or Apache-2.0". */
function licenseName(spdx) {
  if (typeof spdx !== 'string' || !spdx) return undefined
  return spdx.replace(/^\((.*)\)$/, '$1').replace(/ OR /g, ' or ').replace(/ AND /g, ' and ')
}

function licenseFile(dir) {
  const f = readdirSync(dir).find((n) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(n))
  return f ? join(dir, f) : undefined
}

// "Copyright (c) 2016-present Matteo Collina" -> "2016-present Matteo Collina"; the MIT and
// Apache boilerplate that mentions copyright is not a holder.
function holders(text) {
  const out = []
  for (const line of text.split('\n')) {
    const m = /^[\s#*]*copyright\b\s*(?:\(c\)|©)?\s*(.*)$/i.exec(line)
    if (!m || !m[1] || /notice|holders|owner|licen[cs]e|copyright in it/i.test(line)) continue
    out.push(m[1].trim())
  }
  return out
}

function author(pkg) {
  const a = pkg.author
  if (typeof a === 'string') return a
  if (a && a.name) return a.email ? `${a.name} <${a.email}>` : a.name
  return undefined
}

/** A field's value lines as DEP-5 continuation lines. */
function indent(text) {
  return text
    .replace(/\r/g, '')
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()
    .split('\n')
    .map((l) => (l === '' ? ' .' : ` ${l}`))
    .join('\n')
}

const modules = Object.keys(JSON.parse(readFileSync(lock, 'utf8')).packages ?? {})
  .filter((k) => k.startsWith('node_modules/'))
  .sort()
if (modules.length === 0) fail(`${lock} lists no modules`)

const texts = new Map() // licence name -> text, from the first module that has one
const generated = []
for (const key of modules) {
  const dir = join(dirname(nodeModules), key)
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  const name = licenseName(pkg.license)
  if (!name) fail(`${key}: package.json declares no licence`)
  const file = licenseFile(dir)
  const text = file ? readFileSync(file, 'utf8') : ''
  const who = holders(text)
  if (who.length === 0) who.push(author(pkg) ?? `the authors of ${pkg.name}`)
  generated.push(`Files: ${key}/*\nCopyright: ${who.join('\n ')}\nLicense: ${name}\nComment: ${pkg.name} ${pkg.version}`)
  if (!texts.has(name) && file) {
    // the licence without its copyright lines (they are the holders above)
    texts.set(name, text.split('\n').filter((l) => holders(l).length === 0).join('\n'))
  }
}

const standalone = []
for (const name of [...new Set(generated.map((p) => /^License: (.+)$/m.exec(p)[1]))].sort()) {
  if (defined.has(name)) continue
  if (existsSync(join(COMMON, name))) {
    standalone.push(`License: ${name}\n On Debian systems, the complete text of this licence is in\n ${COMMON}/${name}.`)
  } else if (texts.has(name)) {
    standalone.push(`License: ${name}\n${indent(texts.get(name))}`)
  } else {
    fail(`no text for licence ${name}: no module using it has a licence file`)
  }
}

process.stdout.write([header, ...files, ...generated, ...licenses, ...standalone].join('\n\n') + '\n')
