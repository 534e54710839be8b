/**
 * `stableJson` (recovery/call-key.ts) gives exactly the text it always gave: call keys and the
 * policy precheck digest are recomputed from it when recorded histories replay. Held to the form
 * first written (reference-stable-json.ts) over arbitrary values: JSON of every kind, members
 * left undefined, holes and undefined in arrays, keys in any order and of any text (integer-like,
 * non-ASCII, lone surrogates, `__proto__`), numbers JSON has no form for, and values that are not
 * JSON at all (functions, dates, maps, class instances).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { callDigestOf, stableJson } from '../../recovery/call-key';
import { referenceStableJson } from './reference-stable-json';

const key = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('__proto__', '0', '1', '10', '2', '-1', '01', 'constructor', '', 'a', 'A', 'é', '\ud800'));
const leaf = fc.oneof(
  fc.jsonValue(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(undefined, null, -0, NaN, Infinity, -Infinity, 1e21, 5e-324, () => 1, Symbol('s'), new Date(0), new Map([[1, 2]]), new (class Point { x = 1; })()),
);
const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small' }, leaf, tie('array'), tie('object')),
  array: fc.oneof(fc.array(tie('node')), fc.sparseArray(tie('node'))),
  object: fc.dictionary(key, tie('node')),
})).node;

describe('stableJson', () => {
  it('gives the reference text for any value', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(stableJson(v)).toBe(referenceStableJson(v));
      }),
      { numRuns: 3_000 },
    );
  });

  it('gives the reference text for JSON parsed from text (own __proto__ members included)', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const parsed: unknown = JSON.parse(text);
        expect(stableJson(parsed)).toBe(referenceStableJson(parsed));
      }),
      { numRuns: 1_000 },
    );
    const own = JSON.parse('{"__proto__":{"b":1},"a":[1,{"z":null,"y":"é"}]}') as unknown;
    expect(stableJson(own)).toBe('{"__proto__":{"b":1},"a":[1,{"y":"é","z":null}]}');
  });

  it.each<[string, unknown, string]>([
    ['members sorted by UTF-16 code units', { b: 1, a: 2, B: 3, '10': 4, '9': 5, é: 6 }, '{"10":4,"9":5,"B":3,"a":2,"b":1,"é":6}'],
    ['undefined members left out, undefined items null', { a: undefined, b: [undefined, 1] }, '{"b":[null,1]}'],
    ['numbers JSON has no form for are null', [NaN, Infinity, -0], '[null,null,0]'],
    ['no toJSON', { at: new Date(0) }, '{"at":{}}'],
    ['functions and symbols are null', { f: () => 1, s: Symbol('s') }, '{"f":null,"s":null}'],
    ['top-level undefined is null', undefined, 'null'],
    ['empty containers', { a: {}, b: [] }, '{"a":{},"b":[]}'],
    // eslint-disable-next-line no-sparse-arrays
    ['holes are empty text (never in decoded JSON)', [, 1, , undefined], '[,1,,null]'],
  ])('%s', (_what, input, text) => {
    expect(stableJson(input)).toBe(text);
    expect(referenceStableJson(input)).toBe(text);
  });

  it('gives the call digest a committed history recorded (test/history-files/history-flow1-inventory.json, step 0)', () => {
    // Recomputed on replay: a different text here would fail that history's replay.
    const args = { sql: 'SELECT sku, name, quantity FROM items WHERE quantity < ? ORDER BY quantity', params: [10], database: 'inventory' };
    expect(callDigestOf('sql.query', args)).toBe('68cd08fe291e7bf17e53bd89414d9082');
  });
});
