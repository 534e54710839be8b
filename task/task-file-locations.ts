/**
 * Where a field of a task file is written: line, column and the line itself, so that every
 * problem the loader reports can be printed as `file:line:column` with the offending line under
 * it, as compilers do. YAML and JSON files alike (JSON is read as YAML 1.2 for locating only).
 */
import type { Node } from 'yaml';
import { yamlPackage } from './yaml-package';
import type { TaskFileIssue } from '../errors';
import { sliceText } from '../cut-text';

/** A place in the file (1-based) and the text of its line. */
export interface TaskFileLocation {
  line: number;
  column: number;
  excerpt: string;
}

/** Finds fields of one task file's text: by path segments (`['agent', 'model']`) or dotted path. */
export interface TaskFileLocator {
  /** Where the field at `path` is written, or its nearest written ancestor; undefined when none is (or the path is empty). */
  locate(path: string | readonly PropertyKey[]): TaskFileLocation | undefined;
  /** The location of a character offset in the text. */
  at(offset: number): TaskFileLocation;
}

/** Longest excerpt printed: a long line is cut to a window around the column. */
const MAX_EXCERPT_CHARS = 160;

function excerptOf(lineText: string, column: number): { excerpt: string; column: number } {
  const text = lineText.replace(/\r$/, '');
  if (text.length <= MAX_EXCERPT_CHARS) return { excerpt: text, column };
  const start = Math.max(0, Math.min(column - 1 - MAX_EXCERPT_CHARS / 2, text.length - MAX_EXCERPT_CHARS));
  // Whole characters only (a cut inside a pair moves in by one unit), so the column counts from where the excerpt really starts.
  const shown = sliceText(text, start, start + MAX_EXCERPT_CHARS);
  const from = text.startsWith(shown, start) ? start : start + 1;
  return { excerpt: `…${shown}…`, column: column - from + 1 };
}

/** A locator over `text`. Never throws: text the YAML parser cannot read locates nothing. */
export function taskFileLocator(text: string): TaskFileLocator {
  const { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument } = yamlPackage();
  const lineCounter = new LineCounter();
  let root: unknown;
  try {
    root = parseDocument(text, { lineCounter, uniqueKeys: false }).contents;
  } catch {
    root = undefined;
  }
  const lines = text.split('\n');
  const at = (offset: number): TaskFileLocation => {
    const { line, col } = lineCounter.linePos(Math.max(0, Math.min(offset, text.length)));
    const { excerpt, column } = excerptOf(lines[line - 1] ?? '', col);
    return { line, column, excerpt };
  };
  const locate = (path: string | readonly PropertyKey[]): TaskFileLocation | undefined => {
    const segments = typeof path === 'string' ? (path === '' ? [] : path.split('.')) : path.map(String);
    let node: unknown = root;
    // The key of the last field matched: a field is shown at its key, an array item at itself.
    let shown: Node | undefined;
    let i = 0;
    while (i < segments.length) {
      if (isMap(node)) {
        const map = node;
        // Keys may hold dots (hosts under resources.secrets): try the longest key first.
        let matched = false;
        for (let k = segments.length; k > i && !matched; k -= 1) {
          const key = segments.slice(i, k).join('.');
          const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === key);
          if (pair !== undefined) {
            shown = (pair.key as Node | null) ?? shown;
            node = pair.value;
            i = k;
            matched = true;
          }
        }
        if (!matched) break;
      } else if (isSeq(node)) {
        const item = node.items[Number(segments[i])];
        if (item === undefined || item === null) break;
        shown = item as Node;
        node = item;
        i += 1;
      } else {
        break;
      }
    }
    // Nothing of the path is written (a default, or the whole document): no place to show.
    const offset = shown?.range?.[0];
    return offset === undefined ? undefined : at(offset);
  };
  return { locate, at };
}

/** `issue` with the location of its field, unless it already has one or none is found. */
export function locatedIssue(issue: TaskFileIssue, locator: TaskFileLocator | undefined, path: string | readonly PropertyKey[] = issue.path): TaskFileIssue {
  if (locator === undefined || issue.line !== undefined) return issue;
  const where = locator.locate(path);
  return where === undefined ? issue : { ...issue, ...where };
}
