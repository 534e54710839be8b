/**
 * Where an argument value came from. Given the user's words and declared values, the data the
 * task marks as the user's own (trusted), and the outputs of earlier tool calls, classifies each
 * string or number in a proposed action's arguments as `user` (the user gave it), `trusted` (it
 * appears in the user's own trusted data), `tool-output` (it only appears in what tools returned,
 * which is where injected instructions live) or `literal` (none of these: the agent made it up).
 *
 * Pure and deterministic (no clock, no I/O, no randomness), so the workflow can call it.
 * Values are compared in normalised form: e-mail addresses and host names without case, URLs
 * without scheme, `www.`-less host case or trailing slash differences (and a URL under a path the
 * user gave counts as given), IBANs and account numbers without spaces or dashes, phone numbers
 * as digits (a leading + or 00 dropped), chat handles and channels without `@`/`#` or case,
 * amounts as numbers ("$1,200.00" = 1200).
 *
 * What is tracked: content, not data flow. A value counts as user-given or trusted only if it
 * (or, for values holding recognisable atoms, every atom in it) occurs in those sources after
 * normalisation; anything the agent builds (concatenation, re-encoding, arithmetic) that does not
 * reproduce such a value is at best `literal`, so laundering through string building loses
 * trust, with one exception: a value holding atoms is judged by its atoms only, so plain words
 * joined to a user-given atom ("@carol mallory", a user URL with "?to=mallory") ride on its
 * trust (the binding rules judge each recipient of a list on its own). What is not tracked: free text (message bodies, subjects) is
 * classified but binding rules only check destinations; a value that happens to occur in user or
 * trusted data is trusted even when an injection chose it. Every laundering form and how it is
 * classified today: policies/README.md, "What provenance tracks, and what it does not".
 */
import type { ValueSource } from './policy-request';

/** A source of values, indexed: normalised atoms and the normalised full texts. */
export interface ProvenanceIndex {
  user: IndexedTexts;
  trusted: IndexedTexts;
  tools: IndexedTexts;
}

export interface IndexedTexts {
  atoms: Set<string>;
  text: string;
  /** Normalised URLs with a path, under which a URL counts as coming from the same source. */
  urlPrefixes: string[];
}

export interface ProvenanceSources {
  /** The user's request, in their words (for a sub-agent: the root user's, never the parent's wording). */
  intent: string;
  /** Other values the user wrote in the task file (their address, listed hosts, declared values). */
  taskValues?: readonly unknown[];
  /** Data the task marks as the user's own and trusted (outputs of trusted sources), any JSON. */
  trusted?: readonly unknown[];
  /** Atoms inherited as trusted (a sub-agent's, from what its parent had read from trusted sources). */
  trustedAtoms?: readonly string[];
  /** Outputs of earlier tool calls in this task from outside (untrusted), any JSON. */
  toolOutputs?: readonly unknown[];
  /** More such outputs, indexed beforehand (`indexToolOutput`): the data flow keeps large ones' by digest. */
  toolOutputIndexes?: readonly IndexedTexts[];
}

const TRIM_CHARS = new Set(['<', '>', '(', ')', '[', ']', '{', '}', '"', "'", '`', ',', ';', '.', ':', '!', '?', '*']);

function isLetter(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}
function isAlnum(c: string): boolean {
  return isLetter(c) || isDigit(c);
}

function trimPunctuation(chunk: string): string {
  let start = 0;
  let end = chunk.length;
  while (start < end && TRIM_CHARS.has(chunk[start] as string)) start += 1;
  while (end > start && TRIM_CHARS.has(chunk[end - 1] as string)) end -= 1;
  return chunk.slice(start, end);
}

/** Whitespace-separated chunks, with the punctuation around them removed. */
function chunksOf(text: string): string[] {
  const chunks: string[] = [];
  let current = '';
  for (const c of text) {
    if (c === ' ' || c === '\n' || c === '\t' || c === '\r' || c === '\u00a0') {
      if (current !== '') chunks.push(current);
      current = '';
    } else current += c;
  }
  if (current !== '') chunks.push(current);
  return chunks.map(trimPunctuation).filter((c) => c !== '');
}

/** A DNS host name: dot-separated labels of letters, digits and dashes, ending in a letter label. */
export function isHostName(text: string): boolean {
  const labels = text.split('.');
  if (labels.length < 2) return false;
  for (const label of labels) {
    if (label === '' || label.startsWith('-') || label.endsWith('-')) return false;
    for (const c of label) if (!(isAlnum(c) || c === '-')) return false;
  }
  const tld = labels[labels.length - 1] as string;
  return tld.length >= 2 && [...tld].every(isLetter);
}

function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((p) => p !== '' && p.length <= 3 && [...p].every(isDigit) && Number(p) <= 255);
}

export function isEmailAddress(text: string): boolean {
  const at = text.indexOf('@');
  if (at < 1 || at !== text.lastIndexOf('@')) return false;
  const local = text.slice(0, at);
  for (const c of local) if (!(isAlnum(c) || '.+-_%'.includes(c))) return false;
  return isHostName(text.slice(at + 1));
}

/** "https://Example.com:443/a/?q=1#x" → "example.com/a?q=1" (scheme, default port, fragment and trailing slash dropped). */
function normalizeUrl(text: string): { url: string; host: string } | undefined {
  let parsed: URL;
  try {
    parsed = new URL(text.includes('://') ? text : `https://${text}`);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  const host = parsed.hostname.toLowerCase();
  if (!(isHostName(host) || isIPv4(host) || host === 'localhost')) return undefined;
  let path = parsed.pathname;
  while (path.endsWith('/')) path = path.slice(0, -1);
  const port = parsed.port === '' ? '' : `:${parsed.port}`;
  return { url: `${host}${port}${path}${parsed.search}`, host };
}

/** "$1,200.50" / "1200.5" / "€30" → "1200.5"; undefined for anything else. */
function normalizeAmount(chunk: string): string | undefined {
  let text = chunk;
  if (text.startsWith('$') || text.startsWith('€') || text.startsWith('£')) text = text.slice(1);
  if (text === '' || !isDigit(text[0] as string)) return undefined;
  let digits = '';
  let point = false;
  for (const c of text) {
    if (isDigit(c)) digits += c;
    else if (c === ',' && !point) continue;
    else if (c === '.' && !point) {
      point = true;
      digits += '.';
    } else return undefined;
  }
  if (digits.endsWith('.')) return undefined;
  return String(Number(digits));
}

/** An IBAN: two letters, two digits, 11 to 30 letters or digits, and a valid ISO 7064 mod-97 check. */
function isIban(compact: string): boolean {
  if (compact.length < 15 || compact.length > 34) return false;
  if (!isLetter(compact[0] as string) || !isLetter(compact[1] as string) || !isDigit(compact[2] as string) || !isDigit(compact[3] as string)) return false;
  if (![...compact].every(isAlnum)) return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (const c of rearranged) {
    const value = isDigit(c) ? c : String(c.charCodeAt(0) - 55);
    for (const d of value) remainder = (remainder * 10 + Number(d)) % 97;
  }
  return remainder === 1;
}

/**
 * Normalised atoms of a text: `email:`, `url:`, `host:`, `iban:`, `account:` (6+ digits, spaces
 * and dashes dropped), `id:` (identifiers mixing letters and digits), `amount:`.
 */
export function extractAtoms(text: string): Set<string> {
  const atoms = new Set<string>();
  // Phone numbers span chunks ("+1 (415) 555-0100"): read them off the whole text first.
  for (const match of text.matchAll(/(?:\+|\b00)?\(?\d[\d\s().-]{6,}\d/g)) {
    const raw = match[0];
    const digits = raw.replace(/\D/g, '');
    if (digits.length >= 8 && digits.length <= 15 && (raw.startsWith('+') || raw.startsWith('00') || /[\s().-]/.test(raw))) atoms.add(`phone:${digits.replace(/^00/, '')}`);
  }
  // URLs and addresses embedded in code or markup ("fetch('https://x/y' + q)", "<a@b.c>") are
  // not whitespace-separated: read them off the whole text as well.
  for (const match of text.matchAll(/https?:\/\/[^\s'"`<>()[\]{},;]+/gi)) {
    const url = normalizeUrl(match[0].replace(/[.:!?]+$/, ''));
    if (url !== undefined) {
      atoms.add(`url:${url.url}`);
      atoms.add(`host:${url.host}`);
    }
  }
  // A local part starts where its run of local-part characters starts (the lookbehind): without
  // it every position of a long run is tried again, quadratic in the run (900 KB of letters took
  // minutes in a policy check). Same matches: a later start in the run meets the same end.
  for (const match of text.matchAll(/(?<![A-Za-z0-9.+_%-])[A-Za-z0-9.+_%-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+/g)) {
    if (isEmailAddress(match[0])) atoms.add(`email:${match[0].toLowerCase()}`);
  }
  const chunks = chunksOf(text);
  for (let i = 0; i < chunks.length; i += 1) {
    let chunk = chunks[i] as string;
    const lower = chunk.toLowerCase();
    if (lower.startsWith('mailto:')) chunk = chunk.slice(7);
    if (isEmailAddress(chunk)) {
      atoms.add(`email:${chunk.toLowerCase()}`);
      continue;
    }
    // Chat handles and channels: "@bob", "#general".
    if ((chunk.startsWith('@') || chunk.startsWith('#')) && chunk.length > 1 && [...chunk.slice(1)].every((c) => isAlnum(c) || c === '_' || c === '-' || c === '.')) {
      atoms.add(`${chunk.startsWith('@') ? 'handle' : 'channel'}:${chunk.slice(1).toLowerCase()}`);
      continue;
    }
    if (/^\+?\d{8,15}$/.test(chunk)) atoms.add(`phone:${chunk.replace(/^\+/, '').replace(/^00/, '')}`);
    // IBANs are often written in groups of four: join the groups that follow.
    const upper = chunk.toUpperCase();
    if (upper.length >= 4 && isLetter(upper[0] as string) && isLetter(upper[1] as string) && isDigit(upper[2] as string) && isDigit(upper[3] as string)) {
      // The longest run of groups that forms a valid IBAN (the check digits decide).
      let compact = upper;
      let found = isIban(compact) ? { iban: compact, next: i + 1 } : undefined;
      for (let j = i + 1; j < chunks.length && compact.length < 34; j += 1) {
        const group = chunks[j] as string;
        if (group.length > 4 || ![...group].every(isAlnum)) break;
        compact += group.toUpperCase();
        if (isIban(compact)) found = { iban: compact, next: j + 1 };
        if (group.length < 4) break;
      }
      if (found !== undefined) {
        atoms.add(`iban:${found.iban}`);
        i = found.next - 1;
        continue;
      }
    }
    const looksLikeUrl = lower.startsWith('http://') || lower.startsWith('https://') || (lower.includes('/') && isHostName(lower.slice(0, lower.indexOf('/'))));
    if (looksLikeUrl) {
      const url = normalizeUrl(chunk);
      if (url !== undefined) {
        atoms.add(`url:${url.url}`);
        atoms.add(`host:${url.host}`);
        continue;
      }
    }
    if (isHostName(lower) || isIPv4(lower)) {
      atoms.add(`host:${lower}`);
      atoms.add(`url:${lower}`);
      continue;
    }
    const amount = normalizeAmount(chunk);
    if (amount !== undefined) {
      atoms.add(`amount:${amount}`);
      const digitsOnly = [...chunk].filter(isDigit).join('');
      if (digitsOnly.length >= 6 && !chunk.includes('.')) atoms.add(`account:${digitsOnly}`);
      continue;
    }
    // Account numbers written with dashes or spaces ("1234-5678-90").
    const digits = [...chunk].filter(isDigit).join('');
    if (digits.length >= 6 && [...chunk].every((c) => isDigit(c) || c === '-' || c === ' ')) {
      atoms.add(`account:${digits}`);
      continue;
    }
    if (chunk.length >= 6 && [...chunk].some(isDigit) && [...chunk].some(isLetter) && [...chunk].every((c) => isAlnum(c) || c === '_' || c === '-')) {
      atoms.add(`id:${lower}`);
    }
  }
  return atoms;
}

/** Lower-cased with runs of whitespace collapsed, for whole-value matching. */
function normalizeText(text: string): string {
  return chunksOf(text.toLowerCase()).join(' ');
}

/** Every string and number inside a JSON value. */
function leavesOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (typeof value === 'number' && Number.isFinite(value)) out.push(String(value));
  else if (Array.isArray(value)) for (const v of value) leavesOf(v, out);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) leavesOf(v, out);
  return out;
}

function indexTexts(texts: readonly string[], extraAtoms: readonly string[] = []): IndexedTexts {
  const atoms = new Set<string>(extraAtoms);
  for (const t of texts) for (const a of extractAtoms(t)) atoms.add(a);
  // A URL with a path stands for everything under it ("https://api.example.com/v1" covers ".../v1/items").
  const urlPrefixes = [...atoms].filter((a) => a.startsWith('url:') && a.slice(4).includes('/')).map((a) => a.slice(4).replace(/\?.*$/, ''));
  return { atoms, text: ` ${texts.map(normalizeText).join(' \u0000 ')} `, urlPrefixes };
}

/**
 * One untrusted output indexed on its own, for `toolOutputIndexes`: indexing a task's outputs
 * output by output gives the same index as indexing them together, so a worker indexes a large
 * output once instead of at every later policy check.
 */
export function indexToolOutput(output: unknown): IndexedTexts {
  return indexTexts(leavesOf([output]));
}

/** Indexed texts as one (the texts' separator between parts, as `indexTexts` puts between texts). */
function mergeIndexedTexts(parts: readonly IndexedTexts[]): IndexedTexts {
  if (parts.length === 1) return parts[0] as IndexedTexts;
  const atoms = new Set<string>();
  for (const part of parts) for (const a of part.atoms) atoms.add(a);
  return { atoms, text: ` ${parts.map((p) => p.text.slice(1, -1)).join(' \u0000 ')} `, urlPrefixes: parts.flatMap((p) => p.urlPrefixes) };
}

/** Indexes the sources once; classify many values against it. */
export function buildProvenanceIndex(sources: ProvenanceSources): ProvenanceIndex {
  const userTexts = [sources.intent, ...leavesOf(sources.taskValues ?? [])];
  const trustedTexts = leavesOf(sources.trusted ?? []);
  const toolTexts = leavesOf(sources.toolOutputs ?? []);
  const tools = mergeIndexedTexts([indexTexts(toolTexts), ...(sources.toolOutputIndexes ?? [])]);
  return { user: indexTexts(userTexts), trusted: indexTexts(trustedTexts, sources.trustedAtoms ?? []), tools };
}

const RANK: Readonly<Record<ValueSource, number>> = { 'tool-output': 0, literal: 1, trusted: 2, user: 3 };

function holdsAtom(texts: IndexedTexts, atom: string): boolean {
  if (texts.atoms.has(atom)) return true;
  if (!atom.startsWith('url:')) return false;
  const url = atom.slice(4);
  return texts.urlPrefixes.some((prefix) => url.startsWith(prefix) && (url.length === prefix.length || url[prefix.length] === '/' || url[prefix.length] === '?'));
}

/** Whole-word occurrence of `needle` in the padded, normalised `haystack`. */
function containsPhrase(haystack: string, needle: string): boolean {
  if (needle.length < 2) return false;
  let from = 0;
  for (;;) {
    const at = haystack.indexOf(needle, from);
    if (at < 0) return false;
    const before = haystack[at - 1] ?? ' ';
    const after = haystack[at + needle.length] ?? ' ';
    if (!isAlnum(before) && !isAlnum(after)) return true;
    from = at + 1;
  }
}

function sourceOfAtom(index: ProvenanceIndex, atom: string): ValueSource {
  if (holdsAtom(index.user, atom)) return 'user';
  if (holdsAtom(index.trusted, atom)) return 'trusted';
  if (index.tools.atoms.has(atom)) return 'tool-output';
  return 'literal';
}

/**
 * Where one value came from. A value holding recognisable atoms (addresses, URLs, hosts, account
 * ids, phone numbers, handles, amounts) is as trusted as its least trusted atom, unless the whole
 * value appears in what the user wrote; any other text is `user` if the user wrote it, `trusted`
 * if trusted data holds it, `tool-output` if a tool returned it, `literal` otherwise.
 */
export function classifyValue(index: ProvenanceIndex, value: string | number): ValueSource {
  const text = String(value);
  const normalized = normalizeText(text);
  if (normalized === '') return 'literal';
  if (containsPhrase(index.user.text, normalized)) return 'user';
  const atoms = typeof value === 'number' ? new Set([`amount:${String(value)}`]) : extractAtoms(text);
  if (atoms.size === 0 && containsPhrase(index.trusted.text, normalized)) return 'trusted';
  if (atoms.size > 0) {
    let worst: ValueSource = 'user';
    for (const atom of atoms) {
      const source = sourceOfAtom(index, atom);
      if (RANK[source] < RANK[worst]) worst = source;
    }
    return worst;
  }
  return containsPhrase(index.tools.text, normalized) ? 'tool-output' : 'literal';
}

/** RFC 6901 escaping of one pointer segment. */
function pointerSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Every string and number leaf of `args` by JSON pointer ("/to", "/recipients/0"). */
export function argumentLeaves(args: unknown, base = ''): { pointer: string; value: string | number }[] {
  const out: { pointer: string; value: string | number }[] = [];
  const walk = (value: unknown, pointer: string): void => {
    if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) out.push({ pointer, value });
    else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${pointer}/${i}`));
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, `${pointer}/${pointerSegment(k)}`);
  };
  walk(args, base);
  return out;
}

/**
 * Classifies every string and number in `args`: JSON pointer (relative to args) → source.
 * Accepts the sources or an index built from them.
 */
export function classifyArguments(args: Record<string, unknown>, sources: ProvenanceSources | ProvenanceIndex): Record<string, ValueSource> {
  const index = 'user' in sources ? sources : buildProvenanceIndex(sources);
  const out: Record<string, ValueSource> = {};
  for (const { pointer, value } of argumentLeaves(args)) out[pointer] = classifyValue(index, value);
  return out;
}

/**
 * The atoms of `text` that the index holds as trusted and not as the user's (what a sub-agent
 * inherits as trusted from the intent its parent wrote).
 */
export function trustedAtomsIn(index: ProvenanceIndex, text: string): string[] {
  return [...extractAtoms(text)].filter((atom) => sourceOfAtom(index, atom) === 'trusted');
}
