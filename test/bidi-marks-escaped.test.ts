/**
 * Regression (s12, was test/attacks/open/bidi-marks-pass-terminal-line.test.ts, low): `terminalLine` /
 * `terminalText` (terminal-text.ts) escaped the bidi embeddings, overrides and isolates
 * (U+202A-U+202E, U+2066-U+2069) but not the three bidi marks, U+200E LEFT-TO-RIGHT MARK, U+200F
 * RIGHT-TO-LEFT MARK and U+061C ARABIC LETTER MARK, which Unicode lists with them as Bidi_Control
 * (the `\p{Bidi_Control}` property, 12 characters). On a terminal that lays out bidirectional text
 * (Konsole by default, mlterm, VTE with bidi) a mark is a strong character of its direction: an RLM
 * beside digits and punctuation that a tool, model or file wrote can change the order they are
 * shown in, in a line Warden prints as its own (read from UAX #9, not tried on such a terminal).
 * Both escapes, and terminalJson, now build their character classes with `\p{Bidi_Control}`.
 *
 * Table: every Bidi_Control character, found from the property itself (so a new one is covered),
 * through both escapes and terminalJson; each must come out as `\uXXXX`. Failed for U+061C, U+200E,
 * U+200F on the old code.
 */
import { expect, it } from 'vitest';
import { terminalJson, terminalLine, terminalText } from '../terminal-text';

const BIDI_CONTROLS: string[] = [];
for (let code = 0; code < 0x110000; code += 1) {
  if (code >= 0xd800 && code <= 0xdfff) continue;
  const char = String.fromCodePoint(code);
  if (/\p{Bidi_Control}/u.test(char)) BIDI_CONTROLS.push(char);
}

it('finds the Bidi_Control characters (the table is not empty)', () => {
  expect(BIDI_CONTROLS.length).toBeGreaterThanOrEqual(12);
});

it.each(BIDI_CONTROLS.map((char) => [`U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`, char]))('%s is shown escaped, never raw', (_name, char) => {
  const escaped = `\\u${char.codePointAt(0)!.toString(16).padStart(4, '0')}`;
  expect(terminalLine(`amount 100 ${char}-> 5`)).toBe(`amount 100 ${escaped}-> 5`);
  expect(terminalText(`amount 100 ${char}-> 5\n`)).toBe(`amount 100 ${escaped}-> 5\n`);
  expect(terminalJson([`amount 100 ${char}-> 5`])).toBe(`["amount 100 ${escaped}-> 5"]`);
});
