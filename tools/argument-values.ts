/**
 * Reading argument values by the references descriptors use: RFC 6901 JSON pointers where a `*`
 * segment stands for every element of an array or every value of an object.
 *
 * Pure: workflow code may import this file.
 */

/** RFC 6901 unescaping of one pointer segment. */
function unescapeSegment(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** RFC 6901 escaping of one pointer segment. */
export function escapeSegment(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Every value at `pointer` in `args`, with the concrete pointer it was found at (a `*` segment
 * expands to each element or own property). Missing paths yield nothing. Own properties only:
 * `/__proto__` or `/constructor` never read inherited values.
 */
export function entriesAt(args: unknown, pointer: string): { pointer: string; value: unknown }[] {
  if (pointer === '' || pointer === '/') return [{ pointer: '', value: args }];
  const segments = pointer.split('/').slice(1).map(unescapeSegment);
  let frontier: { pointer: string; value: unknown }[] = [{ pointer: '', value: args }];
  for (const segment of segments) {
    const next: { pointer: string; value: unknown }[] = [];
    for (const { pointer: at, value } of frontier) {
      if (value === null || typeof value !== 'object') continue;
      if (segment === '*') {
        const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
        for (const [key, child] of entries) next.push({ pointer: `${at}/${escapeSegment(key)}`, value: child });
      } else if (Array.isArray(value)) {
        if (/^(0|[1-9]\d*)$/.test(segment) && Number(segment) < value.length) next.push({ pointer: `${at}/${segment}`, value: value[Number(segment)] });
      } else if (Object.hasOwn(value, segment)) {
        next.push({ pointer: `${at}/${escapeSegment(segment)}`, value: (value as Record<string, unknown>)[segment] });
      }
    }
    frontier = next;
  }
  return frontier;
}

/** The values at `pointer` (see `entriesAt`). */
export function valuesAt(args: unknown, pointer: string): unknown[] {
  return entriesAt(args, pointer).map((e) => e.value);
}

/**
 * The string and number leaves under `pointer`, each with its concrete pointer: a value that is an
 * array or object contributes every leaf inside it (a recipients list, a nested payee).
 */
export function leavesAt(args: unknown, pointer: string): { pointer: string; value: string | number }[] {
  const out: { pointer: string; value: string | number }[] = [];
  const walk = (value: unknown, at: string, depth: number): void => {
    if (depth > 64) return;
    if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) out.push({ pointer: at, value });
    else if (Array.isArray(value)) value.forEach((v, i) => walk(v, `${at}/${i}`, depth + 1));
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, `${at}/${escapeSegment(k)}`, depth + 1);
  };
  for (const entry of entriesAt(args, pointer)) walk(entry.value, entry.pointer, 0);
  return out;
}
