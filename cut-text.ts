/**
 * Cutting text to a length without splitting a character: every place Warden shortens a string
 * (a reason, an output tail, an excerpt, a name) cuts through here.
 *
 * Why: JavaScript strings are UTF-16, and `s.slice(0, n)` counts code units, so a cut that falls
 * between the two halves of a surrogate pair (any emoji, any character outside the BMP) leaves a
 * lone surrogate that Warden made itself, after every entry point mended what came in
 * (custody/well-formed-json.ts). Canonical JSON refuses lone surrogates (RFC 8785 §3.2.2.2,
 * custody/canonical-json.ts), so such a cut made verdicts, receipts, MCP listings and custody
 * records fail; the agent chose where its characters fell, so it chose which record failed.
 *
 * Lengths are UTF-16 code units, as `String.prototype.length` counts them. A cut that would land
 * inside a pair backs off one unit, so the result is at most `max` units and at least `max - 1`
 * (or the whole text). Text that already holds a lone surrogate keeps it: mending is the entry
 * points' job (`wellFormedJson`), cutting never makes text worse. Pure: workflow code may call it.
 */

/** ES2024's `String.prototype.isWellFormed` (Node 20+; the project's lib is ES2022): false when `text` holds a lone surrogate. */
export const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();
/** ES2024's `String.prototype.toWellFormed` (Node 20+): `text` with each lone surrogate replaced by U+FFFD. */
export const toWellFormed = (text: string): string => (text as string & { toWellFormed(): string }).toWellFormed();

const isHigh = (unit: number): boolean => unit >= 0xd800 && unit <= 0xdbff;
const isLow = (unit: number): boolean => unit >= 0xdc00 && unit <= 0xdfff;

/** True when index `at` of `text` falls between the high and the low half of one surrogate pair. */
function insidePair(text: string, at: number): boolean {
  return at > 0 && at < text.length && isHigh(text.charCodeAt(at - 1)) && isLow(text.charCodeAt(at));
}

/**
 * `text.slice(start, end)` with both ends moved inward off any surrogate pair they would split:
 * a start inside a pair moves forward one unit, an end inside a pair moves back one. Indexes are
 * UTF-16 units, clamped to the text as `slice` clamps them (negative ones count from the end).
 */
export function sliceText(text: string, start: number, end: number = text.length): string {
  const length = text.length;
  let from = start < 0 ? Math.max(0, length + start) : Math.min(start, length);
  let to = end < 0 ? Math.max(0, length + end) : Math.min(end, length);
  if (insidePair(text, from)) from += 1;
  if (insidePair(text, to)) to -= 1;
  return to <= from ? '' : text.slice(from, to);
}

/**
 * The first at most `max` UTF-16 units of `text`, never ending on the high half of a pair
 * (`text` itself when it is not longer). `max` below 0 counts as 0.
 */
export function cutText(text: string, max: number): string {
  return text.length <= max ? text : sliceText(text, 0, Math.max(0, max));
}

/**
 * The last at most `max` UTF-16 units of `text` (an output's tail), never starting on the low
 * half of a pair (`text` itself when it is not longer). `max` below 0 counts as 0.
 */
export function textTail(text: string, max: number): string {
  return text.length <= max ? text : sliceText(text, text.length - Math.max(0, max));
}

/**
 * `text` cut to at most `max` units with `marker` (default `…`) appended when anything was cut;
 * the marker is counted in `max`. For one-line displays: reasons, summaries, excerpts.
 */
export function ellipsize(text: string, max: number, marker = '…'): string {
  return text.length <= max ? text : `${cutText(text, max - marker.length)}${marker}`;
}
