/**
 * Text someone else wrote (a tool, a program, an MCP server or client, a model, a poller's
 * identity), shown in a line of Warden's terminal output: `warden run`'s step lines and summary,
 * pending approvals, claims, recovery, alerts, the worker's and `mcp serve`'s logs.
 *
 * Invariant: such text never controls the terminal or starts a line of its own. A line break
 * in it would print a line of the writer's choosing (a forged step, a forged "COMPLETED", a forged
 * log entry); an escape sequence can move the cursor, erase what Warden wrote, or recolour it; a
 * bidi override can show the line's text in another order (Trojan Source, CVE-2021-42574). So
 * every C0 control (U+0000-U+001F, tab and line feed included), DEL, every C1 control
 * (U+0080-U+009F: NEL, CSI, ...), the Unicode line and paragraph separators U+2028/U+2029 and every
 * Bidi_Control character (Unicode's PropList: the marks U+061C, U+200E, U+200F, the embeddings and
 * overrides U+202A-U+202E, the isolates U+2066-U+2069; a mark beside digits and punctuation can
 * reorder them too) are shown escaped as JSON writes them (`\n`, `\u001b`, `\u202e`): visible, on the one line. A backslash is left as
 * it is, so an escaped line escapes to itself and a message such as a Windows path stays
 * readable; a writer can print the six characters `\u001b`, never the control.
 *
 * Defense in depth, {@link terminalWriter}: every stream the CLI, a worker's log and the sandbox
 * host write to a terminal goes through it, and on a terminal (`isTTY`) every such character but
 * Warden's own line feed and tab is escaped the same way, so a view that forgot `terminalLine`
 * still prints no escape sequence (a forged line break in a field still needs `terminalLine`).
 * Piped output (JSON, JSONL, DSSE, canonical JSON someone hashes) is written byte for byte.
 *
 * JSON the CLI prints (`--json`, receipts, proofs) is serialised by {@link terminalJson}, which also
 * writes each such character JSON.stringify leaves raw in a string (DEL, C1, U+2028/9, bidi
 * controls) as a `\uXXXX` escape, so a piped `warden status --json | tee` carries none to a terminal
 * either, and the text parses to the same value.
 */

/** DEL, the C1 controls, the line and paragraph separators and every bidi control: what JSON.stringify leaves raw inside a string. */
const RAW_IN_JSON_CLASS = '\\u007f-\\u009f\\u2028\\u2029\\p{Bidi_Control}';

/** Every character {@link terminalLine} escapes: the C0 controls and {@link RAW_IN_JSON_CLASS}. */
const UNSAFE = new RegExp(`[\\u0000-\\u001f${RAW_IN_JSON_CLASS}]`, 'gu');

const SHORT: Readonly<Record<string, string>> = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

/** `text` for one line of a terminal: every control, line separator and bidi control escaped as JSON does (see the module comment). */
export function terminalLine(text: string): string {
  return text.replace(UNSAFE, escaped);
}

/** One character as JSON escapes it (a character beyond the BMP, none today, as its two UTF-16 units). */
function escaped(char: string): string {
  return SHORT[char] ?? unicodeEscape(char);
}

/** `char` as `\uXXXX` escapes, one per UTF-16 unit. */
function unicodeEscape(char: string): string {
  let text = '';
  for (let i = 0; i < char.length; i++) text += `\\u${char.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return text;
}

/** `text` of several lines (Warden's own line breaks, `\n`), each made safe by {@link terminalLine}. */
export function terminalLines(text: string): string {
  return text.split('\n').map(terminalLine).join('\n');
}

/** Every character {@link terminalText} escapes: those of {@link terminalLine} but line feed and tab, which Warden writes itself. */
const UNSAFE_BUT_LINES = new RegExp(`[\\u0000-\\u0008\\u000b-\\u001f${RAW_IN_JSON_CLASS}]`, 'gu');

/**
 * `text` (any number of lines) for a terminal: every character {@link terminalLine} escapes but
 * `\n` and `\t`, escaped the same way. Warden writes no other control itself (test/cli/tty-output.test.ts).
 * Within a JSON text the result is the same JSON value (the escapes are JSON's, and JSON.stringify
 * leaves only C1, U+2028/9 and bidi controls raw, inside strings).
 */
export function terminalText(text: string): string {
  return text.replace(UNSAFE_BUT_LINES, escaped);
}

/** Every character {@link terminalLine} escapes that JSON.stringify writes raw inside a string: DEL, C1, U+2028/9, bidi controls. */
const RAW_IN_JSON = new RegExp(`[${RAW_IN_JSON_CLASS}]`, 'gu');

/**
 * `value` as JSON text for output (`--json` views, receipts, proofs, exported histories), piped or
 * not: JSON.stringify's text (`indent` as its `space`) with every character {@link terminalLine}
 * escapes that JSON.stringify leaves raw (DEL, C1, U+2028/9, bidi controls, only ever inside
 * strings) written as a `\uXXXX` escape. JSON.stringify itself escapes C0 in strings and lone
 * surrogates (ES2019 well-formed JSON.stringify). So the text holds no character a terminal acts on
 * but the line feeds of `indent`, parses to the same value (RFC 8259 §7), and is byte for byte
 * JSON.stringify's where none of those characters occurs. Not for canonical JSON that is hashed
 * or signed (custody/canonical-json.ts), whose bytes are fixed by its spec.
 *
 * @throws TypeError when `value` has no JSON text (undefined, a function, a symbol), or as JSON.stringify does (a BigInt, a cycle).
 */
export function terminalJson(value: unknown, indent?: number): string {
  const text = JSON.stringify(value, null, indent) as string | undefined;
  if (text === undefined) throw new TypeError(`terminalJson: ${typeof value} has no JSON text`);
  return text.replace(RAW_IN_JSON, unicodeEscape);
}

/** A stream a terminal may be on: process.stdout, process.stderr. */
export interface OutputStream {
  write(text: string): unknown;
  /** True when the stream is a terminal (tty.WriteStream). */
  readonly isTTY?: boolean;
}

/**
 * A writer of text to `stream`: through {@link terminalText} when the stream is a terminal at the
 * time of the write (`isTTY`), else byte for byte, so piped output stays exactly what was written.
 */
export function terminalWriter(stream: OutputStream): (text: string) => void {
  return (text) => {
    stream.write(stream.isTTY === true ? terminalText(text) : text);
  };
}
