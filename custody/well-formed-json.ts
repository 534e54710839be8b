/**
 * Makes a JSON value that came from outside Warden well-formed Unicode, keys included, before it
 * enters workflow history or custody: a model's turn (any driver), a tool's output (any executor),
 * an MCP client's arguments.
 *
 * Why: a JavaScript string may hold a lone UTF-16 surrogate (JSON "\ud800" parses to one; a
 * sandboxed tool can build one), and canonical JSON (RFC 8785 §3.2.2.2, custody/canonical-json.ts)
 * refuses it, so the custody span would carry no digest of the arguments or output: a call whose
 * data custody does not commit to. Each lone surrogate becomes U+FFFD, as
 * `String.prototype.toWellFormed` does; callers record how many strings were mended on the span
 * (`warden.*.mended`), so the record says the value was changed at entry.
 */
import { wellFormed } from './span-record';
import { isWellFormed } from '../cut-text';

/** A value made well-formed, and how many of its strings (values and keys) held a lone surrogate. */
export interface WellFormedJson<T> {
  value: T;
  /** 0 when `value` is the input itself, unchanged. */
  mended: number;
}


/**
 * `value` with every string and object key well-formed ({@link wellFormed}). Arrays and plain
 * objects are walked; anything else (numbers, class instances, cycles) is kept as is. Nothing is
 * copied when nothing is mended: the same reference comes back with `mended` 0. A mended key that
 * meets a key already present gets one more U+FFFD until it is unique, so no entry is lost.
 */
export function wellFormedJson<T>(value: T): WellFormedJson<T> {
  // The common case, nothing to mend, is found without allocating (every tool result and turn passes here).
  if (!holdsIllFormed(value, 0)) return { value, mended: 0 };
  const counter = { mended: 0 };
  const out = mend(value, counter, new Set());
  return { value: out as T, mended: counter.mended };
}

/** Deeper than this, the walk that copies decides (it stops at cycles). */
const MAX_CHECK_DEPTH = 256;

function holdsIllFormed(value: unknown, depth: number): boolean {
  if (typeof value === 'string') return !isWellFormed(value);
  if (typeof value !== 'object' || value === null) return false;
  if (depth > MAX_CHECK_DEPTH) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (holdsIllFormed(value[i], depth + 1)) return true;
    return false;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
    if (!isWellFormed(key) || holdsIllFormed((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

function mend(value: unknown, counter: { mended: number }, ancestors: Set<object>): unknown {
  if (typeof value === 'string') {
    if (isWellFormed(value)) return value;
    counter.mended += 1;
    return wellFormed(value);
  }
  if (typeof value !== 'object' || value === null || ancestors.has(value)) return value;
  if (Array.isArray(value)) {
    ancestors.add(value);
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const mended = mend(item, counter, ancestors);
      if (mended !== item) (copy ??= value.slice())[i] = mended;
    }
    ancestors.delete(value);
    return copy ?? value;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  ancestors.add(value);
  const entries = Object.entries(value as Record<string, unknown>);
  let changed = false;
  const mendedEntries = entries.map(([key, item]): [string, unknown] => {
    const goodKey = isWellFormed(key) ? key : (counter.mended++, wellFormed(key));
    const goodItem = mend(item, counter, ancestors);
    if (goodKey !== key || goodItem !== item) changed = true;
    return [goodKey, goodItem];
  });
  ancestors.delete(value);
  if (!changed) return value;
  const copy: Record<string, unknown> = proto === null ? Object.create(null) : {};
  // Keys that were already well-formed keep their names; a mended key yields to them.
  const taken = new Set(entries.map(([key]) => key).filter(isWellFormed));
  entries.forEach(([key], i) => {
    const goodItem = mendedEntries[i]![1];
    let goodKey = mendedEntries[i]![0];
    if (goodKey !== key) {
      while (taken.has(goodKey)) goodKey += '\ufffd';
      taken.add(goodKey);
    }
    // Defined, not assigned: a key "__proto__" (JSON.parse makes it an own key) stays a key.
    Object.defineProperty(copy, goodKey, { value: goodItem, enumerable: true, writable: true, configurable: true });
  });
  return copy;
}
