/**
 * Where a JSON text first breaks JSON's grammar (RFC 8259), for the messages Warden gives about a
 * user's JSON file (task files, JWKS, approver key files, histories, task results).
 *
 * Why not JSON.parse's own message: Node 20's V8 names a position for some errors only ("Unexpected
 * token 'a', "name: x\ngoal: do\n" is not valid JSON" has none, and quotes the file's text, line
 * breaks and all), and its wording differs between Node versions. This scanner follows the grammar
 * itself, so every problem is located at the character where the text stops being JSON: the first
 * character no JSON text could have there (`na` of a YAML `name:` breaks at the `a`, as `n` may
 * begin `null`), or the end of the text when it ends too early.
 *
 * This module imports nothing.
 */

/** The first place a text breaks JSON's grammar: its offset (UTF-16 units), 1-based line and column there, and what is wrong (one line). */
export interface JsonSyntaxProblem {
  offset: number;
  line: number;
  column: number;
  message: string;
}

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', ' ': ' ' };

/** A character as a message names it: `"a"`, or an escape for a control or invisible one (`"\n"`, `"\u00a0"`). */
function shown(c: string): string {
  if (NAMED[c] !== undefined) return `"${NAMED[c]}"`;
  if (c === '"') return `'"'`;
  return /^[\p{C}\p{Z}]$/u.test(c) ? `"\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}"` : `"${c}"`;
}

/** `offset`'s 1-based line and column in `text` (lines end at "\n"). */
function at(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line += 1;
    start = i + 1;
  }
  return { line, column: offset - start + 1 };
}

const WHITESPACE = ' \t\n\r';
const WORDS = ['true', 'false', 'null'];
const ESCAPES = '"\\/bfnrt';

/**
 * The first place `text` breaks JSON's grammar, or undefined when it is one JSON value (then
 * JSON.parse takes it). Iterative, so any nesting depth is scanned. Never throws.
 */
export function jsonSyntaxProblem(text: string): JsonSyntaxProblem | undefined {
  const problem = (offset: number, message: string): JsonSyntaxProblem => ({ offset, ...at(text, offset), message });
  // What is open around the scan: an object or array and where it opened.
  const open: Array<{ kind: '{' | '['; offset: number }> = [];
  let i = 0;
  const space = () => {
    while (i < text.length && WHITESPACE.includes(text[i]!)) i += 1;
  };
  const end = (expected: string): JsonSyntaxProblem => {
    const inner = open.at(-1);
    const where = inner === undefined ? '' : `; the ${inner.kind === '{' ? 'object' : 'array'} opened at line ${at(text, inner.offset).line}, column ${at(text, inner.offset).column} is not closed`;
    return problem(text.length, `the text ends where ${expected} should come${where}`);
  };
  const unexpected = (expected: string): JsonSyntaxProblem => (i >= text.length ? end(expected) : problem(i, `unexpected ${shown(text[i]!)} where ${expected} should come`));

  /** Scans one string from its opening quote at `i`; a problem, or undefined with `i` after it. */
  const string = (): JsonSyntaxProblem | undefined => {
    const opened = i;
    // Worked out for the problem reported only: at every string, it counted the lines from the
    // text's start, N^2 for N lines (a 2 MB history cut at its end took 109 s to name the place).
    const from = (): string => {
      const { line, column } = at(text, opened);
      return `the string opened at line ${line}, column ${column}`;
    };
    i += 1;
    for (;;) {
      if (i >= text.length) return problem(i, `${from()} is not closed before the text ends`);
      const c = text[i]!;
      if (c === '"') {
        i += 1;
        return undefined;
      }
      if (c < ' ') {
        return problem(i, c === '\n' || c === '\r' ? `${from()} is not closed on its line (a line break inside a JSON string is written \\n)` : `${shown(c)} inside ${from()} (a control character is written as an escape, such as \\u0000)`);
      }
      if (c === '\\') {
        const e = text[i + 1];
        if (e === undefined) return problem(i + 1, `${from()} is not closed before the text ends`);
        if (e === 'u') {
          const hex = text.slice(i + 2, i + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) return problem(i, `bad escape "\\u${hex.replace(/[^0-9a-fA-F].*$/s, '')}" in ${from()} (\\u takes four hexadecimal digits)`);
          i += 6;
          continue;
        }
        if (!ESCAPES.includes(e)) return problem(i, `bad escape "\\${e.length === 1 && e >= ' ' ? e : JSON.stringify(e).slice(1, -1)}" in ${from()} (JSON's escapes are \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX)`);
        i += 2;
        continue;
      }
      i += 1;
    }
  };

  /** Scans a number starting at `i`; a problem, or undefined with `i` after it. */
  const number = (): JsonSyntaxProblem | undefined => {
    const digits = (what: string): JsonSyntaxProblem | undefined => {
      if (!(text[i]! >= '0' && text[i]! <= '9')) return unexpected(what);
      while (text[i]! >= '0' && text[i]! <= '9') i += 1;
      return undefined;
    };
    if (text[i] === '-') i += 1;
    if (text[i] === '0') {
      i += 1;
      if (text[i]! >= '0' && text[i]! <= '9') return problem(i, `unexpected ${shown(text[i]!)} after a leading 0 (JSON numbers have no leading zeros)`);
    } else {
      const bad = digits('a digit');
      if (bad !== undefined) return bad;
    }
    if (text[i] === '.') {
      i += 1;
      const bad = digits('a digit after the decimal point');
      if (bad !== undefined) return bad;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i += 1;
      if (text[i] === '+' || text[i] === '-') i += 1;
      const bad = digits("a digit of the number's exponent");
      if (bad !== undefined) return bad;
    }
    return undefined;
  };

  /** Scans one value at `i` (after whitespace); objects and arrays only open here, the loop below continues them. */
  const value = (): JsonSyntaxProblem | undefined => {
    space();
    const c = text[i];
    if (c === undefined) return open.length === 0 ? problem(i, text.length === 0 ? 'the text is empty (no JSON value)' : 'the text holds only whitespace (no JSON value)') : end('a value');
    if (c === '{' || c === '[') {
      open.push({ kind: c, offset: i });
      i += 1;
      return undefined;
    }
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    const word = WORDS.find((w) => w[0] === c);
    if (word !== undefined) {
      for (let k = 1; k < word.length; k += 1) {
        if (text[i + k] !== word[k]) {
          if (i + k >= text.length) return problem(i + k, `the text ends inside "${text.slice(i)}" (expected ${word})`);
          const run = /^[\w$-]*/u.exec(text.slice(i))![0];
          return problem(i + k, `unexpected ${shown(text[i + k]!)} in ${run.length > 1 ? `the word "${run}"` : 'the text'} (JSON's only words are true, false and null; text is written in double quotes)`);
        }
      }
      i += word.length;
      return undefined;
    }
    if (c === '\ufeff' && i === 0) return problem(0, 'the text starts with a byte-order mark (U+FEFF), which JSON does not allow');
    const run = /^[\p{L}_$][\w$-]*/u.exec(text.slice(i))?.[0];
    if (run !== undefined) return problem(i, `unexpected ${shown(c)} in the word "${run}" (JSON's only words are true, false and null; text is written in double quotes)`);
    if (c === "'") return problem(i, `unexpected "'" where a value should come (JSON strings are in double quotes)`);
    return problem(i, `unexpected ${shown(c)} where a value should come`);
  };

  // What the grammar needs next, given what is open.
  let need: 'value' | 'first field' | 'field after comma' | 'first element' | 'element after comma' | 'after value' = 'value';
  for (;;) {
    if (need === 'value') {
      const depth = open.length;
      const bad = value();
      if (bad !== undefined) return bad;
      need = open.length > depth ? (open.at(-1)!.kind === '{' ? 'first field' : 'first element') : 'after value';
      continue;
    }
    space();
    const c = text[i];
    if (need === 'first field' && c === '}') need = 'after value';
    else if (need === 'first element' && c === ']') need = 'after value';
    else if (need === 'first element') {
      need = 'value';
      continue;
    } else if (need === 'element after comma') {
      if (c === ']') return problem(i, 'unexpected "]" after "," (JSON allows no comma after the last element)');
      need = 'value';
      continue;
    } else if (need === 'first field' || need === 'field after comma') {
      if (c === '}' && need === 'field after comma') return problem(i, 'unexpected "}" after "," (JSON allows no comma after the last field)');
      if (c !== '"') return unexpected('a field name in double quotes');
      const bad = string();
      if (bad !== undefined) return bad;
      space();
      if (text[i] !== ':') return unexpected('":" after the field name');
      i += 1;
      need = 'value';
      continue;
    } else {
      // After a value: the text's end, or what continues the object or array around it.
      const inner = open.at(-1);
      if (inner === undefined) return i < text.length ? problem(i, `unexpected ${shown(c!)} after the end of the JSON value`) : undefined;
      const close = inner.kind === '{' ? '}' : ']';
      if (c === ',') {
        i += 1;
        need = inner.kind === '{' ? 'field after comma' : 'element after comma';
        continue;
      }
      if (c !== close) return unexpected(`"," or "${close}"`);
    }
    // A "}" or "]" that closes what is open.
    i += 1;
    open.pop();
    need = 'after value';
  }
}

/**
 * Where `text`, which JSON.parse refused, breaks JSON: `line 3, column 5: unexpected ...` (one
 * line). `withMessage` false gives `line 3, column 5` only, for a file whose text must not be
 * quoted (a private key). Should the scan find no problem (it follows the same grammar), says so
 * without a place rather than guess one.
 */
export function jsonProblemText(text: string, withMessage = true): string {
  const problem = jsonSyntaxProblem(text);
  if (problem === undefined) return 'not JSON';
  return withMessage ? `line ${problem.line}, column ${problem.column}: ${problem.message}` : `line ${problem.line}, column ${problem.column}`;
}
