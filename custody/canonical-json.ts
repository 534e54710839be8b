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
import { isWellFormed } from '../cut-text';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };


function serializeString(value: string, path: Path): string {
  if (!isWellFormed(value)) throw new TypeError(`canonical JSON: string at ${pathText(path)} contains a lone surrogate (not well-formed Unicode)`);
  // ECMAScript's JSON.stringify escapes exactly as RFC 8785 §3.2.2.2 requires.
  return JSON.stringify(value);
}

function serializeNumber(value: number, path: Path): string {
  if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${String(value)} at ${pathText(path)} is not a JSON number`);
  // Number.prototype.toString is the JCS number format; JSON.stringify also maps -0 to "0".
  return JSON.stringify(value);
}

/**
 * Where the serialiser is: the objects it is inside (for cycles) and the member names or indexes
 * that led there. The path is only turned into text for an error, never on the way.
 */
interface Path {
  objects: Set<object>;
  steps: (string | number)[];
}

function pathText(path: Path): string {
  let text = '$';
  for (const step of path.steps) text += typeof step === 'number' ? `[${step}]` : `.${step}`;
  return text;
}

function serialize(value: unknown, path: Path): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return serializeNumber(value, path);
    case 'string':
      return serializeString(value, path);
    case 'object':
      break;
    default:
      throw new TypeError(`canonical JSON: ${typeof value} at ${pathText(path)} is not JSON`);
  }
  const object = value as object;
  const toJSON = (object as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return serialize((toJSON as () => unknown).call(object), path);
  if (path.objects.has(object)) throw new TypeError(`canonical JSON: cycle at ${pathText(path)}`);
  path.objects.add(object);
  try {
    if (Array.isArray(object)) {
      let text = '[';
      for (let index = 0; index < object.length; index += 1) {
        const item: unknown = object[index];
        path.steps.push(index);
        if (item === undefined) throw new TypeError(`canonical JSON: undefined at ${pathText(path)}`);
        text += index === 0 ? serialize(item, path) : `,${serialize(item, path)}`;
        path.steps.pop();
      }
      return `${text}]`;
    }
    const proto = Object.getPrototypeOf(object) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError(`canonical JSON: ${(object as { constructor?: { name?: string } }).constructor?.name ?? 'object'} at ${pathText(path)} is not a plain object`);
    }
    const record = object as Record<string, unknown>;
    // Default sort compares UTF-16 code units, as RFC 8785 §3.2.3 requires.
    const keys = Object.keys(record).sort();
    let text = '{';
    for (const key of keys) {
      const member = record[key];
      if (member === undefined) continue;
      const name = serializeString(key, path);
      path.steps.push(key);
      text += `${text.length === 1 ? '' : ','}${name}:${serialize(member, path)}`;
      path.steps.pop();
    }
    return `${text}}`;
  } finally {
    path.objects.delete(object);
  }
}

/** The canonical JSON text of `value`. @throws TypeError when `value` is not JSON. */
export function canonicalize(value: unknown): string {
  return serialize(value, { objects: new Set(), steps: [] });
}

/** The UTF-8 bytes of {@link canonicalize}. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}

/** Hex SHA-256 of the canonical JSON of `value`. */
export function canonicalSha256(value: unknown): string {
  return createHash('sha256').update(canonicalBytes(value)).digest('hex');
}
