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
import { givenAtomsOfData, givenAtomsOfText, givenAtomsOfValue, normalizeName, pathAtom, withoutMentions } from './given-values';
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

/**
 * File extensions read as a file name rather than a host when a bare name ends in one: common
 * document, archive, source, script and media extensions, several of them top-level domains too
 * (`.md`, `.zip`, `.py`, `.sh`, `.mov`, `.rs`, `.so`, `.app`). Not `.pl`, `.io`, `.ai`: hosts far
 * more often than files.
 */
const FILE_EXTENSIONS = new Set(
  (
    'md markdown txt rst csv tsv json jsonl yaml yml toml ini cfg conf env log xml html htm pdf doc docx xls xlsx ppt pptx odt ods rtf ' +
    'zip tar gz tgz bz2 xz 7z rar bak db sqlite sql png jpg jpeg gif svg webp mov mp4 mp3 wav avi mkv ' +
    'py sh bash zsh js mjs cjs ts tsx jsx rs go java kt rb php c h cpp hpp cs swift so dll exe bin app lock ipynb patch diff'
  ).split(' '),
);

/** A bare name whose last label is a file extension ("readme.md"): a file, not a host. */
export function isFileName(text: string): boolean {
  const dot = text.lastIndexOf('.');
  return dot > 0 && FILE_EXTENSIONS.has(text.slice(dot + 1).toLowerCase());
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
    // "DE89-3704-0044-0532-0130-00": an IBAN written in dashed groups.
    const upper = /^[A-Za-z]{2}\d{2}[A-Za-z0-9]*(?:-[A-Za-z0-9]+)+$/.test(chunk) ? chunk.toUpperCase().replace(/-/g, '') : chunk.toUpperCase();
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
    // "README.md", "backup.zip", "setup.py": a file name, though `.md`, `.zip`, `.py` are top-level
    // domains; a host the user means is written as a URL ("https://readme.md").
    if ((isHostName(lower) && !isFileName(lower)) || isIPv4(lower)) {
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

function indexTexts(texts: readonly string[], extraAtoms: Iterable<string> = [], atomTexts: readonly string[] = texts): IndexedTexts {
  const atoms = new Set<string>(extraAtoms);
  for (const t of atomTexts) for (const a of extractAtoms(t)) atoms.add(a);
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
  const toolTexts = leavesOf(sources.toolOutputs ?? []);
  return {
    user: indexUserValues(sources.intent, sources.taskValues ?? []),
    trusted: indexTrustedData(sources.trusted ?? [], sources.trustedAtoms ?? []),
    tools: mergeIndexedTexts([indexTexts(toolTexts), ...(sources.toolOutputIndexes ?? [])]),
  };
}

/**
 * The user's part of a provenance index (`ProvenanceIndex.user`): their request and declared
 * values. A pure function of its arguments, so a worker may keep it per task (incremental-provenance.ts).
 */
export function indexUserValues(intent: string, taskValues: readonly unknown[]): IndexedTexts {
  const declared = leavesOf(taskValues);
  const userTexts = [intent, ...declared];
  // What the user gave by kind: their words read with the grammar (given-values.ts), and each
  // value they declared as the whole value its form says it is.
  // The request's values come from what it does not only mention ("is it a scam?", "do not pay
  // the $90 fee", "the mail from X": given-values.ts `withoutMentions`); declared values are whole.
  const userAtomTexts = [withoutMentions(intent), ...declared];
  const userTyped = new Set<string>();
  for (const text of userAtomTexts) for (const a of givenAtomsOfText(text)) userTyped.add(a);
  for (const value of declared) {
    for (const a of givenAtomsOfValue(value)) userTyped.add(a);
    const host = declaredHost(value);
    if (host !== undefined) userTyped.add(`host:${host}`);
  }
  return indexTexts(userTexts, userTyped, userAtomTexts);
}

/** The trusted part of a provenance index (`ProvenanceIndex.trusted`): the user's own data and inherited trusted atoms. */
export function indexTrustedData(trusted: readonly unknown[], trustedAtoms: readonly string[]): IndexedTexts {
  const trustedTyped = givenAtomsOfData(trusted);
  for (const a of trustedAtoms) trustedTyped.add(a);
  return indexTexts(leavesOf(trusted), trustedTyped);
}

/** Whether an untrusted output holds any string or number (one that holds none adds nothing to an index). */
export function hasLeaves(output: unknown): boolean {
  if (typeof output === 'string') return true;
  if (typeof output === 'number') return Number.isFinite(output);
  if (Array.isArray(output)) return output.some(hasLeaves);
  if (output !== null && typeof output === 'object') return Object.values(output).some(hasLeaves);
  return false;
}

/**
 * A declared host with a port ("intranet:8080", "10.0.0.5:5432") or `localhost`, as a host atom's
 * value (host names with a dot are host atoms already); undefined otherwise. A bare word is not a
 * host: a declared value may be any word the user's argument held (sandbox/policy-gate.ts).
 */
function declaredHost(value: string): string | undefined {
  const text = value.trim().toLowerCase();
  if (text === 'localhost') return text;
  const match = /^([a-z0-9-]+(?:\.[a-z0-9-]+)*)\.?:\d{1,5}$/.exec(text);
  return match === null ? undefined : (match[1] as string);
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

/** The value at a JSON pointer of `args` (RFC 6901), or undefined. */
function valueAtPointer(args: unknown, pointer: string): unknown {
  let at: unknown = args;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

/**
 * Classifies every string and number in `args`: JSON pointer (relative to args) → source.
 * Accepts the sources or an index built from them. An argument whose name says it is an amount
 * (`amount`, `sum`, `total`, `price`, `value`, `cents`...) or a recipient or payee (`to`, `cc`,
 * `recipient`, `channel`, `user`, `payee`, `iban`, `account`...) is classified as that kind
 * (`classifyAs`; an amount in the currency of a `currency` argument next to it, else in none);
 * a tool's descriptor, where it declares its effects, says better
 * (policies/build-policy-request.ts).
 */
export function classifyArguments(args: Record<string, unknown>, sources: ProvenanceSources | ProvenanceIndex): Record<string, ValueSource> {
  const index = 'user' in sources ? sources : buildProvenanceIndex(sources);
  const out: Record<string, ValueSource> = {};
  for (const { pointer, value } of argumentLeaves(args)) {
    let kind = bindingKindOfKey(pointer, value);
    // An amount's currency, for a tool that declares none: the `currency` argument next to it.
    if (kind?.kind === 'amount' && kind.currency === undefined) {
      const sibling = valueAtPointer(args, `${pointer.slice(0, pointer.lastIndexOf('/'))}/currency`);
      if (typeof sibling === 'string' && sibling.trim() !== '') kind = { kind: 'amount', currency: sibling.trim() };
    }
    out[pointer] = kind === undefined ? classifyValue(index, value) : classifyAs(index, kind, value);
  }
  return out;
}

/**
 * The atoms of `text` that the index holds as trusted and not as the user's (what a sub-agent
 * inherits as trusted from the intent its parent wrote): its form atoms and what it gives by kind.
 */
export function trustedAtomsIn(index: ProvenanceIndex, text: string): string[] {
  const atoms = new Set([...extractAtoms(text), ...givenAtomsOfText(text)]);
  return [...atoms].filter((atom) => {
    if (sourceOfAtom(index, atom) === 'trusted') return true;
    // "$20" for trusted money of no stated currency (a row's `amount: 20`): the currency the parent wrote narrows it.
    const money = /^(money:[^:]+):[A-Z]{3}$/.exec(atom);
    return money !== null && sourceOfAtom(index, `${money[1]}:?`) === 'trusted';
  });
}

// ---------------------------------------------------------------------------------------------
// Binding by kind: a value of a typed effect field binds only to values given as that kind.

/**
 * The kind a binding rule checks a value as: an amount (with the currency the call states), a
 * party (recipient or payee; `as` is the descriptor's kind, which reads a bare value: a bare
 * name of a `channel` argument is a channel, digits of an `account` argument an account), a
 * host, or a path.
 */
export type BindingKind = { kind: 'amount'; currency?: string } | { kind: 'party'; as?: string } | { kind: 'host' } | { kind: 'path' };

const AMOUNT_ARGUMENT_KEYS = new Set(['amount', 'sum', 'total', 'price', 'value', 'usd', 'eur', 'cents']);
const PARTY_ARGUMENT_KEYS = new Set([
  'to', 'cc', 'bcc', 'recipient', 'recipients', 'address', 'email', 'emails', 'replyto', 'channel', 'channels', 'user', 'users', 'phone', 'number', 'chat', 'chatid', 'userid', 'handle',
  'payee', 'iban', 'account', 'accountid', 'accountnumber', 'beneficiary', 'destination', 'creditor', 'counterparty',
]);

/** The kind an argument's name says it holds (the argument names binding rules read for tools that declare nothing), or undefined. */
export function bindingKindOfKey(pointer: string, value: string | number): BindingKind | undefined {
  const segments = pointer.split('/').filter((s) => s !== '' && !/^\d+$/.test(s));
  const key = (segments[segments.length - 1] ?? '').toLowerCase().replace(/[_-]/g, '');
  if (AMOUNT_ARGUMENT_KEYS.has(key) && (typeof value === 'number' || /^[$€£]?\s*\d/.test(value))) {
    if (key === 'cents') return { kind: 'amount', currency: 'cents' };
    return { kind: 'amount' };
  }
  if (key === 'path' || key === 'file' || key === 'filename') return typeof value === 'string' ? { kind: 'path' } : undefined;
  if (PARTY_ARGUMENT_KEYS.has(key)) {
    const as = key === 'channel' || key === 'channels' ? 'channel' : key === 'iban' ? 'iban' : key.startsWith('account') ? 'account' : key === 'phone' || key === 'number' ? 'phone' : 'any';
    return { kind: 'party', as };
  }
  return undefined;
}

/** "Eve <eve@x.org>" → "eve@x.org", "mailto:a@b.c" → "a@b.c"; other text unchanged. */
function addressOf(text: string): string {
  const angle = /<([^<>\s]+@[^<>\s]+)>\s*$/.exec(text);
  if (angle !== null) return angle[1] as string;
  return text.toLowerCase().startsWith('mailto:') ? text.slice(7) : text;
}

/** The readings of one recipient or payee value, as typed atoms: any one the user gave binds it. */
function partyAtomsOf(raw: string, as: string | undefined): string[] {
  const text = addressOf(raw.trim());
  if (isEmailAddress(text)) return [`email:${text.toLowerCase()}`];
  if (text.startsWith('@') && text.length > 1) return [`name:${normalizeName(text)}`];
  if (text.startsWith('#') && text.length > 1) return [`channel:${normalizeName(text.slice(1))}`];
  const compact = text.replace(/[\s-]/g, '').toUpperCase();
  if (isIban(compact)) return [`iban:${compact}`];
  if (/^[+(]?[\d\s()./-]+$/.test(text) && /\d/.test(text)) {
    const digits = text.replace(/\D/g, '');
    const tel = `tel:${digits.replace(/^00/, '')}`;
    if (as === 'phone') return [tel];
    if (as === 'account' || as === 'iban') return [`acct:${digits}`];
    return [`acct:${digits}`, tel];
  }
  // A webhook-like recipient ("https://hooks.example.org/in") is judged by its whole URL (or a URL
  // prefix the user wrote), never by its host: every webhook of a chat service shares one host.
  const atoms = text.includes('://') ? [...extractAtoms(text)].filter((a) => a.startsWith('url:')) : [];
  if (atoms.length > 0 && !/\s/.test(text)) return atoms;
  const name = normalizeName(text);
  if (name === '') return [];
  return as === 'channel' ? [`channel:${name}`] : [`name:${name}`];
}

/** How the value of a host argument or a URL's host is matched: lower case, no trailing dot, brackets or port. */
function hostAtomOf(raw: string): string {
  let host = raw.trim().toLowerCase().replace(/^\[|\]$/g, '');
  const port = /^(.*[^:]):\d{1,5}$/.exec(host);
  if (port !== null && !host.includes('::')) host = port[1] as string;
  return `host:${host.replace(/\.$/, '')}`;
}

/** Whether any untrusted output holds the value (for the reason a decision gives: `tool-output` rather than `literal`). */
function inToolOutputs(index: ProvenanceIndex, value: string | number): boolean {
  const text = String(value);
  if (typeof value === 'number') return index.tools.atoms.has(`amount:${text}`);
  const normalized = normalizeText(text);
  if (normalized !== '' && containsPhrase(index.tools.text, normalized)) return true;
  for (const atom of extractAtoms(text)) if (index.tools.atoms.has(atom)) return true;
  return false;
}

function bestOf(index: ProvenanceIndex, atoms: readonly string[]): ValueSource | undefined {
  if (atoms.some((a) => holdsAtom(index.user, a))) return 'user';
  if (atoms.some((a) => holdsAtom(index.trusted, a))) return 'trusted';
  return undefined;
}

/** Whether the texts hold a path atom equal to `atom` or a folder above it ("out/" gives "out/status.md"). */
function holdsPath(texts: IndexedTexts, atom: string): boolean {
  if (texts.atoms.has(atom)) return true;
  for (const a of texts.atoms) if (a.startsWith('path:') && atom.startsWith(`${a}/`)) return true;
  return false;
}

/**
 * Where a value of a typed effect field came from, judged only against values given AS that
 * kind (given-values.ts): an amount binds to money the user wrote in the call's currency, or
 * with no currency stated (a call with no currency, or one Warden cannot read, binds no money the
 * user wrote in a currency), a recipient or payee to a recognisable address, handle, channel, IBAN or
 * international number anywhere in the user's words, or to a name, account or number they wrote
 * in a recipient role; a host to a host they named; a path to a path they wrote (or one under a
 * folder they wrote). A number the user wrote for something else
 * (an invoice number, a date) and a word of their request are not given as amounts or
 * recipients. Falls back to `tool-output` (an untrusted output holds the value) or `literal`.
 */
export function classifyAs(index: ProvenanceIndex, binding: BindingKind, value: string | number): ValueSource {
  let atoms: string[];
  if (binding.kind === 'amount') {
    const parsed = typeof value === 'number' ? [...givenAtomsOfValue(value, 'amount')] : [...givenAtomsOfValue(value, 'amount')];
    const amount = parsed.find((a) => a.split(':').length === 2);
    if (amount === undefined) return inToolOutputs(index, value) ? 'tool-output' : 'literal';
    const n = amount.slice('money:'.length);
    const v = binding.currency === 'cents' ? String(Number(n) / 100) : n;
    const stated = parsed.filter((a) => a.split(':').length === 3 && !a.endsWith(':?')).map((a) => a.split(':')[2] as string);
    const declared = binding.currency === 'cents' ? 'USD' : binding.currency?.toUpperCase();
    // The call's currency: declared, or written in the amount ("20 KWD"); both must agree.
    const currencies = declared === undefined ? stated : stated.length === 0 || stated.includes(declared) ? [declared] : ['?conflict'];
    // Fail closed: a currency Warden cannot read ("bitcoin", two that disagree) binds nothing; a
    // call with no currency binds only money the user wrote with none ("amount 20", "pay 20"); a
    // call in a currency binds money the user wrote in that currency or with none.
    if (currencies.length > 1 || currencies.some((c) => !/^[A-Z]{3}$/.test(c))) atoms = [];
    else atoms = [`money:${v}:?`, ...currencies.map((c) => `money:${v}:${c}`)];
    return bestOf(index, atoms) ?? (inToolOutputs(index, Number(v)) || inToolOutputs(index, value) ? 'tool-output' : 'literal');
  }
  const text = String(value);
  if (text.trim() === '') return 'literal';
  if (binding.kind === 'path') {
    const atom = pathAtom(text);
    if (holdsPath(index.user, atom)) return 'user';
    if (holdsPath(index.trusted, atom)) return 'trusted';
    return inToolOutputs(index, value) ? 'tool-output' : 'literal';
  }
  atoms = binding.kind === 'host' ? [hostAtomOf(text)] : partyAtomsOf(text, binding.as);
  return bestOf(index, atoms) ?? (inToolOutputs(index, value) ? 'tool-output' : 'literal');
}
