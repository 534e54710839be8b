/**
 * Canonical JSON after RFC 8785 (JCS): object members sorted by the UTF-16 code units of their
 * names, no whitespace, strings escaped as ECMAScript's JSON.stringify does, numbers in the
 * ECMAScript Number-to-String form (which is what JCS specifies).
 *
 * Invariant: two values that mean the same JSON hash to the same bytes, and nothing that is not
 * JSON (NaN, Infinity, lone surrogates, bigints, functions, cycles, class instances) is silently
 * turned into something that would hash: those throw `TypeError` (misuse of the API).
 * `undefined` object members are left out, as JSON.stringify does, so optional fields of
 * TypeScript objects canonicalise the same whether absent or undefined.
 */
import { createHash } from 'node:crypto';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function serializeString(value: string): string {
  if (LONE_SURROGATE.test(value)) throw new TypeError('canonical JSON: string contains a lone surrogate (not well-formed Unicode)');
  // ECMAScript's JSON.stringify escapes exactly as RFC 8785 §3.2.2.2 requires.
  return JSON.stringify(value);
}

function serializeNumber(value: number): string {
  if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${String(value)} is not a JSON number`);
  // Number.prototype.toString is the JCS number format; JSON.stringify also maps -0 to "0".
  return JSON.stringify(value);
}

function serialize(value: unknown, stack: Set<object>, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return serializeNumber(value);
    case 'string':
      return serializeString(value);
    case 'object':
      break;
    default:
      throw new TypeError(`canonical JSON: ${typeof value} at ${path} is not JSON`);
  }
  const object = value as object;
  const toJSON = (object as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return serialize((toJSON as () => unknown).call(object), stack, path);
  if (stack.has(object)) throw new TypeError(`canonical JSON: cycle at ${path}`);
  stack.add(object);
  try {
    if (Array.isArray(object)) {
      const items = object.map((item: unknown, index) => {
        if (item === undefined) throw new TypeError(`canonical JSON: undefined at ${path}[${index}]`);
        return serialize(item, stack, `${path}[${index}]`);
      });
      return `[${items.join(',')}]`;
    }
    const proto = Object.getPrototypeOf(object) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`canonical JSON: ${(object as { constructor?: { name?: string } }).constructor?.name ?? 'object'} at ${path} is not a plain object`);
    }
    const record = object as Record<string, unknown>;
    // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
    const keys = Object.keys(record).sort();
    const members: string[] = [];
    for (const key of keys) {
      const member = record[key];
      if (member === undefined) continue;
      members.push(`${serializeString(key)}:${serialize(member, stack, `${path}.${key}`)}`);
    }
    return `{${members.join(',')}}`;
  } finally {
    stack.delete(object);
  }
}

/** The canonical JSON text of `value`. @throws TypeError when `value` is not JSON. */
export function canonicalize(value: unknown): string {
  return serialize(value, new Set(), '$');
}

/** The UTF-8 bytes of {@link canonicalize}. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

/** Hex SHA-256 of the canonical JSON of `value`. */
export function canonicalSha256(value: unknown): string {
  return createHash('sha256').update(canonicalBytes(value)).digest('hex');
}
