// HTML to text, plus the features spam rules and the tokenizer need (links with their
// display text, images, hidden text, comment-split words). A single regex pass; no DOM.
// It renders what a mail reader would show: inline tags join words ("vi<b></b>agra" is
// "viagra"), block tags break them, script/style/comments vanish.

export interface HtmlLink {
  href: string;
  /** Visible text of the <a> element (links only). */
  text?: string;
  tag: string;
}

export interface HtmlInfo {
  /** Visible text. */
  text: string;
  /** Text a reader would not see (display:none, white-on-white, font-size 0/1px). */
  hidden: string;
  links: HtmlLink[];
  /** Count of each opening tag name (lower-cased). */
  tags: Map<string, number>;
  images: number;
  /** Comment directly between two word characters: "vi<!-- x -->agra". */
  commentSplit: number;
  /** Number of <font> or style font sizes >= 5 / >= 24px. */
  hugeFont: number;
  /** Tokens describing markup choices (colours, sizes, attributes), for Bayes. */
  markup: string[];
  /** Length of the HTML source. */
  length: number;
}

// Enough named entities for mail; numeric references cover the rest.
const ENTITIES: Record<string, string> = {
  nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", copy: '©', reg: '®', trade: '™',
  euro: '€', pound: '£', yen: '¥', cent: '¢', sect: '§', deg: '°', middot: '·', bull: '•',
  hellip: '…', mdash: '—', ndash: '–', lsquo: '‘', rsquo: '’', ldquo: '“', rdquo: '”',
  laquo: '«', raquo: '»', times: '×', divide: '÷', plusmn: '±', frac12: '½', frac14: '¼',
  iexcl: '¡', iquest: '¿', shy: '', zwnj: '', zwj: '', ensp: ' ', emsp: ' ', thinsp: ' ',
  agrave: 'à', aacute: 'á', acirc: 'â', atilde: 'ã', auml: 'ä', aring: 'å', aelig: 'æ',
  ccedil: 'ç', egrave: 'è', eacute: 'é', ecirc: 'ê', euml: 'ë', igrave: 'ì', iacute: 'í',
  icirc: 'î', iuml: 'ï', ntilde: 'ñ', ograve: 'ò', oacute: 'ó', ocirc: 'ô', otilde: 'õ',
  ouml: 'ö', oslash: 'ø', ugrave: 'ù', uacute: 'ú', ucirc: 'û', uuml: 'ü', yacute: 'ý',
  yuml: 'ÿ', szlig: 'ß', Agrave: 'À', Aacute: 'Á', Acirc: 'Â', Atilde: 'Ã', Auml: 'Ä',
  Aring: 'Å', AElig: 'Æ', Ccedil: 'Ç', Egrave: 'È', Eacute: 'É', Ecirc: 'Ê', Euml: 'Ë',
  Igrave: 'Ì', Iacute: 'Í', Icirc: 'Î', Iuml: 'Ï', Ntilde: 'Ñ', Ograve: 'Ò', Oacute: 'Ó',
  Ocirc: 'Ô', Otilde: 'Õ', Ouml: 'Ö', Oslash: 'Ø', Ugrave: 'Ù', Uacute: 'Ú', Ucirc: 'Û',
  Uuml: 'Ü', Yacute: 'Ý',
};

export function decodeEntities(s: string): string {
  if (s.indexOf('&') < 0) return s;
  return s.replace(/&(#[xX][0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z][a-zA-Z0-9]{1,8});?/g, (m, e: string) => {
    if (e.charCodeAt(0) === 35) {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      if (n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff)) return String.fromCodePoint(n);
      return ' ';
    }
    const v = ENTITIES[e] ?? ENTITIES[e.toLowerCase()];
    return v ?? m;
  });
}

// Tags after which a reader starts a new line or cell: they separate words.
const BLOCK = new Set([
  'br', 'p', 'div', 'tr', 'td', 'th', 'li', 'ul', 'ol', 'table', 'tbody', 'thead', 'h1', 'h2', 'h3',
  'h4', 'h5', 'h6', 'hr', 'blockquote', 'pre', 'title', 'body', 'html', 'head', 'center', 'dl',
  'dt', 'dd', 'form', 'input', 'select', 'option', 'textarea', 'img', 'frame', 'iframe', 'address',
]);

const ATTR_RE = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;

function attrs(s: string): Map<string, string> {
  const m = new Map<string, string>();
  if (!s) return m;
  ATTR_RE.lastIndex = 0;
  let a: RegExpExecArray | null;
  while ((a = ATTR_RE.exec(s)) !== null) {
    const k = a[1]!.toLowerCase();
    if (!m.has(k)) m.set(k, decodeEntities(a[2] ?? a[3] ?? a[4] ?? ''));
  }
  return m;
}

function isWhitish(c: string): boolean {
  const v = c.trim().toLowerCase();
  if (v === 'white' || v === 'snow' || v === 'ivory') return true;
  let hex = /^#?([0-9a-f]{6}|[0-9a-f]{3})$/.exec(v)?.[1];
  if (!hex) return false;
  if (hex.length === 3) hex = hex[0]! + hex[0] + hex[1] + hex[1] + hex[2] + hex[2];
  const r = parseInt(hex.slice(0, 2), 16), g = parseInt(hex.slice(2, 4), 16), b = parseInt(hex.slice(4, 6), 16);
  return r >= 0xf0 && g >= 0xf0 && b >= 0xf0;
}

function hides(tag: string, a: Map<string, string>, bgWhite: boolean): boolean {
  const style = (a.get('style') ?? '').toLowerCase().replace(/\s+/g, '');
  if (style) {
    if (/display:none|visibility:hidden|font-size:(0|1px|0?\.\d+)/.test(style)) return true;
    const color = /(?:^|;)color:([^;]+)/.exec(style)?.[1];
    if (color && bgWhite && isWhitish(color)) return true;
  }
  if (tag === 'font') {
    const color = a.get('color');
    if (color && bgWhite && isWhitish(color)) return true;
  }
  return false;
}

/**
 * The tags of an HTML text, in order: what
 * /<(\/?)([a-zA-Z][a-zA-Z0-9]*)\b((?:[^>"']|"[^"]*"|'[^']*')*)>/g finds, in linear time.
 * The regex scanned from every '<' to the end of the text when no '>' followed: "<a <a <a …"
 * took 27 s for 250 KB. Its match from a '<' is deterministic (the alternatives start with
 * different characters; a quote must be closed), so the outcome of scanning from a position
 * outside quotes is the same for every tag that reaches it: it is remembered (`end`).
 */
class TagScanner {
  /** per position outside quotes: the '>' the scan from there ends at, -1 none, -2 not known */
  private readonly end: Int32Array;
  private readonly path: number[] = [];
  private from = 0;

  constructor(private readonly src: string) {
    this.end = new Int32Array(src.length + 1).fill(-2);
  }

  next(): { index: number; length: number; closing: boolean; name: string; attrs: string } | null {
    const src = this.src;
    for (let s = src.indexOf('<', this.from); s >= 0; s = src.indexOf('<', s + 1)) {
      let p = s + 1;
      const closing = src.charCodeAt(p) === 0x2f;
      if (closing) p++;
      if (!isLetter(src.charCodeAt(p))) continue;
      let q = p + 1;
      while (q < src.length && (isLetter(src.charCodeAt(q)) || isDigit(src.charCodeAt(q)))) q++;
      if (src.charCodeAt(q) === 0x5f) continue; // '_': no word boundary after the name
      const g = this.scan(q);
      if (g < 0) continue;
      this.from = g + 1;
      return { index: s, length: g + 1 - s, closing, name: src.slice(p, q), attrs: src.slice(q, g) };
    }
    this.from = src.length;
    return null;
  }

  /** From q (outside quotes): the index of the '>' that ends the tag, or -1. */
  private scan(q: number): number {
    const src = this.src, end = this.end, path = this.path;
    let i = q;
    let result = -1;
    for (;;) {
      if (i >= src.length) break;
      const known = end[i]!;
      if (known !== -2) {
        result = known;
        break;
      }
      path.push(i);
      const c = src.charCodeAt(i);
      if (c === 0x3e) {
        result = i;
        break;
      }
      if (c === 0x22 || c === 0x27) {
        const close = src.indexOf(c === 0x22 ? '"' : "'", i + 1);
        if (close < 0) break; // an unclosed quote: no tag from here
        i = close + 1;
      } else i++;
    }
    for (const k of path) end[k] = result;
    path.length = 0;
    return result;
  }
}

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** src with every "<!…>" replaced by a space: src.replace(/<![^>]*>/g, ' ') in linear time. */
function dropDeclarations(src: string): string {
  let i = src.indexOf('<!');
  if (i < 0) return src;
  const parts: string[] = [];
  let last = 0;
  while (i >= 0) {
    const g = src.indexOf('>', i + 2);
    if (g < 0) break; // no '>' after this "<!", nor after any later one
    parts.push(src.slice(last, i), ' ');
    last = g + 1;
    i = src.indexOf('<!', last);
  }
  parts.push(src.slice(last));
  return parts.join('');
}

const SCRIPT_OPEN = /<(script|style)\b/gi;

/**
 * src with every script and style element (to its end tag, or to the end) replaced by a
 * space, counted in tags: src.replace(/<(script|style)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, …)
 * in linear time (the regex scanned to the end from every "<script" without a '>').
 */
function dropScripts(src: string, tags: Map<string, number>): string {
  const parts: string[] = [];
  let last = 0;
  SCRIPT_OPEN.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = SCRIPT_OPEN.exec(src)) !== null) {
    const g = src.indexOf('>', m.index + m[0].length);
    if (g < 0) break; // no '>' after this tag, nor after any later one
    const k = m[1]!.toLowerCase();
    tags.set(k, (tags.get(k) ?? 0) + 1);
    const close = new RegExp(`<\\/${k}\\s*>`, 'gi');
    close.lastIndex = g + 1;
    const c = close.exec(src);
    parts.push(src.slice(last, m.index), ' ');
    last = c ? c.index + c[0].length : src.length;
    SCRIPT_OPEN.lastIndex = last;
    if (!c) break;
  }
  if (last === 0) return src;
  parts.push(src.slice(last));
  return parts.join('');
}

export function htmlToText(html: string): HtmlInfo {
  const info: HtmlInfo = {
    text: '', hidden: '', links: [], tags: new Map(), images: 0, commentSplit: 0, hugeFont: 0, markup: [], length: html.length,
  };
  // Comments: note the ones that split a word, then drop them.
  let src = html;
  if (src.indexOf('<!') >= 0) {
    src = src.replace(/(.)?<!--[\s\S]*?(?:-->|$)(.)?/g, (_m, a: string | undefined, b: string | undefined) => {
      if (a && b && /[A-Za-z0-9]/.test(a) && /[A-Za-z0-9]/.test(b)) info.commentSplit++;
      return (a ?? '') + (b ?? '');
    });
    src = dropDeclarations(src);
  }
  src = dropScripts(src, info.tags);
  const out: string[] = [];
  const hidden: string[] = [];
  const hideStack: string[] = [];
  let bgWhite = true;
  let anchor: { href: string; start: number } | null = null;
  const markup = new Set<string>();
  const tags = new TagScanner(src);
  let last = 0;
  let m: ReturnType<TagScanner['next']>;
  const pushText = (t: string) => {
    if (!t) return;
    if (hideStack.length) hidden.push(t);
    else out.push(t);
  };
  while ((m = tags.next()) !== null) {
    pushText(src.slice(last, m.index));
    last = m.index + m.length;
    const closing = m.closing;
    const tag = m.name.toLowerCase();
    if (BLOCK.has(tag)) out.push('\n');
    if (closing) {
      if (hideStack.length && hideStack[hideStack.length - 1] === tag) hideStack.pop();
      if (tag === 'a' && anchor) {
        const text = out.slice(anchor.start).join('');
        info.links.push({ href: anchor.href, text: decodeEntities(text).replace(/\s+/g, ' ').trim(), tag: 'a' });
        anchor = null;
      }
      continue;
    }
    info.tags.set(tag, (info.tags.get(tag) ?? 0) + 1);
    const a = attrs(m.attrs);
    if (tag === 'body') {
      const bg = a.get('bgcolor') ?? /background(?:-color)?:\s*([^;]+)/i.exec(a.get('style') ?? '')?.[1];
      if (bg) bgWhite = isWhitish(bg);
    }
    if (hides(tag, a, bgWhite) && !/^(br|img|hr|input)$/.test(tag)) hideStack.push(tag);
    if (tag === 'a') {
      if (anchor) {
        info.links.push({ href: anchor.href, text: decodeEntities(out.slice(anchor.start).join('')).replace(/\s+/g, ' ').trim(), tag: 'a' });
        anchor = null;
      }
      const href = a.get('href');
      if (href) anchor = { href: href.trim(), start: out.length };
    } else if (tag === 'img') {
      info.images++;
      const srcA = a.get('src');
      if (srcA) info.links.push({ href: srcA.trim(), tag: 'img' });
      const w = a.get('width'), h = a.get('height');
      if (w && h && Number(w) <= 2 && Number(h) <= 2) markup.add('img:tiny');
    } else if (tag === 'form' || tag === 'area' || tag === 'iframe' || tag === 'frame' || tag === 'link') {
      const u = a.get('action') ?? a.get('href') ?? a.get('src');
      if (u) info.links.push({ href: u.trim(), tag });
    } else if (tag === 'font') {
      const size = a.get('size');
      if (size) {
        markup.add('font:size:' + size.trim().slice(0, 3));
        const n = Number(size.replace(/^\+/, ''));
        if ((size.startsWith('+') && n >= 3) || (!size.startsWith('+') && n >= 5)) info.hugeFont++;
      }
      const color = a.get('color');
      if (color) markup.add('font:color:' + color.trim().toLowerCase().slice(0, 10));
      const face = a.get('face');
      if (face) markup.add('font:face:' + face.trim().toLowerCase().split(',')[0]!.slice(0, 20));
    }
    const style = a.get('style');
    if (style) {
      const fs = /font-size:\s*(\d+)\s*(px|pt)/i.exec(style);
      if (fs && Number(fs[1]) >= 24) info.hugeFont++;
    }
    for (const k of a.keys()) if (k !== 'href' && k !== 'src' && k !== 'alt' && k !== 'title') markup.add(tag + ':' + k);
  }
  pushText(src.slice(last));
  if (anchor) info.links.push({ href: anchor.href, text: decodeEntities(out.slice(anchor.start).join('')).trim(), tag: 'a' });
  info.text = decodeEntities(out.join('')).replace(/[ \t\r\f\v\u00a0]+/g, ' ');
  info.hidden = decodeEntities(hidden.join(' '));
  info.markup = [...markup];
  return info;
}
