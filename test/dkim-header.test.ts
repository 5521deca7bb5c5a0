import t from 'tap';
import {
  DEFAULT_OVERSIGN,
  DEFAULT_SIGNED_HEADERS,
  chooseDomain,
  defaultHeaderList,
  fieldName,
  formatHeaderList,
  fromDomain,
  matchDomain,
  parseHeaderList,
  withOversigning,
} from '../lib/dkim/header.js';

t.test('fromDomain: the domain of the first mailbox, as mheader.c returns it', async (t) => {
  const cases: [string, string | null][] = [
    [' a@example.org', 'example.org'],
    [' Alice <a@example.org>', 'example.org'],
    [' "Doe, Alice" <a@sub.example.org>', 'sub.example.org'],
    [' A.B. Smith <a@example.org>', 'example.org'], // obs-phrase
    [' =?utf-8?q?Caf=C3=A9?= <a@example.org>', 'example.org'],
    [' Alice (x) <a@example.org> (y)', 'example.org'],
    [' (c) a@example.org', 'example.org'],
    [' , ,a@example.org', 'example.org'], // obs-mbox-list leading commas
    [' a@example.org, b@other.example', 'example.org'],
    [' Alice <a@example.org>, Bob <b@other.example>', 'example.org'],
    [' "a b"@example.org', 'example.org'],
    [' "q\\"uote" <a@example.org>', 'example.org'],
    [' Alice\r\n\t<a@example.org>', 'example.org'], // folded, simple canonicalization
    ['Alice <a@example.org>', 'example.org'], // relaxed: no space after the colon
    [' <a@example.org>', 'example.org'],
    // the raw domain production keeps surrounding CFWS, so these match no -d by name
    [' a@example.org (comment)', 'example.org (comment)'],
    [' a@example.org ', 'example.org '],
    [' a@ example.org', ' example.org'],
    [' a @ example.org', ' example.org'],
    // and a domain literal loses its "]" (mheader.c stops on it)
    [' a@[192.0.2.1]', '[192.0.2.1'],
    // no mailbox
    [' group: a@example.org;', null],
    [' undisclosed-recipients:;', null],
    [' Caf\xe9 <a@example.org>', null], // 8-bit display name is not a phrase
    [' <@relay.example:a@example.org>', null], // obs-route: the C filter crashes here
    [' ', null],
    ['', null],
    [' "spaced " <a@example.org>', null], // mheader.c refuses FWS before the closing quote
    [' Alice <a@example.org', null],
  ];
  for (const [value, want] of cases) t.equal(fromDomain(value), want, JSON.stringify(value));
});

t.test('fromDomain: deep comment nesting does not throw', async (t) => {
  t.equal(fromDomain(' ' + '('.repeat(200000) + ' a@example.org'), null);
});

t.test('matchDomain: exact, then parent labels, case-insensitive, as given', async (t) => {
  const d = ['Other.Example', 'hz.test', 'sub.hz.test'];
  t.equal(matchDomain('sub.hz.test', d), 'sub.hz.test');
  t.equal(matchDomain('a.b.sub.hz.test', d), 'sub.hz.test');
  t.equal(matchDomain('x.hz.test', d), 'hz.test');
  t.equal(matchDomain('HZ.TEST', d), 'hz.test');
  t.equal(matchDomain('other.example', d), 'Other.Example');
  t.equal(matchDomain('nomatch.example', d), null);
  t.equal(matchDomain('example.org (comment)', ['example.org']), null);
  t.equal(matchDomain('test', ['test']), 'test');
  t.equal(matchDomain('', d), null);
});

t.test('chooseDomain: first matching From value, else the first -d', async (t) => {
  const d = ['fallback.example', 'hz.test', 'other.example'];
  t.equal(chooseDomain(' Alice <a@x.hz.test>', d), 'hz.test');
  t.equal(chooseDomain(' a@nomatch.example', d), 'fallback.example');
  t.equal(chooseDomain([' a@nomatch.example', ' b@other.example'], d), 'other.example');
  t.equal(chooseDomain([' a@hz.test', ' b@other.example'], d), 'hz.test');
  t.throws(() => chooseDomain(' a@hz.test', []));
});

t.test('fieldName', async (t) => {
  t.equal(fieldName('Subject: x'), 'subject');
  t.equal(fieldName('SUBJECT :x'), 'subject');
  t.equal(fieldName('From\t \t: x'), 'from');
  t.equal(fieldName('X-A: b: c'), 'x-a');
  t.equal(fieldName(': x'), '');
  t.equal(fieldName('no colon'), null);
  t.equal(fieldName('\tcontinuation: x'), null);
  t.equal(fieldName(' continuation: x'), null);
});

t.test('parseHeaderList: the C filter rules', async (t) => {
  t.same(parseHeaderList('From:To:SUBJECT'), [
    { name: 'from', mode: 'sign' }, { name: 'to', mode: 'sign' }, { name: 'subject', mode: 'sign' },
  ]);
  t.same(parseHeaderList('from:to:from'), [{ name: 'from', mode: 'sign' }, { name: 'to', mode: 'sign' }]);
  t.throws(() => parseHeaderList('to:subject'), /From header must be included/);
  t.throws(() => parseHeaderList(''), /empty/);
  t.throws(() => parseHeaderList(':from'), /empty/);
  t.throws(() => parseHeaderList('from::to'), /empty/);
  t.throws(() => parseHeaderList('from:'), /empty/);
  t.throws(() => parseHeaderList('from:x y'), /invalid character/);
  t.throws(() => parseHeaderList('from:caf\xe9'), /invalid character/);
  t.throws(() => parseHeaderList('from:(o)'), /empty/);
});

t.test('parseHeaderList: rspamd oversigning prefixes', async (t) => {
  t.same(parseHeaderList('(o)from:(x)date:(O)To:cc'), [
    { name: 'from', mode: 'always' }, { name: 'date', mode: 'present' },
    { name: 'to', mode: 'always' }, { name: 'cc', mode: 'sign' },
  ]);
  t.same(parseHeaderList('from:(x)from:(o)to:(x)to'), [{ name: 'from', mode: 'present' }, { name: 'to', mode: 'always' }]);
  const s = '(o)from:(x)date:to';
  t.equal(formatHeaderList(parseHeaderList(s)), s);
});

t.test('default lists', async (t) => {
  t.equal(DEFAULT_SIGNED_HEADERS.length, 19, 'RFC 6376 §5.4.1');
  t.equal(DEFAULT_SIGNED_HEADERS[0], 'from');
  t.ok(defaultHeaderList().every((h) => h.mode === 'sign'));
  const names = DEFAULT_OVERSIGN.map((h) => h.name).sort();
  t.same(names, ['cc', 'content-type', 'date', 'from', 'in-reply-to', 'message-id', 'mime-version',
    'references', 'reply-to', 'subject', 'to']);
  // smtpd adds Date: and Message-ID: after the filters when missing: never "(o)"
  t.equal(DEFAULT_OVERSIGN.find((h) => h.name === 'date')!.mode, 'present');
  t.equal(DEFAULT_OVERSIGN.find((h) => h.name === 'message-id')!.mode, 'present');
  const merged = withOversigning(defaultHeaderList());
  t.equal(merged.length, 19 + 3, 'message-id, mime-version, content-type added');
  t.equal(merged.find((h) => h.name === 'from')!.mode, 'always');
  t.equal(merged.find((h) => h.name === 'list-id')!.mode, 'sign');
  t.equal(merged.find((h) => h.name === 'references')!.mode, 'present');
});
