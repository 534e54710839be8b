import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalize, canonicalSha256 } from '../../custody/canonical-json';

describe('canonical JSON (RFC 8785)', () => {
  it('serialises the RFC 8785 §3.2.2 example exactly', () => {
    // The RFC's input, written as the values JSON.parse gives for it.
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", "literals": [null, true, false]}',
    ) as unknown;
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it('sorts members by UTF-16 code units (RFC 8785 §3.2.3 example)', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const keys = Object.keys(JSON.parse(canonicalize(input)) as object);
    // Integer-like keys come first in JS objects, so check the text order instead.
    const text = canonicalize(input);
    const order = ['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33'].map((k) => text.indexOf(JSON.stringify(k)));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(keys).toHaveLength(7);
  });

  // RFC 8785 Appendix B: IEEE 754 bit patterns and their canonical text.
  const NUMBERS: [string, string][] = [
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ];
  it.each(NUMBERS)('formats the double 0x%s as %s', (bits, text) => {
    expect(canonicalize(Buffer.from(bits, 'hex').readDoubleBE(0))).toBe(text);
  });

  it.each([
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
  ])('rejects %s', (_name, value) => {
    expect(() => canonicalize({ value })).toThrow(TypeError);
  });

  it('escapes control characters as JCS requires and leaves the rest literal', () => {
    expect(canonicalize('\u0000\u0008\u0009\u000a\u000c\u000d\u001f"\\/\u007f\u2028é')).toBe('"\\u0000\\b\\t\\n\\f\\r\\u001f\\"\\\\/\u007f\u2028é"');
  });

  it('rejects lone surrogates, in values and in member names', () => {
    expect(() => canonicalize('\ud800')).toThrow(TypeError);
    expect(() => canonicalize({ '\udc00x': 1 })).toThrow(TypeError);
    expect(canonicalize('\ud83d\ude00')).toBe('"\ud83d\ude00"');
  });

  it('nests, keeps array order, drops undefined members and has no whitespace', () => {
    expect(canonicalize({ b: [3, { z: 1, a: [] }, 'x'], a: { d: undefined, c: null }, ' ': true })).toBe('{" ":true,"a":{"c":null},"b":[3,{"a":[],"z":1},"x"]}');
  });

  it('rejects what is not JSON: bigint, functions, symbols, undefined in arrays, class instances, cycles', () => {
    expect(() => canonicalize(1n)).toThrow(TypeError);
    expect(() => canonicalize({ f: () => 1 })).toThrow(TypeError);
    expect(() => canonicalize(Symbol('s'))).toThrow(TypeError);
    expect(() => canonicalize([undefined])).toThrow(TypeError);
    expect(() => canonicalize(new Map())).toThrow(TypeError);
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => canonicalize(cycle)).toThrow(/cycle/);
  });

  it('uses toJSON (dates) like JSON.stringify, and allows the same object twice when it is not a cycle', () => {
    const shared = { k: 1 };
    expect(canonicalize({ when: new Date(0), a: shared, b: shared })).toBe('{"a":{"k":1},"b":{"k":1},"when":"1970-01-01T00:00:00.000Z"}');
  });

  it('hashes equal values equally, whatever their member order', () => {
    expect(canonicalSha256({ a: 1, b: [1, 2] })).toBe(canonicalSha256({ b: [1, 2], a: 1 }));
    expect(canonicalSha256({})).toBe(createHash('sha256').update('{}').digest('hex'));
  });
});

/** The serialiser as first written (array joins, a regex for lone surrogates): the faster one must give the same text. */
function referenceCanonicalize(value: unknown): string {
  const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
  const str = (s: string) => {
    if (lone.test(s)) throw new TypeError('lone surrogate');
    return JSON.stringify(s);
  };
  const walk = (v: unknown, stack: Set<object>): string => {
    if (v === null) return 'null';
    if (typeof v === 'boolean') return v ? 'true' : 'false';
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new TypeError('number');
      return JSON.stringify(v);
    }
    if (typeof v === 'string') return str(v);
    if (typeof v !== 'object') throw new TypeError('not JSON');
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return walk((toJSON as () => unknown).call(v), stack);
    if (stack.has(v)) throw new TypeError('cycle');
    stack.add(v);
    try {
      if (Array.isArray(v)) {
        return `[${v.map((item: unknown) => {
          if (item === undefined) throw new TypeError('undefined');
          return walk(item, stack);
        }).join(',')}]`;
      }
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) throw new TypeError('class');
      const record = v as Record<string, unknown>;
      return `{${Object.keys(record)
        .sort()
        .filter((k) => record[k] !== undefined)
        .map((k) => `${str(k)}:${walk(record[k], stack)}`)
        .join(',')}}`;
    } finally {
      stack.delete(v);
    }
  };
  return walk(value, new Set());
}

describe('canonical JSON against the reference serialiser', () => {
  const outcome = (f: () => string): string => {
    try {
      return `ok ${f()}`;
    } catch (error) {
      return error instanceof TypeError ? 'TypeError' : `other ${String(error)}`;
    }
  };
  const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('\ud800', '\udc00', 'a', '\ud83d\ude00', '"', '\\', '\u2028', '\u0000') }));
  const leaf = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    fc.constantFrom(-0, 1e21, 1e-7, 5e-324, Number.MAX_VALUE, Number.NaN, Number.POSITIVE_INFINITY),
    text,
    fc.constant(undefined),
    fc.constant(new Date(0)),
  );
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node')), fc.dictionary(text, tie('node')), fc.dictionary(fc.string({ maxLength: 2 }), tie('node'))),
  })).node;

  it('gives the same text, or the same refusal, for any value', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(outcome(() => canonicalize(v))).toBe(outcome(() => referenceCanonicalize(v)));
      }),
      { numRuns: 1000 },
    );
  });

  it('names where the bad value is in its refusal', () => {
    expect(() => canonicalize({ a: [1, { b: Number.NaN }] })).toThrow('at $.a[1].b');
    expect(() => canonicalize({ a: ['ok', '\ud800'] })).toThrow('at $.a[1]');
    expect(() => canonicalize([{ x: undefined }, undefined])).toThrow('undefined at $[1]');
    const cycle: Record<string, unknown> = {};
    cycle.self = { again: cycle };
    expect(() => canonicalize(cycle)).toThrow('cycle at $.self.again');
  });
});
