/**
 * Size and shape limits of a task file, checked before and after parsing so that no file, however
 * built, can exhaust the CLI's memory or stack: a file too large, bytes that are not UTF-8, a YAML
 * alias bomb, nesting deep enough to overflow a parser, or one huge field. Each limit breach is a
 * task-file issue (exit 2) naming where it is; nothing is started.
 *
 * Deliberately free of Node imports: the field limits are used by the task schema, which workflow
 * code imports.
 */

import { isWellFormed, toWellFormed } from '../cut-text';

/** Largest task file read, in bytes (checked before reading the whole file). */
export const MAX_TASK_FILE_BYTES = 1024 * 1024;
/** Deepest nesting of objects and arrays, counted from the document (the task is level 1). */
export const MAX_TASK_NESTING = 64;
/** YAML aliases (`*name`) a document may expand, counting nested expansions (the `yaml` package's `maxAliasCount`). */
export const MAX_YAML_ALIASES = 50;
/** Longest string anywhere in a task file, in UTF-16 code units, unless its field has a tighter limit below. */
export const MAX_TASK_STRING_CHARS = 256 * 1024;
/** Most entries in one array or keys in one object anywhere in a task file. */
export const MAX_TASK_COLLECTION_ENTRIES = 10_000;
/** Total size of all strings and keys after aliases are expanded, in UTF-16 code units. */
export const MAX_TASK_EXPANDED_CHARS = 4 * 1024 * 1024;

/**
 * Longest duration a task file may give (deadline, timeouts): 30 days. Warden's own timers wait
 * that long in steps (long-timer.ts: a bare Node timer holds at most 2^31 - 1 ms, 24.855 days).
 */
export const MAX_DURATION_MS = 30 * 86_400_000;
/**
 * Longest timeout of one request to a model or an MCP server's `timeout`: 24 days. The provider
 * SDKs and the MCP SDK arm one `setTimeout` from it, which holds at most 2^31 - 1 ms.
 */
export const MAX_LIBRARY_TIMEOUT_MS = 24 * 86_400_000;

/** Per-field limits (characters or entries), enforced by the task schema. */
export const TASK_FIELD_LIMITS = {
  /** `user`: an email address is at most 320 characters (RFC 3696 erratum 1690). */
  user: 320,
  /** `intent` of the task, of a sub-agent and of a spawn. */
  intent: 16 * 1024,
  /** `agent.instructions`. */
  instructions: 64 * 1024,
  /** `tools.custom[].description`. */
  toolDescription: 4 * 1024,
  /** `tools.custom[].source`. */
  toolSource: 256 * 1024,
  /** One rule sentence in `policies`. */
  policySentence: 2 * 1024,
  /** Sentences in one `policies` list, packs in `policyPacks`. */
  policies: 500,
  /** Actions in a scripted model's `script`. */
  scriptActions: 10_000,
  /** A scripted `final` answer. */
  finalAnswer: 64 * 1024,
  /** One claim, and claims per final answer. */
  claim: 4 * 1024,
  claims: 100,
  /** Custom tools declared by one agent. */
  customTools: 200,
  /** Entries in each grants list and in `resources.hosts`. */
  grantEntries: 1_000,
  /** A name, path, host or other short string (tool names, hosts, database paths, model ids). */
  shortText: 4 * 1024,
} as const;

/** One limit breach, with the dotted field path (empty for the whole file). */
export interface LimitIssue {
  path: string;
  message: string;
}

/** Line and column (1-based) of a byte or character offset in `text`. */
export function lineColumnOf(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i += 1) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/**
 * Byte offset of the first byte that is not part of a well-formed UTF-8 sequence (RFC 3629 §4:
 * no overlong forms, no surrogates, nothing above U+10FFFF), or -1 when `bytes` is UTF-8.
 */
export function firstInvalidUtf8Offset(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i]!;
    if (b0 < 0x80) {
      i += 1;
      continue;
    }
    let length: number;
    let min: number;
    let max: number;
    if (b0 >= 0xc2 && b0 <= 0xdf) [length, min, max] = [2, 0x80, 0xbf];
    else if (b0 === 0xe0) [length, min, max] = [3, 0xa0, 0xbf];
    else if (b0 === 0xed) [length, min, max] = [3, 0x80, 0x9f];
    else if (b0 >= 0xe1 && b0 <= 0xef) [length, min, max] = [3, 0x80, 0xbf];
    else if (b0 === 0xf0) [length, min, max] = [4, 0x90, 0xbf];
    else if (b0 >= 0xf1 && b0 <= 0xf3) [length, min, max] = [4, 0x80, 0xbf];
    else if (b0 === 0xf4) [length, min, max] = [4, 0x80, 0x8f];
    else return i;
    // The second byte has the tighter range (it rules out overlongs, surrogates and > U+10FFFF).
    const b1 = bytes[i + 1];
    if (b1 === undefined || b1 < min || b1 > max) return i;
    for (let k = 2; k < length; k += 1) {
      const b = bytes[i + k];
      if (b === undefined || b < 0x80 || b > 0xbf) return i;
    }
    i += length;
  }
  return -1;
}

/**
 * Deepest bracket nesting (`[`/`{` against `]`/`}`) in the raw text, counting every bracket,
 * also inside strings: an over-estimate, so a document it passes cannot nest deeper than that in
 * flow style. Block-style nesting needs indentation, which the file size bounds. Returns the offset
 * where the depth first exceeds `limit`, or -1.
 */
export function bracketDepthExceeded(text: string, limit: number): number {
  let depth = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > limit) return i;
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) {
      depth -= 1;
    }
  }
  return -1;
}

function pathText(path: readonly (string | number)[]): string {
  return path.map(String).join('.');
}


/**
 * Why a task file's text holds something that is not a Unicode character: a lone UTF-16
 * surrogate, which JSON (`"\ud800"`) and YAML (`"\uD800"`) escapes can write though UTF-8 bytes
 * cannot. Such a string has no canonical JSON (RFC 8785 §3.2.2.2), so the task's intent and
 * handoff digests could not commit to it: the file is refused rather than mended.
 */
const LONE_SURROGATE = 'holds a lone UTF-16 surrogate (an escape such as "\\ud800" with no pair): a task file holds only Unicode characters';

/**
 * Walks a parsed document without recursion and reports the first breach of the nesting, string,
 * collection and total-size limits (one issue: past a breach the rest is not worth reading).
 */
export function checkDocumentLimits(document: unknown): LimitIssue | undefined {
  let total = 0;
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: document, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (typeof value === 'string') {
      if (value.length > MAX_TASK_STRING_CHARS) {
        return { path: pathText(path), message: `a string of ${value.length} characters, more than the limit of ${MAX_TASK_STRING_CHARS}` };
      }
      if (!isWellFormed(value)) return { path: pathText(path), message: `the text ${LONE_SURROGATE}` };
      total += value.length;
    } else if (typeof value === 'object' && value !== null) {
      if (path.length + 1 > MAX_TASK_NESTING) {
        return { path: pathText(path), message: `nested more than ${MAX_TASK_NESTING} levels deep` };
      }
      const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
      if (entries.length > MAX_TASK_COLLECTION_ENTRIES) {
        return { path: pathText(path), message: `${entries.length} entries, more than the limit of ${MAX_TASK_COLLECTION_ENTRIES}` };
      }
      for (const [key, child] of entries) {
        if (typeof key === 'string' && !isWellFormed(key)) return { path: pathText([...path, toWellFormed(key)]), message: `the key ${LONE_SURROGATE}` };
        // Parsers keep `__proto__` as an own key, but every object built from it by assignment (a
        // schema's record, a spread) takes it as the prototype and drops the entry unseen.
        if (key === '__proto__') return { path: pathText([...path, key]), message: 'a key named "__proto__" is not allowed: JavaScript objects built from the file would take it as their prototype and lose the entry' };
        if (typeof key === 'string') total += key.length;
        stack.push({ value: child, path: [...path, key] });
      }
    }
    if (total > MAX_TASK_EXPANDED_CHARS) {
      return { path: '', message: `more than ${MAX_TASK_EXPANDED_CHARS} characters of text once aliases are expanded` };
    }
  }
  return undefined;
}
