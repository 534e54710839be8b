/**
 * wellFormedJson (custody/well-formed-json.ts): every lone surrogate of a JSON value, in values and
 * keys at any depth, becomes U+FFFD as String.prototype.toWellFormed makes it; the result has a
 * canonical JSON digest; nothing is copied when nothing changes; no entry is lost to a mended key.
 */
import { describe, expect, it } from 'vitest';
import { canonicalSha256 } from '../../custody/canonical-json';
import { wellFormedJson } from '../../custody/well-formed-json';

const BAD: [string, string, string][] = [
  ['lone high', '\uD800', '\uFFFD'],
  ['lone low', '\uDC00', '\uFFFD'],
  ['reversed pair', '\uDC00\uD800', '\uFFFD\uFFFD'],
  ['high at the end of a pair-like run', '\uD83D\uDE00\uD83D', '\uD83D\uDE00\uFFFD'],
];

const PLACES: [string, (s: string) => unknown][] = [
  ['a bare string', (s) => s],
  ['at the start of a value', (s) => ({ a: `${s}x` })],
  ['at the end of a value', (s) => ({ a: `x${s}` })],
  ['inside nested objects and arrays', (s) => ({ a: { b: [1, { c: `x${s}y` }] } })],
  ['in a key', (s) => ({ [`k${s}`]: 1 })],
  ['in a nested key', (s) => ({ a: [{ [`${s}`]: null }] })],
];

describe('wellFormedJson', () => {
  for (const [badName, bad, good] of BAD) {
    for (const [placeName, place] of PLACES) {
      it(`mends a ${badName} ${placeName}`, () => {
        const input = place(bad);
        expect(() => canonicalSha256(input)).toThrow();
        const { value, mended } = wellFormedJson(input);
        expect(mended).toBe(1);
        expect(value).toEqual(place(good));
        expect(canonicalSha256(value)).toMatch(/^[0-9a-f]{64}$/);
      });
    }
  }

  it('returns a well-formed value itself, uncopied, with nothing mended', () => {
    const input = { a: [{ b: 'ok \uD83D\uDE00' }], n: 1, t: true, z: null };
    const { value, mended } = wellFormedJson(input);
    expect(value).toBe(input);
    expect(value.a).toBe(input.a);
    expect(mended).toBe(0);
  });

  it('copies only the changed path and leaves the input as it was', () => {
    const keep = { k: 'fine' };
    const input = { keep, bad: ['\uD800'] };
    const { value } = wellFormedJson(input);
    expect(value.keep).toBe(keep);
    expect(input.bad[0]).toBe('\uD800');
  });

  it('counts every mended string and key', () => {
    expect(wellFormedJson({ ['\uD800']: ['\uDC00', 'ok', { ['\uDFFF']: '\uD801' }] }).mended).toBe(4);
  });

  it('keeps both entries when a mended key meets one already present', () => {
    const { value } = wellFormedJson({ '\uD800': 1, '\uFFFD': 2 } as Record<string, number>);
    expect(value).toEqual({ '\uFFFD\uFFFD': 1, '\uFFFD': 2 });
  });

  it('keeps a "__proto__" key as a key', () => {
    const input = JSON.parse('{"__proto__": {"x": "\\ud800"}, "a": "\\udc00"}') as Record<string, unknown>;
    const { value } = wellFormedJson(input);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(['__proto__', 'a']);
    expect(JSON.stringify(value)).toBe('{"__proto__":{"x":"\uFFFD"},"a":"\uFFFD"}');
  });

  it('leaves class instances and cycles alone', () => {
    const date = new Date(0);
    const cyclic: Record<string, unknown> = { s: '\uD800' };
    cyclic.self = cyclic;
    const { value, mended } = wellFormedJson({ date, cyclic });
    expect(value.date).toBe(date);
    expect(mended).toBe(1);
    expect((value.cyclic as Record<string, unknown>).s).toBe('\uFFFD');
  });
});
