/**
 * What the user gave AS WHICH KIND: the amounts, recipients, payees and accounts a text or a
 * value states, read by a small grammar, so that a binding rule binds a value only to values the
 * user gave as that kind (issue 10: "pay invoice 77 ($20.00)" gives the amount 20, not 77; "post
 * it to #finance" gives the channel #finance, not a chat user named `invoice`).
 *
 * Invariant: a number becomes a given amount only when written as money; a word becomes a given
 * recipient only when written in a recipient role. Recognisable forms (e-mail addresses, @handles,
 * #channels, IBANs, international phone numbers) are given wherever they occur, as before.
 *
 * The grammar (policies/README.md, "What the user gave, by kind", is the reference):
 *  - money: a currency sign before or after the number (`$20`, `€ 20`, `20€`, `US$20`, `CHF 20`),
 *    an ISO 4217 code before or after it (`20 EUR`, `EUR20`, `20.00 usd` for common codes in lower
 *    case), a currency word after it (`20 dollars`, `20 euros`, `20 bucks`), `amount`/`sum`
 *    followed by it (`amount 20`, `amount of 20`, `amount: 20`, `amount is 20`, `sum of 20`), or a
 *    payment verb directly followed by it, the number ending the phrase (`pay 20`, `pay 20 to`,
 *    `transfer 20 now`; not `pay 3 invoices`, nor `pay invoice 77`). Numbers: `1234.56`,
 *    `1,234.56`, `1.234,56`, `20,50` (a comma with two digits is a decimal comma). Money right
 *    after a bound or a state (`budget of $500`, `up to $100`, `my balance is $90`) is not given
 *    as an amount to pay.
 *  - recipients: the object of a messaging verb (`message Alice`, `DM bob`, `tell Carol`, `ping`,
 *    `text`, `email`, `notify`, `ask`, `cc`, `invite`, `remind`, `contact`, `pay Alice $20`), and
 *    `to <name>` after a sending verb in the same clause (`send the report to Bob`); lists
 *    (`Alice, Bob and Carol`) and capitalised full names (`Alice Smith`) continue a role. Marker
 *    nouns name the kind: `user X`, `channel X` / `the X channel`, `account X`, `IBAN X`,
 *    `phone X` / `number X`. A full name gives only the full name. Names and channels compare
 *    case-insensitively and otherwise exactly (`.`, `_`, `-` kept). Articles, pronouns and determiners are never names (`to the team`,
 *    `message my manager` give nothing), nor is a word followed by a number (`email invoice 77`).
 *  - accounts (6 or more digits, spaces and dashes dropped) and phone numbers written without `+`
 *    count only in a recipient or account role (`account 12345678`, `to 0044 20 7946 0958`,
 *    `call 415-555-0100`), so a date or an invoice number is not an account.
 *
 * Atoms this module makes (next to provenance.ts's form atoms `email:`, `iban:`, `channel:`,
 * `handle:`, `host:`, `url:`): `money:<n>` (any currency), `money:<n>:<CUR>` (currency stated;
 * `$`, `dollars` and `bucks` state USD, `¥` states JPY and CNY), `money:<n>:?` (no currency stated), `name:<n>` (a chat user or person),
 * `acct:<digits>`, `tel:<digits>`, `host:<name>` (a host with a port, or `localhost`), `path:<normal path>` (a token written as a path: with a `/`, or
 * a file name with an extension; a path under a folder the user gave is given too).
 *
 * Pure: workflow code may import this file.
 */

import { normalizePath } from './rule-syntax';

/** ISO 4217 active codes: in upper case any of them marks money. */
const ISO_4217 = new Set(
  (
    'AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK ' +
    'DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF ' +
    'KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK ' +
    'PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX ' +
    'USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWL'
  ).split(' '),
);
/** Codes also read in lower case: common enough, and not English words ("all", "top", "try" are not here). */
const LOWER_CASE_CODES = new Set(['usd', 'eur', 'gbp', 'chf', 'jpy', 'cad', 'aud', 'nzd', 'sek', 'nok', 'dkk', 'pln', 'czk', 'inr', 'cny', 'hkd', 'sgd', 'mxn', 'brl', 'zar']);
/**
 * Currency signs and the currencies they say: `$` alone is the US dollar (a user who means
 * another dollar writes `CA$`, `A$`, `20 CAD`...); `¥` is the yen or the yuan (either binds).
 */
const SIGNS: readonly [string, string][] = [
  ['US$', 'USD'],
  ['CA$', 'CAD'],
  ['AU$', 'AUD'],
  ['NZ$', 'NZD'],
  ['HK$', 'HKD'],
  ['C$', 'CAD'],
  ['A$', 'AUD'],
  ['S$', 'SGD'],
  ['$', 'USD'],
  ['€', 'EUR'],
  ['£', 'GBP'],
  ['¥', 'JPY|CNY'],
  ['₹', 'INR'],
  ['₩', 'KRW'],
  ['₽', 'RUB'],
  ['₺', 'TRY'],
  ['₪', 'ILS'],
];
const CURRENCY_WORDS: Readonly<Record<string, string>> = { dollar: 'USD', dollars: 'USD', bucks: 'USD', euro: 'EUR', euros: 'EUR', cents: 'cents' };
/** Verbs a payment amount directly follows ("pay 20"). */
const PAY_VERBS = new Set(['pay', 'send', 'transfer', 'wire', 'refund', 'tip', 'remit', 'give', 'charge', 'reimburse', 'deposit']);
/** What may follow an amount after a payment verb: the end of the phrase. */
const AFTER_PAY_AMOUNT = new Set(['to', 'for', 'from', 'into', 'now', 'today', 'via', 'by', 'on', 'using', 'with', 'and', 'back', 'as', 'in', 'at']);
/** Verbs whose object is a recipient ("message Alice"). */
const OBJECT_VERBS = new Set(['message', 'msg', 'dm', 'pm', 'ping', 'text', 'sms', 'email', 'e-mail', 'mail', 'tell', 'notify', 'ask', 'cc', 'bcc', 'invite', 'remind', 'contact', 'call', 'thank', 'pay', 'slack', 'whatsapp', 'inform']);
/** Verbs after which `to X` names a recipient in the same clause ("send the report to Bob"). */
const SEND_VERBS = new Set([
  ...OBJECT_VERBS,
  'send', 'sent', 'post', 'forward', 'fwd', 'write', 'reply', 'respond', 'transfer', 'wire', 'give', 'deliver', 'share', 'submit', 'report',
  'return', 'refund', 'hand', 'pass', 'ship', 'publish', 'announce', 'assign', 'copy', 'remit', 'tip', 'introduce', 'escalate', 'reimburse', 'deposit', 'upload',
]);
/** Verbs that end a list of names ("message Alice and post it ..."): never a name after `and`. */
const LIST_ENDING_VERBS = new Set([
  ...SEND_VERBS,
  'check', 'get', 'make', 'do', 'find', 'read', 'summarise', 'summarize', 'update', 'delete', 'create', 'book', 'fetch', 'open', 'let', 'see', 'look',
  'move', 'save', 'print', 'list', 'show', 'compare', 'review', 'schedule', 'cancel', 'confirm', 'mark', 'close', 'archive', 'remove', 'put', 'keep',
]);
/** Words that are never names: articles, pronouns, determiners, prepositions, conjunctions, marker nouns. */
const NOT_NAMES = new Set(
  (
    'the a an my our your his her their its it them him me us you i we they this that these those all everyone everybody anyone anybody someone somebody ' +
    'each every some any no none whoever whom who whose which what there here back up out about with from for of in on at by and or but not so then also too ' +
    'please to into onto via as if when while before after now today tomorrow yesterday same other another both either neither own be is are was were'
  ).split(' '),
);
/** Words after which a messaging verb is a noun ("the message", "her email", "this invite"). */
const DETERMINERS = new Set(['the', 'a', 'an', 'this', 'that', 'these', 'those', 'his', 'her', 'their', 'its', 'my', 'our', 'your', 'each', 'every', 'last', 'latest', 'recent', 'first', 'next', 'previous', 'same']);
/** Marker nouns: the next token is a value of that kind ("user invoice", "account 12345678"). */
const MARKERS: Readonly<Record<string, 'name' | 'channel' | 'account' | 'phone' | 'iban'>> = {
  user: 'name',
  username: 'name',
  handle: 'name',
  member: 'name',
  channel: 'channel',
  account: 'account',
  acct: 'account',
  'a/c': 'account',
  iban: 'iban',
  phone: 'phone',
  number: 'phone',
  tel: 'phone',
  mobile: 'phone',
  cell: 'phone',
};
/** Filler words between a marker or `amount` and its value ("account number: 123", "amount due is 20"). */
const FILLERS = new Set(['of', 'is', 'no', 'nr', 'number', 'num', '#', ':', '=', 'due', 'id', 'be', 'should', 'will', 'to', 'owed', 'total']);

interface Token {
  /** The chunk with surrounding punctuation trimmed, as written. */
  text: string;
  lower: string;
  /** A clause ends after this token (`.`, `;`, `!`, `?`, `:` after it, or a line break). */
  endsClause: boolean;
  /** A comma follows it (lists). */
  comma: boolean;
}

const TRIM = `<>()[]{}"'\`,;.:!?*`;

function tokensOf(text: string): Token[] {
  const out: Token[] = [];
  const lines = text.split(/\r?\n/);
  for (const line of lines) {
    const chunks = line.split(/[\s\u00a0]+/).filter((c) => c !== '');
    chunks.forEach((chunk, i) => {
      let start = 0;
      let end = chunk.length;
      while (start < end && TRIM.includes(chunk[start] as string)) start += 1;
      while (end > start && TRIM.includes(chunk[end - 1] as string)) end -= 1;
      const trailing = chunk.slice(end);
      const core = chunk.slice(start, end);
      const last = i === chunks.length - 1;
      if (core === '') {
        if (out.length > 0 && /[.;!?:]/.test(trailing)) (out[out.length - 1] as Token).endsClause = true;
        return;
      }
      out.push({ text: core, lower: core.toLowerCase(), endsClause: last || /[.;!?:]/.test(trailing), comma: trailing.includes(',') });
    });
  }
  return out;
}

/** "1,234.56" / "1.234,56" / "20,50" / "20" → "1234.56" / "1234.56" / "20.5" / "20"; undefined for anything else. */
export function parseMoneyNumber(text: string): string | undefined {
  let t = text.trim();
  if (t.endsWith(',-') || t.endsWith('.-')) t = t.slice(0, -2);
  let normal: string | undefined;
  if (/^\d+(\.\d+)?$/.test(t)) normal = t;
  else if (/^\d{1,3}(,\d{3})+(\.\d+)?$/.test(t)) normal = t.replace(/,/g, '');
  else if (/^\d{1,3}(\.\d{3})+(,\d{1,2})?$/.test(t)) normal = t.replace(/\./g, '').replace(',', '.');
  else if (/^\d+,\d{1,2}$/.test(t)) normal = t.replace(',', '.');
  else if (/^\d{1,3}('\d{3})+(\.\d+)?$/.test(t)) normal = t.replace(/'/g, '');
  if (normal === undefined) return undefined;
  const n = Number(normal);
  return Number.isFinite(n) ? String(n) : undefined;
}

function codeOf(token: string): string | undefined {
  if (ISO_4217.has(token)) return token;
  if (LOWER_CASE_CODES.has(token.toLowerCase())) return token.toUpperCase();
  return undefined;
}

/** `$20`, `€20`, `20€`, `USD20`, `20EUR`: a number with a sign or code glued to it. */
function gluedMoney(text: string): { value: string; currency: string } | undefined {
  for (const [sign, currency] of SIGNS) {
    if (text.startsWith(sign)) {
      const value = parseMoneyNumber(text.slice(sign.length));
      if (value !== undefined) return { value, currency };
    }
    if (text.endsWith(sign) && sign.length === 1) {
      const value = parseMoneyNumber(text.slice(0, -sign.length));
      if (value !== undefined) return { value, currency };
    }
  }
  const prefixed = /^([A-Za-z]{3})(\d[\d.,']*)$/.exec(text);
  if (prefixed !== null) {
    const code = WORD_CODES.has(prefixed[1] as string) ? undefined : codeOf(prefixed[1] as string);
    const value = parseMoneyNumber(prefixed[2] as string);
    if (code !== undefined && value !== undefined) return { value, currency: code };
  }
  const suffixed = /^(\d[\d.,']*)([A-Za-z]{3})$/.exec(text);
  if (suffixed !== null) {
    const code = codeOf(suffixed[2] as string);
    const value = parseMoneyNumber(suffixed[1] as string);
    if (code !== undefined && value !== undefined) return { value, currency: code };
  }
  return undefined;
}

/** Codes that are also English words: money only after the number ("20 TRY"), never before it ("PAY ALL 77 INVOICES"). */
const WORD_CODES = new Set(['ALL', 'TOP', 'TRY', 'CUP', 'MOP', 'MAD', 'GEL', 'BAM', 'PEN', 'SOS', 'LAK', 'BOB', 'PAB', 'GIP', 'NIO']);

/** A currency marker standing alone (`$`, `EUR`, `usd`, `dollars`), with the currency it says; `before`: it precedes the number. */
function standaloneCurrency(token: Token, before = false): string | undefined {
  for (const [sign, currency] of SIGNS) if (token.text === sign) return currency;
  if (before && WORD_CODES.has(token.text)) return undefined;
  return codeOf(token.text) ?? CURRENCY_WORDS[token.lower];
}

/**
 * Money atoms for an amount: any-currency, and the stated currency (`?`: none stated; `A|B`:
 * either of two, as `¥` says). Cents are US cents.
 */
export function moneyAtoms(value: string, currency: string): string[] {
  if (currency === 'cents') {
    const dollars = String(Number(value) / 100);
    return [`money:${dollars}`, `money:${dollars}:USD`];
  }
  return [`money:${value}`, ...currency.split('|').map((c) => `money:${value}:${c}`)];
}

/** A host with a port, maybe a path after it (`localhost:3000`, `intranet:8080/status`), not a URL. */
const HOST_PORT = /^([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*):\d{1,5}(?:\/\S*)?$/;

/** A token written as a path: with a `/`, or a file name with an extension (`out/status.md`, `notes.txt`); not a URL or an address. */
function isPathForm(text: string): boolean {
  if (text.includes('://') || text.includes('@') || text.startsWith('#') || text.length > 4096) return false;
  return (text.includes('/') && /[\p{L}\p{N}]/u.test(text)) || /^[\p{L}\p{N}_][\p{L}\p{N}_.-]*\.[A-Za-z][A-Za-z0-9]{0,7}$/u.test(text);
}

/** The atom of a path the user gave: its normal form inside the workspace (rule-syntax.ts `normalizePath`). */
export function pathAtom(text: string): string {
  return `path:${normalizePath(text.trim())}`;
}

/**
 * A chat user, channel or person's name in one form: lower case, `@` dropped, a possessive `'s`
 * dropped, runs of spaces as one space. Dots, `_` and `-` are part of the name: on chat systems
 * `alice.smith`, `alice_smith`, `alice-smith` and `alice_` are different accounts.
 */
export function normalizeName(text: string): string {
  return text
    .trim()
    .replace(/^@/, '')
    .replace(/['’]s$/i, '')
    .toLowerCase()
    .replace(/\s+/g, ' ');
}

function isNameToken(token: Token): boolean {
  if (NOT_NAMES.has(token.lower) || MARKERS[token.lower] !== undefined) return false;
  // Letters (any script), digits, and the separators handles use; must hold a letter.
  return /^@?[\p{L}\p{N}][\p{L}\p{N}._'-]*$/u.test(token.text) && /\p{L}/u.test(token.text);
}

const isCapitalised = (token: Token): boolean => /^\p{Lu}/u.test(token.text.replace(/^@/, ''));
const isNumberToken = (token: Token | undefined): boolean => token !== undefined && /^[#№]?\d/.test(token.text);

/** Digits of a run of number groups starting at `i` ("0044 20 7946 0958", "(415) 555-0100"), with how many tokens it spans. */
function digitRun(tokens: Token[], i: number): { digits: string; plus: boolean; span: number } | undefined {
  let digits = '';
  let span = 0;
  const first = tokens[i];
  if (first === undefined) return undefined;
  for (let j = i; j < tokens.length; j += 1) {
    const t = (tokens[j] as Token).text;
    if (!/^[+(]?[\d()./-]+$/.test(t) || !/\d/.test(t)) break;
    digits += t.replace(/\D/g, '');
    span += 1;
    if ((tokens[j] as Token).endsClause || (tokens[j] as Token).comma || digits.length >= 15) break;
  }
  if (span === 0) return undefined;
  return { digits, plus: first.text.startsWith('+') || first.text.startsWith('(+'), span };
}

/** Atoms of a number run in an account or phone role. */
function numberRoleAtoms(run: { digits: string; plus: boolean }, role: 'account' | 'phone' | 'any', out: Set<string>): void {
  const digits = run.digits;
  if (digits.length >= 6 && role !== 'phone') out.add(`acct:${digits}`);
  if (digits.length >= 7 && digits.length <= 15 && role !== 'account') out.add(`tel:${digits.replace(/^00/, '')}`);
}

/** A recipient written in a recipient role, from token `i`: its atoms, and the tokens it spans. */
function roleValueAt(tokens: Token[], i: number, out: Set<string>, kind: 'name' | 'channel' | 'account' | 'phone' | 'iban' | 'any'): number {
  const token = tokens[i];
  if (token === undefined) return 0;
  if (token.text.startsWith('#') && token.text.length > 1) {
    out.add(`channel:${normalizeName(token.text.slice(1))}`);
    return 1;
  }
  if (isNumberToken(token) || token.text.startsWith('+')) {
    const run = digitRun(tokens, i);
    if (run === undefined) return 0;
    if (kind === 'iban') return run.span;
    numberRoleAtoms(run, kind === 'account' ? 'account' : kind === 'phone' ? 'phone' : 'any', out);
    return run.span;
  }
  if (kind === 'iban' || kind === 'account' || kind === 'phone') return 0;
  if (!isNameToken(token)) return 0;
  // "email invoice 77": a noun followed by a number is a reference, not a name.
  if (isNumberToken(tokens[i + 1]) && !token.endsClause && !token.comma) return 0;
  if (kind === 'channel') {
    out.add(`channel:${normalizeName(token.text)}`);
    return 1;
  }
  const parts = [token.text];
  let span = 1;
  // A capitalised full name continues ("Alice Smith"), up to three words.
  while (isCapitalised(token) && span < 3 && !(tokens[i + span - 1] as Token).endsClause && !(tokens[i + span - 1] as Token).comma) {
    const next = tokens[i + span];
    if (next === undefined || !isCapitalised(next) || !isNameToken(next)) break;
    parts.push(next.text);
    span += 1;
  }
  // A full name gives the full name only: "Alice Smith" is not any Alice.
  out.add(`name:${normalizeName(parts.join(' '))}`);
  return span;
}

/** From token `i` (a role's first value): the value and the list that continues it ("Alice, Bob and Carol"). */
function roleListAt(tokens: Token[], i: number, out: Set<string>, kind: 'name' | 'channel' | 'account' | 'phone' | 'iban' | 'any'): void {
  let at = i;
  for (let guard = 0; guard < 20; guard += 1) {
    const span = roleValueAt(tokens, at, out, kind);
    if (span === 0) return;
    const last = tokens[at + span - 1] as Token;
    if (last.endsClause) return;
    let next = at + span;
    const joiner = tokens[next];
    if (joiner !== undefined && (joiner.lower === 'and' || joiner.lower === 'or' || joiner.lower === '&')) next += 1;
    else if (!last.comma) return;
    // A list goes on with names written like the first ("Alice, Bob and Carol"), not with a verb.
    const following = tokens[next];
    if (following === undefined || LIST_ENDING_VERBS.has(following.lower)) return;
    if (isCapitalised(tokens[i] as Token) && isNameToken(following) && !isCapitalised(following)) return;
    at = next;
  }
}

/** Words that make the money after them a bound or a state, not an amount to pay ("a budget of $500", "up to $100", "my balance is $90", "my last bill was $95"). */
const NOT_AN_AMOUNT = new Set(['was', 'were', 'balance', 'budget', 'limit', 'max', 'maximum', 'cap', 'up', 'under', 'below', 'above', 'over', 'than', 'most', 'least', 'threshold', 'exceed', 'exceeds', 'exceeding', 'within']);

/** Whether one of the two words before token `i` (in its clause) makes its money a bound or a state. */
function boundedBefore(tokens: Token[], i: number): boolean {
  for (let back = i - 1; back >= 0 && back >= i - 2; back -= 1) {
    const t = tokens[back] as Token;
    if (t.endsClause) return false;
    if (NOT_AN_AMOUNT.has(t.lower)) return true;
  }
  return false;
}

/** Money, in any of the grammar's forms, starting at token `i`. */
function moneyAt(tokens: Token[], i: number, out: Set<string>): void {
  if (boundedBefore(tokens, i)) return;
  const token = tokens[i] as Token;
  const glued = gluedMoney(token.text);
  if (glued !== undefined) {
    for (const a of moneyAtoms(glued.value, glued.currency)) out.add(a);
    return;
  }
  const value = parseMoneyNumber(token.text);
  if (value === undefined) return;
  const prev = tokens[i - 1];
  const next = tokens[i + 1];
  const before = prev !== undefined && !prev.endsClause ? standaloneCurrency(prev, true) : undefined;
  const after = next !== undefined && !token.endsClause ? standaloneCurrency(next) : undefined;
  const currency = after ?? (before === 'cents' ? undefined : before);
  if (currency !== undefined) {
    for (const a of moneyAtoms(value, currency)) out.add(a);
    return;
  }
  // "amount 20", "amount of 20", "amount due is 20", "sum of 20".
  for (let back = i - 1, fillers = 0; back >= 0 && fillers <= 2; back -= 1) {
    const t = tokens[back] as Token;
    if (t.endsClause && back !== i - 1) break;
    if (t.lower === 'amount' || t.lower === 'sum') {
      for (const a of moneyAtoms(value, '?')) out.add(a);
      return;
    }
    if (!FILLERS.has(t.lower)) break;
    fillers += 1;
  }
  // "pay 20", "transfer 20 to ...", "pay Alice 20": the number ends the phrase.
  const ends = token.endsClause || token.comma || next === undefined || AFTER_PAY_AMOUNT.has(next.lower);
  if (!ends) return;
  // Not "pay <name> 20": "pay invoice 77 to ..." reads the same way.
  if (prev !== undefined && PAY_VERBS.has(prev.lower)) for (const a of moneyAtoms(value, '?')) out.add(a);
}

/**
 * The typed atoms of what a text (the user's words, a sub-agent intent, a trusted text) gives:
 * money, recipients in a recipient role, accounts and phone numbers in their roles. Never throws.
 */
export function givenAtomsOfText(text: string): Set<string> {
  const out = new Set<string>();
  // International numbers are recognisable anywhere, CSV cells included ("Jane,jane@x.org,+49 170 2222222").
  for (const match of text.matchAll(/(?<![\w+])\+\(?\d[\d\s().-]{5,}\d/g)) {
    const digits = match[0].replace(/\D/g, '');
    if (digits.length >= 7 && digits.length <= 15) out.add(`tel:${digits}`);
  }
  const tokens = tokensOf(text);
  let sendVerbInClause = false;
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i] as Token;
    const prevEnded = i === 0 || (tokens[i - 1] as Token).endsClause;
    if (prevEnded) sendVerbInClause = false;
    moneyAt(tokens, i, out);
    if (isPathForm(token.text) && !HOST_PORT.test(token.text)) out.add(pathAtom(token.text));
    // Hosts the URL and host-name forms do not catch: `localhost`, `intranet:8080`, `10.0.0.5:5432/db`.
    const hostPort = HOST_PORT.exec(token.text);
    if (hostPort !== null) out.add(`host:${(hostPort[1] as string).toLowerCase()}`);
    else if (token.lower === 'localhost') out.add('host:localhost');
    else if (token.lower.startsWith('http://') || token.lower.startsWith('https://')) {
      // A URL on a single-label host ("http://intranet:8080/x"), which the URL atoms leave out.
      try {
        out.add(`host:${new URL(token.text).hostname.toLowerCase().replace(/^\[|\]$/g, '')}`);
      } catch {
        // Not a URL: nothing given.
      }
    }
    if (token.text.startsWith('@') && token.text.length > 1) out.add(`name:${normalizeName(token.text)}`);
    // "the finance channel": the word before the marker.
    if (token.lower === 'channel' && i > 0 && !(tokens[i - 1] as Token).endsClause) roleValueAt(tokens, i - 1, out, 'channel');
    const next = tokens[i + 1];
    if (token.endsClause || next === undefined) {
      if (SEND_VERBS.has(token.lower)) sendVerbInClause = true;
      continue;
    }
    const marker = MARKERS[token.lower];
    if (marker !== undefined) {
      // "account number: 12345678": skip the fillers.
      let at = i + 1;
      while (at < tokens.length && at < i + 3 && FILLERS.has((tokens[at] as Token).lower) && !(tokens[at - 1] as Token).endsClause) at += 1;
      roleListAt(tokens, at, out, marker);
    }
    // "the message Mallory posted", "an email Bob sent": after a determiner the verb is a noun.
    const noun = i > 0 && !(tokens[i - 1] as Token).endsClause && DETERMINERS.has((tokens[i - 1] as Token).lower);
    if (OBJECT_VERBS.has(token.lower) && !noun) {
      // "pay Alice $20" and "message Alice" name their recipient; "pay invoice 77" does not.
      if (token.lower !== 'pay' || isCapitalised(next) || gluedMoney(tokens[i + 2]?.text ?? '') !== undefined) roleListAt(tokens, i + 1, out, 'any');
    }
    if (token.lower === 'to' && sendVerbInClause) roleListAt(tokens, i + 1, out, 'any');
    if (SEND_VERBS.has(token.lower)) sendVerbInClause = true;
  }
  return out;
}

/**
 * The typed atoms of one whole value the user declared (their address, `trust.values`, a host
 * they listed) or a trusted field that holds a recipient: what its form says it is. A bare word
 * or name is a recipient name; digits are an account or phone number, never an amount; money
 * needs its currency. Never throws.
 */
export function givenAtomsOfValue(value: string | number, as: 'party' | 'amount' | 'any' = 'any'): Set<string> {
  const out = new Set<string>();
  const text = String(value).trim();
  if (text === '') return out;
  if (as !== 'party') {
    const glued = gluedMoney(text.replace(/\s+/g, ''));
    if (glued !== undefined) for (const a of moneyAtoms(glued.value, glued.currency)) out.add(a);
    else if (as === 'amount') {
      const plain = typeof value === 'number' ? String(value) : parseMoneyNumber(text.replace(/\s*[A-Za-z]{3}$/, ''));
      const code = /\s*([A-Za-z]{3})$/.exec(text)?.[1];
      if (plain !== undefined) for (const a of moneyAtoms(plain, code === undefined ? '?' : (codeOf(code) ?? '?'))) out.add(a);
      return out;
    }
  }
  if (as === 'amount') return out;
  if (/^[+(]?[\d\s()./-]+$/.test(text) && /\d/.test(text)) {
    const digits = text.replace(/\D/g, '');
    numberRoleAtoms({ digits, plus: text.startsWith('+') }, 'any', out);
    return out;
  }
  if (isPathForm(text)) out.add(pathAtom(text));
  if (text.startsWith('#') && text.length > 1) out.add(`channel:${normalizeName(text.slice(1))}`);
  else if (/^@?[\p{L}\p{N}][\p{L}\p{N}\s._'-]*$/u.test(text) && /\p{L}/u.test(text) && text.length <= 64) out.add(`name:${normalizeName(text)}`);
  return out;
}

/** Keys whose values are amounts (matched without case, `_` or `-`, or as a part: `amount_due`, `totalPrice`). */
const AMOUNT_KEY = /amount|price|cost|balance|^(total|subtotal|grandtotal|sum|value|usd|eur|gbp|due|payment|paid|owed|fee|fees)$/;
/** Keys whose values are recipients or payees in trusted data (`name`, `email`, `iban`, `payee`...). */
const PARTY_KEY =
  /^(to|cc|bcc|recipient|recipients|address|email|emails|replyto|channel|channels|user|users|username|handle|phone|mobile|chat|chatid|userid|payee|iban|account|accountid|accountnumber|beneficiary|destination|creditor|counterparty|name|fullname|displayname|contact|contacts|member|members|owner|assignee|manager|sender|from)$/;

/** A JSON key as the patterns above read it. */
function keyForm(key: string): string {
  return key.toLowerCase().replace(/[_-]/g, '');
}

/**
 * The typed atoms of structured data the task trusts (a row of the user's own table, a JSON file):
 * numbers under amount-like keys are amounts, values under recipient-like keys are recipients,
 * and every text is read with the grammar. Never throws.
 */
export function givenAtomsOfData(data: unknown, out: Set<string> = new Set(), key = '', depth = 0): Set<string> {
  if (depth > 32) return out;
  const k = keyForm(key);
  if (typeof data === 'string') {
    for (const a of givenAtomsOfText(data)) out.add(a);
    if (AMOUNT_KEY.test(k)) for (const a of givenAtomsOfValue(data, 'amount')) out.add(a);
    if (PARTY_KEY.test(k)) for (const part of data.split(/[,;]/)) for (const a of givenAtomsOfValue(part, 'party')) out.add(a);
  } else if (typeof data === 'number' && Number.isFinite(data)) {
    if (k === 'cents' || k.endsWith('cents')) for (const a of moneyAtoms(String(data), 'cents')) out.add(a);
    else if (AMOUNT_KEY.test(k)) for (const a of moneyAtoms(String(data), '?')) out.add(a);
    else if (PARTY_KEY.test(k)) for (const a of givenAtomsOfValue(String(data), 'party')) out.add(a);
  } else if (Array.isArray(data)) for (const v of data) givenAtomsOfData(v, out, key, depth + 1);
  else if (data !== null && typeof data === 'object') for (const [k2, v] of Object.entries(data)) givenAtomsOfData(v, out, k2, depth + 1);
  return out;
}
// ---------------------------------------------------------------------------------------------
// Mentions: values the user names without giving them as a destination or an amount.

/** Words that open a question asking about something ("Is it a scam?"), not a request ("Can you pay…?"). */
const QUESTION_OPENERS = new Set(['is', 'are', 'was', 'were', 'am', 'does', 'do', 'did', 'should', 'shall', 'has', 'have', 'had', 'who', 'whom', 'whose', 'what', 'why', 'how', 'which', 'where', 'when', 'isn\'t', 'aren\'t', 'doesn\'t', 'didn\'t']);
/** A clause someone else's words fill ("an e-mail asks me to pay…", "Bob says I owe…"). */
const REPORTED = /\b(?:(?:asks?|asked|asking|wants?|wanted|tells|told|telling|urges?|urged|instructs?|instructed|demands?|demanded|reminds?|reminded)\s+(?:me|us)\s+to|(?:says?|said|saying|claims?|claimed|claiming|insists?|insisted)\s+(?:that\s+)?(?:i|we|you)\s)\b/i;
/** A negated instruction ("do not pay", "don't e-mail", "never send"); not "don't forget to". */
const NEGATED = /\b(do\s+not|don['’]?t|never|must\s+not|mustn['’]?t|should\s+not|shouldn['’]?t|no\s+longer|stop|avoid|refuse\s+to|decline\s+to)\b(?!\s+(forget|hesitate|wait|delay)\b)/i;
/** A value after these is where something came from, not where it goes ("the invoice from X", "sent by X"). */
const SOURCE_BEFORE = /\b(from|by)\s+(@?[^\s,;:!?()]+)/gi;
/** Sentences that answer a sender, where the source is the destination ("reply to the mail from X"). */
const ANSWERING = /\b(reply|replies|respond|answer|thank|get\s+back)\b/i;
/** The object of a reading verb, a channel: where content comes from ("summarise the #vendors channel", "read #ops"). */
const READ_CHANNEL = /\b(summari[sz]e|summary\s+of|read|reading|check|review|scan|skim|go\s+through|catch\s+up\s+on|look\s+at|monitor|watch|search|fetch)\s+(?:(?:the|my|our|this|that)\s+)?((?:#[^\s,;:!?()]+)(?:\s+channel)?|[^\s,;:!?()#]+\s+channel)\b/gi;

/** The sentence of `text` around offset `at`. */
function sentenceAround(text: string, at: number): string {
  const before = text.slice(0, at).search(/[^.!?;\n]*$/);
  const after = /[.!?;\n]/.exec(text.slice(at));
  return text.slice(before, after === null ? text.length : at + after.index);
}

/** `text` with the span [start, end) blanked (same length, so offsets and line breaks stay). */
function blank(text: string, start: number, end: number): string {
  return text.slice(0, start) + text.slice(start, end).replace(/[^\n]/g, ' ') + text.slice(end);
}

/**
 * The user's words with what they only MENTION blanked, so that it is not read as given
 * (policies/README.md, "Mentions"): a question about something (a sentence ending in `?` that
 * opens with `is`, `does`, `who`, `what`, `should`… — not `can`/`could`/`would you`, which ask
 * for an action), a sentence that reports someone else's words ("an e-mail asks me to pay…"), a
 * negated clause ("do not pay the $90 late fee"; clauses split at `,`, `and`, `but`, `then`), a
 * value after `from`, `by` or `of` (a source: "the invoice from X", "sent by X"), and a channel
 * that is the object of a reading verb ("summarise the #vendors channel"). Not read: pronouns
 * ("Do not pay it" does not reach back to what "it" stands for), quotes, conditionals, and
 * mentions phrased otherwise; those values count as given, as before. Never throws.
 */
export function withoutMentions(text: string): string {
  let out = text;
  // Sentences: up to `.`, `!`, `?`, `;` followed by a space or the end, or a line break.
  for (const sentence of text.matchAll(/[^\n]*?(?:[.!?;](?=\s|$)|(?=\n)|$)/g)) {
    const s = sentence[0];
    if (s.trim() === '') continue;
    const start = sentence.index ?? 0;
    const first = (/^\s*["'(]*([A-Za-z'’]+)/.exec(s)?.[1] ?? '').toLowerCase();
    if ((s.trimEnd().endsWith('?') && QUESTION_OPENERS.has(first)) || REPORTED.test(s)) {
      out = blank(out, start, start + s.length);
      continue;
    }
    // Clauses of the sentence: a negation reaches to the end of its own clause.
    for (const clause of s.matchAll(/[^,]+?(?=,|\s(?:and|but|then)\s|$)/g)) {
      if (NEGATED.test(clause[0])) {
        const at = start + (clause.index ?? 0);
        out = blank(out, at, at + clause[0].length);
      }
    }
  }
  for (const m of text.matchAll(SOURCE_BEFORE)) {
    const value = m[2] as string;
    // "from my account", "by Friday": only a value that names a party, not a word of the sentence.
    if (!/[@#\d]/.test(value) && !/^\p{Lu}/u.test(value)) continue;
    if (ANSWERING.test(sentenceAround(text, m.index ?? 0))) continue;
    const at = (m.index ?? 0) + m[0].length - value.length;
    out = blank(out, at, at + value.length);
  }
  for (const m of text.matchAll(READ_CHANNEL)) {
    const channel = m[2] as string;
    const at = (m.index ?? 0) + m[0].length - channel.length;
    out = blank(out, at, at + channel.length);
  }
  return out;
}
