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
 * (U+0080-U+009F: NEL, CSI, ...), the Unicode line and paragraph separators U+2028/U+2029 and the
 * bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are shown escaped as
 * JSON writes them (`\n`, `\u001b`, `\u202e`): visible, on the one line. A backslash is left as
 * it is, so an escaped line escapes to itself and a message such as a Windows path stays
 * readable; a writer can print the six characters `\u001b`, never the control.
 */

/** Every character {@link terminalLine} escapes. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const SHORT: Readonly<Record<string, string>> = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

/** `text` for one line of a terminal: every control, line separator and bidi control escaped as JSON does (see the module comment). */
export function terminalLine(text: string): string {
  return text.replace(UNSAFE, (char) => SHORT[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `text` of several lines (Warden's own line breaks, `\n`), each made safe by {@link terminalLine}. */
export function terminalLines(text: string): string {
  return text.split('\n').map(terminalLine).join('\n');
}
