/**
 * cut-text.ts: Warden cuts text to at most N UTF-16 units and never between the halves of a
 * surrogate pair, so a cut never makes a lone surrogate (which canonical JSON refuses, RFC 8785
 * §3.2.2.2). Property tests over any string (pairs, lone halves, ASCII, BMP) and any N; then the
 * boundary cases one by one.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cutText, ellipsize, sliceText, textTail } from '../cut-text';

const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();

/** Strings of pairs, lone high and low halves, ASCII and other BMP characters, in any mix. */
const unit = fc.oneof(
  fc.constantFrom('\u{1F600}', '\u{10000}', '\u{10FFFF}', '\u{1F468}\u200D\u{1F469}'),
  fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
  fc.string({ maxLength: 3 }),
  fc.integer({ min: 0x80, max: 0xd7ff }).map((c) => String.fromCharCode(c)),
);
const anyText = fc.array(unit, { maxLength: 40 }).map((parts) => parts.join(''));
const wellFormedText = anyText.map((t) => (t as string & { toWellFormed(): string }).toWellFormed());
const anyMax = fc.integer({ min: -3, max: 90 });

describe('cutText', () => {
  it('is a prefix of at most max units, at least max - 1, well-formed whenever the input is', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, wellFormedText), anyMax, (text, max) => {
        const cut = cutText(text, max);
        expect(text.startsWith(cut)).toBe(true);
        const bound = Math.max(0, max);
        if (text.length <= bound) expect(cut).toBe(text);
        else {
          expect(cut.length).toBeLessThanOrEqual(bound);
          expect(cut.length).toBeGreaterThanOrEqual(bound - 1);
        }
        if (isWellFormed(text)) expect(isWellFormed(cut)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('backs off one unit only when the cut falls inside a pair', () => {
    expect(cutText('ab\u{1F600}c', 3)).toBe('ab');
    expect(cutText('ab\u{1F600}c', 4)).toBe('ab\u{1F600}');
    expect(cutText('ab\u{1F600}c', 2)).toBe('ab');
    expect(cutText('\u{1F600}', 1)).toBe('');
    expect(cutText('abc', 0)).toBe('');
    expect(cutText('abc', -1)).toBe('');
    // A lone half is kept as it was (mending is the entry points' job), never split further.
    expect(cutText('a\ud800b', 2)).toBe('a\ud800');
  });
});

describe('textTail', () => {
  it('is a suffix of at most max units, at least max - 1, well-formed whenever the input is', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, wellFormedText), anyMax, (text, max) => {
        const tail = textTail(text, max);
        expect(text.endsWith(tail)).toBe(true);
        const bound = Math.max(0, max);
        if (text.length <= bound) expect(tail).toBe(text);
        else {
          expect(tail.length).toBeLessThanOrEqual(bound);
          expect(tail.length).toBeGreaterThanOrEqual(bound - 1);
        }
        if (isWellFormed(text)) expect(isWellFormed(tail)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('drops the low half of a pair the cut splits, and nothing else', () => {
    expect(textTail('a\u{1F600}bc', 3)).toBe('bc');
    expect(textTail('a\u{1F600}bc', 4)).toBe('\u{1F600}bc');
    expect(textTail('\u{1F600}', 1)).toBe('');
    expect(textTail('abc', 0)).toBe('');
  });
});

describe('sliceText', () => {
  it('is the slice with each end moved inward by at most one unit, well-formed whenever the input is', () => {
    fc.assert(
      fc.property(fc.oneof(anyText, wellFormedText), fc.integer({ min: -50, max: 90 }), fc.integer({ min: -50, max: 90 }), (text, start, end) => {
        const part = sliceText(text, start, end);
        const from = start < 0 ? Math.max(0, text.length + start) : Math.min(start, text.length);
        const to = end < 0 ? Math.max(0, text.length + end) : Math.min(end, text.length);
        const candidates = [text.slice(from, to), text.slice(from + 1, to), text.slice(from, to - 1), text.slice(from + 1, to - 1)].map((c) => (to - from <= 0 ? '' : c));
        expect(candidates).toContain(part);
        if (isWellFormed(text)) expect(isWellFormed(part)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ellipsize', () => {
  it('is the text, or a well-formed cut and the marker within max units', () => {
    fc.assert(
      fc.property(wellFormedText, fc.integer({ min: 3, max: 90 }), fc.constantFrom('…', '...'), (text, max, marker) => {
        const shown = ellipsize(text, max, marker);
        if (text.length <= max) expect(shown).toBe(text);
        else {
          expect(shown.endsWith(marker)).toBe(true);
          expect(text.startsWith(shown.slice(0, shown.length - marker.length))).toBe(true);
          expect(shown.length).toBeLessThanOrEqual(max);
          expect(shown.length).toBeGreaterThanOrEqual(max - 1);
        }
        expect(isWellFormed(shown)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});
