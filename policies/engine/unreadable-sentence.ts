/**
 * The error for a rule sentence the parser cannot read, policy rule or response rule alike: the
 * sentence, a caret under the word it stopped at, what it expected there, and the nearest known
 * forms (ERR_POLICY_UNREADABLE).
 */
import { PolicyParseError } from '../../errors';

/** `^^^` under columns `column`..`column + width - 1` (1-based), at least one caret. */
function caretLine(column: number, width: number): string {
  return `${' '.repeat(Math.max(0, column - 1))}${'^'.repeat(Math.max(1, width))}`;
}

/**
 * @param kind what the sentence was read as (`policy rule`, `response rule`), named in the message
 * @param column 1-based column of `word` in `sentence`; `word` is '' at the end of the sentence
 * @param source where the sentence was written (`policies/foundation/rules.txt:4`), if known
 * @param suggestions the nearest known forms, best first
 */
export function unreadableSentence(
  kind: string,
  at: { sentence: string; column: number; word: string; problem: string; expected: readonly string[]; source: string | undefined },
  suggestions: string[],
): PolicyParseError {
  const { sentence, column, word, problem, expected, source } = at;
  const where = source === undefined ? '' : ` (${source})`;
  const shown = word === '' ? 'the end of the rule' : `"${word}"`;
  const message = [
    `cannot read ${kind}${where}: "${sentence}"`,
    `  ${sentence}`,
    `  ${caretLine(column, word.length)}`,
    `column ${column}, at ${shown}: ${problem}`,
    'nearest known forms:',
    ...suggestions.map((s) => `  ${s}`),
  ].join('\n');
  return new PolicyParseError(message, { sentence, column, word, expected, suggestions, ...(source === undefined ? {} : { source }) });
}
