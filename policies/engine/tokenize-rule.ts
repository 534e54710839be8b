/**
 * Splits one policy sentence into tokens, each with the column it starts at, so the parser can
 * point at the exact word where reading failed. Hand-written character scanning: a chunk of
 * non-space characters is classified by its shape (money, path, time range, number, word).
 */

export type TokenKind = 'word' | 'number' | 'money' | 'path' | 'time' | 'time-range' | 'quoted' | 'comma' | 'end';

export interface Token {
  kind: TokenKind;
  /** As written (without a trailing full stop). */
  text: string;
  /** Lower-cased `text`, what keywords are compared with. */
  lower: string;
  /** 1-based column in the sentence. */
  column: number;
  /** number and money: the value; time: minutes after midnight. */
  value?: number;
  /** money: ISO code of the currency symbol. */
  currency?: string;
  /** time-range: minutes after midnight of both ends. */
  from?: number;
  to?: number;
}

export class TokenizeError extends Error {
  constructor(
    message: string,
    readonly column: number,
    readonly word: string,
  ) {
    super(message);
  }
}

const CURRENCY_SIGNS: Readonly<Record<string, string>> = { $: 'USD', '€': 'EUR', '£': 'GBP' };
const QUOTES: Readonly<Record<string, string>> = { '"': '"', '“': '”', '„': '“' };

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\u00a0';
}
function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/** "1,000.50" → 1000.5; undefined unless digits with optional thousands commas and one decimal point. */
export function readNumber(text: string): number | undefined {
  if (text === '' || !isDigit(text[0])) return undefined;
  let digits = '';
  let seenPoint = false;
  let groupLength = -1; // digits since the last comma; -1 before any comma
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] as string;
    if (isDigit(c)) {
      digits += c;
      if (groupLength >= 0 && !seenPoint) groupLength += 1;
    } else if (c === ',' && !seenPoint) {
      if (groupLength !== -1 && groupLength !== 3) return undefined;
      groupLength = 0;
    } else if (c === '.' && !seenPoint && isDigit(text[i + 1])) {
      if (groupLength !== -1 && groupLength !== 3) return undefined;
      seenPoint = true;
      digits += '.';
    } else {
      return undefined;
    }
  }
  if (groupLength !== -1 && !seenPoint && groupLength !== 3) return undefined;
  return Number(digits);
}

/** "09:00" → 540; undefined unless H:MM or HH:MM with a valid hour (0-24) and minute. */
export function readTime(text: string): number | undefined {
  const colon = text.indexOf(':');
  if (colon < 1 || colon > 2 || text.length !== colon + 3) return undefined;
  for (let i = 0; i < text.length; i += 1) if (i !== colon && !isDigit(text[i])) return undefined;
  const hours = Number(text.slice(0, colon));
  const minutes = Number(text.slice(colon + 1));
  if (hours > 24 || minutes > 59 || (hours === 24 && minutes !== 0)) return undefined;
  return hours * 60 + minutes;
}

function classify(text: string, column: number): Token {
  const base = { text, lower: text.toLowerCase(), column };
  const sign = CURRENCY_SIGNS[text[0] as string];
  if (sign !== undefined) {
    const value = readNumber(text.slice(1));
    if (value !== undefined) return { ...base, kind: 'money', value, currency: sign };
  }
  if (text.startsWith('/')) return { ...base, kind: 'path' };
  const dash = text.indexOf('-');
  if (dash > 0) {
    const from = readTime(text.slice(0, dash));
    const to = readTime(text.slice(dash + 1));
    if (from !== undefined && to !== undefined) return { ...base, kind: 'time-range', from, to };
  }
  const time = readTime(text);
  if (time !== undefined) return { ...base, kind: 'time', value: time };
  const value = readNumber(text);
  if (value !== undefined) return { ...base, kind: 'number', value };
  return { ...base, kind: 'word' };
}

/** Tokens of `sentence`, ending with an `end` token whose column is just past the last character. */
export function tokenizeRule(sentence: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sentence.length) {
    const c = sentence[i] as string;
    if (isSpace(c)) {
      i += 1;
      continue;
    }
    if (c === ',' || c === ';') {
      tokens.push({ kind: 'comma', text: c, lower: c, column: i + 1 });
      i += 1;
      continue;
    }
    const close = QUOTES[c];
    if (close !== undefined) {
      const end = sentence.indexOf(close, i + 1);
      if (end < 0) throw new TokenizeError('this quote is never closed', i + 1, c);
      const text = sentence.slice(i + 1, end);
      tokens.push({ kind: 'quoted', text, lower: text.toLowerCase(), column: i + 1 });
      i = end + 1;
      continue;
    }
    const start = i;
    while (i < sentence.length) {
      const d = sentence[i] as string;
      if (isSpace(d) || d === ';' || QUOTES[d] !== undefined) break;
      // A comma ends the chunk unless it groups thousands inside a number ("1,000").
      if (d === ',' && !(isDigit(sentence[i - 1]) && isDigit(sentence[i + 1]) && isDigit(sentence[i + 2]) && isDigit(sentence[i + 3]))) break;
      i += 1;
    }
    let text = sentence.slice(start, i);
    // A full stop (or colon, exclamation mark) closing the sentence is punctuation, not part of the word.
    while (text.length > 1 && (text.endsWith('.') || text.endsWith('!') || text.endsWith(':'))) text = text.slice(0, -1);
    tokens.push(classify(text, start + 1));
  }
  tokens.push({ kind: 'end', text: '', lower: '', column: sentence.trimEnd().length + 1 });
  return tokens;
}
