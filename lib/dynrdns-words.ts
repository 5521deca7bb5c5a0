// Word lists for lib/dynrdns.ts. Our own lists, informed by which access technologies and
// naming habits rspamd's hfilter and SpamAssassin's 20_dynrdns.cf look for. Every word is
// compared with whole tokens of the host part (maximal runs of letters), never substrings:
// "dynamo" is not "dyn", "poolside" is not "pool", "clientportal" is not "client".

/**
 * A token from this list alone makes the name dynamic: words that, in a host name, only
 * ever describe end-user access — technology (dsl, cable, ppp, dhcp, ftth, gprs…), address
 * pools, and ISP markers whose meaning is known: lfbn (Orange France), fbx (Free's
 * Freebox), dclient (UPC), ipngn (NTT's NGN access).
 */
export const STRONG_WORDS: ReadonlySet<string> = new Set([
  'dyn', 'dynamic', 'dynip', 'dynamicip', 'dyndsl', 'dynpool', 'dynippool',
  'dsl', 'adsl', 'vdsl', 'xdsl', 'sdsl', 'hdsl', 'dslb', 'dslpool',
  'dhcp', 'pool', 'pools', 'ippool',
  'ppp', 'pppoe', 'pppoa', 'pptp', 'dialup', 'dial', 'dialin', 'dialpool',
  'cable', 'cablemodem', 'modemcable', 'modem', 'catv', 'docsis', 'kabel',
  'cpe', 'broadband', 'bredband', 'brodband', 'residential', 'resnet', 'homeuser',
  'ftth', 'fttx', 'fttb', 'fttp', 'fttc', 'gpon', 'epon',
  'gprs', 'cdma', 'umts', 'hsdpa',
  'lfbn', 'fbx', 'dclient', 'ipngn',
]);

/**
 * These describe an end user or a generic address but also occur in ordinary server
 * names (host, client, node, home, cm, abo — German for subscription…); they count only
 * with numeric evidence: the client IP (or two of its octets) in the name, an IP-shaped
 * run of four numbers, three or more numbers, or one long number. Some are ISP markers:
 * dip (Deutsche Telekom "dial-in pool"), abo (Orange, "abonné"), hsd (Comcast "high
 * speed data"), cpc (Virgin Media), bras (broadband remote access server), cm (cable modem).
 */
export const WEAK_WORDS: ReadonlySet<string> = new Set([
  'user', 'users', 'host', 'ip', 'client', 'clients', 'customer', 'customers', 'cust',
  'subscriber', 'subs', 'res', 'rev', 'bb', 'node', 'nat', 'wifi', 'wireless', 'mobile',
  'apn', 'range', 'access', 'retail', 'home', 'hsi', 'priv', 'lte', 'wan', 'broad',
  'dip', 'abo', 'hsd', 'cpc', 'bras', 'cm',
]);

/**
 * A name saying its address is statically assigned is never called dynamic (SpamAssassin
 * excuses static/fix/dedicated the same way): ISPs do not give pool addresses such names,
 * and a false positive rejects real mail.
 */
export const STATIC_WORDS: ReadonlySet<string> = new Set([
  'static', 'staticip', 'fixip', 'fixedip', 'dedicated', 'business', 'biz',
]);

/**
 * A name saying it is a mail server is excused too — unless it also says its address is
 * dynamically assigned (DYNAMIC_WORDS): then the role word is an ISP quirk (3BB's
 * `mx-ll-….dynamic.3bb.co.th`) or a mail server on a pool address, which is what the
 * check exists to find.
 */
export const ROLE_WORDS: ReadonlySet<string> = new Set([
  'mail', 'email', 'mailout', 'mailer', 'mailhost', 'mailrelay', 'mailgw', 'mailserver',
  'mailsrv', 'mailgate', 'mailhub', 'mailin', 'mout',
  'mx', 'mxout', 'smtp', 'smtpout', 'smtpgw', 'smtprelay', 'mta', 'outbound', 'relay',
  'bounce', 'bounces',
]);

/** Words stating dynamic assignment; they beat ROLE_WORDS (not STATIC_WORDS). */
export const DYNAMIC_WORDS: ReadonlySet<string> = new Set([
  'dyn', 'dynamic', 'dynip', 'dynamicip', 'dyndsl', 'dynpool', 'dynippool', 'dhcp',
]);

/** Letters ending in "dsl" name a DSL product or POP (athedsl, hsdsl, thessdsl). */
export function isDslWord(token: string): boolean {
  return token.length > 3 && token.endsWith('dsl');
}

/**
 * Public suffixes of two labels under which ISPs and companies register (co.uk, com.au,
 * net.pl…). Anything else is taken to be a one-label suffix. This approximates the Public
 * Suffix List (publicsuffix.org) without shipping it: a name under an unlisted two-label
 * suffix keeps one label of its registered domain in the "host part" (more words are
 * looked at), which can only add detections, never hide one.
 */
export const TWO_LABEL_SUFFIXES: ReadonlySet<string> = new Set([
  // Europe
  'co.uk', 'org.uk', 'me.uk', 'ltd.uk', 'plc.uk', 'ac.uk', 'gov.uk', 'net.uk', 'sch.uk',
  'co.at', 'or.at', 'ac.at', 'gv.at',
  'com.pl', 'net.pl', 'org.pl', 'biz.pl', 'info.pl', 'waw.pl',
  'com.ua', 'net.ua', 'org.ua', 'kiev.ua', 'in.ua',
  'com.ru', 'net.ru', 'org.ru', 'msk.ru', 'spb.ru',
  'com.tr', 'net.tr', 'org.tr', 'gen.tr', 'bel.tr',
  'com.gr', 'net.gr', 'com.cy', 'com.mt', 'co.hu', 'com.ro', 'com.es', 'nom.es', 'org.es',
  'com.pt', 'co.rs', 'in.rs', 'co.ba', 'com.hr', 'co.me', 'com.mk', 'co.il', 'net.il',
  'org.il', 'ac.il',
  // Asia and Oceania
  'com.au', 'net.au', 'org.au', 'edu.au', 'gov.au', 'asn.au', 'id.au',
  'co.nz', 'net.nz', 'org.nz', 'ac.nz', 'govt.nz',
  'co.jp', 'ne.jp', 'or.jp', 'ad.jp', 'ac.jp', 'gr.jp', 'go.jp',
  'co.kr', 'ne.kr', 'or.kr', 'ac.kr', 'go.kr',
  'com.cn', 'net.cn', 'org.cn', 'gov.cn', 'edu.cn', 'ac.cn',
  'com.tw', 'net.tw', 'org.tw', 'idv.tw', 'edu.tw',
  'com.hk', 'net.hk', 'org.hk', 'com.mo', 'com.sg', 'net.sg', 'edu.sg', 'com.my', 'net.my',
  'co.id', 'net.id', 'or.id', 'web.id', 'co.th', 'in.th', 'or.th', 'ac.th',
  'com.vn', 'net.vn', 'com.ph', 'net.ph', 'com.pk', 'net.pk', 'com.bd', 'net.bd',
  'co.in', 'net.in', 'org.in', 'firm.in', 'gen.in', 'ind.in', 'ac.in', 'com.lk',
  'com.sa', 'net.sa', 'com.qa', 'com.kw', 'co.ae', 'net.ae', 'com.eg', 'com.jo', 'com.lb',
  'co.ir', 'ac.ir',
  // Americas
  'com.br', 'net.br', 'org.br', 'gov.br', 'art.br', 'ind.br', 'tv.br',
  'com.ar', 'net.ar', 'org.ar', 'gob.ar', 'com.mx', 'net.mx', 'org.mx', 'gob.mx',
  'com.co', 'net.co', 'org.co', 'com.pe', 'net.pe', 'com.ve', 'net.ve', 'com.uy', 'net.uy',
  'com.py', 'com.ec', 'net.ec', 'com.bo', 'net.bo', 'co.cr', 'com.gt', 'com.do', 'com.pa',
  'com.sv', 'com.ni', 'com.hn', 'co.ve', 'cl.cl',
  // Africa
  'co.za', 'net.za', 'org.za', 'web.za', 'co.ke', 'or.ke', 'com.ng', 'net.ng', 'co.tz',
  'co.ug', 'co.zw', 'com.gh', 'co.ma', 'net.ma', 'com.tn', 'com.dz',
  // United States sub-registries and others
  'k12.us', 'co.us',
]);
