/**
 * "Did you mean": the fields a schema allows at a place in a document, and the one nearest to a
 * mistyped key. A typo in a task file (`polcyPacks`) is refused like any unknown field; this
 * only makes the refusal say what was meant, at any nesting level.
 */
import type { z } from 'zod';

type AnySchema = z.core.$ZodType;

/** The literal values an object option of a discriminated union takes at `key` (`driver: scripted`). */
function literalsOf(option: AnySchema, key: string): unknown[] {
  const def = option._zod.def as unknown as { type: string; shape?: Record<string, AnySchema> };
  const field = def.type === 'object' ? def.shape?.[key] : undefined;
  const fieldDef = field?._zod.def as unknown as { type: string; values?: unknown[] } | undefined;
  return fieldDef?.type === 'literal' ? (fieldDef.values ?? []) : [];
}

/**
 * The schemas a value at `path` under `schema` may be checked against (several under unions;
 * under a discriminated union, the option the document's discriminator names). `value` is the
 * document's value at the same place, when known.
 */
function schemasAt(schema: AnySchema, path: readonly PropertyKey[], value?: unknown, depth = 0): AnySchema[] {
  if (depth > 64) return [];
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  const inner = (key: string) => def[key] as AnySchema;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return schemasAt(inner('innerType'), path, value, depth + 1);
    case 'pipe':
      return schemasAt(inner('in'), path, value, depth + 1);
    case 'lazy':
      return schemasAt((def.getter as () => AnySchema)(), path, value, depth + 1);
    case 'union': {
      let options = def.options as AnySchema[];
      const discriminator = def.discriminator as string | undefined;
      const given = typeof value === 'object' && value !== null && discriminator !== undefined ? (value as Record<string, unknown>)[discriminator] : undefined;
      const named = options.filter((option) => given !== undefined && literalsOf(option, discriminator!).includes(given));
      if (named.length > 0) options = named;
      return options.flatMap((option) => schemasAt(option, path, value, depth + 1));
    }
    case 'intersection':
      return [...schemasAt(inner('left'), path, value, depth + 1), ...schemasAt(inner('right'), path, value, depth + 1)];
    default:
      break;
  }
  if (path.length === 0) return [schema];
  const [head, ...rest] = path;
  const child = typeof value === 'object' && value !== null ? (value as Record<PropertyKey, unknown>)[head as PropertyKey] : undefined;
  if (def.type === 'object') {
    const field = (def.shape as Record<string, AnySchema>)[String(head)];
    return field === undefined ? [] : schemasAt(field, rest, child, depth + 1);
  }
  if (def.type === 'array') return schemasAt(inner('element'), rest, child, depth + 1);
  if (def.type === 'record') return schemasAt(inner('valueType'), rest, child, depth + 1);
  return [];
}

/** The field names an object at `path` under `schema` may have (all options' under a union, but the one a discriminator names). `document`: the whole document, to read discriminators from. */
export function fieldsAt(schema: AnySchema, path: readonly PropertyKey[], document?: unknown): string[] {
  const fields = new Set<string>();
  for (const at of schemasAt(schema, path, document)) {
    const def = at._zod.def as unknown as { type: string; shape?: Record<string, unknown> };
    if (def.type === 'object' && def.shape !== undefined) for (const key of Object.keys(def.shape)) fields.add(key);
  }
  return [...fields];
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) => Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= s.length; i += 1) {
    for (let j = 1; j <= t.length; j += 1) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[s.length]![t.length]!;
}

/** The known name nearest to `name` when it is close enough to be a typo (a third of its length, at least 1, at most `maxDistance` edits: 3 unless given). */
export function nearestName(name: string, known: readonly string[], maxDistance = 3): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (best === undefined || distance < best.distance) best = { name: candidate, distance };
  }
  const allowed = Math.min(maxDistance, Math.max(1, Math.floor(name.length / 3)));
  return best !== undefined && best.distance <= allowed ? best.name : undefined;
}

/**
 * The message for an unknown field `key` of the object at `path`: with the field it most likely
 * means, else the fields allowed there (fields Warden sets itself are not offered).
 */
export function unknownFieldMessage(schema: AnySchema, path: readonly PropertyKey[], key: string, hidden: readonly string[] = [], document?: unknown): string {
  const known = fieldsAt(schema, path, document).filter((f) => !hidden.includes(f));
  const guess = nearestName(key, known);
  if (guess !== undefined) return `unknown field "${key}"; did you mean "${guess}"?`;
  return known.length === 0 ? `unknown field "${key}"` : `unknown field "${key}" (the fields here are: ${known.join(', ')})`;
}
