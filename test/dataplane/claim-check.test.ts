/**
 * Claim checks: what crosses the size threshold goes to the blob store and comes back exactly;
 * the digest in history is the canonical-JSON SHA-256 that custody records carry.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileBlobStore } from '../../dataplane/blob-store';
import { claimCheckJson, claimCheckStrings, resolveClaimChecks } from '../../dataplane/claim-check';
import { canonicalSha256 } from '../../custody/canonical-json';
import { containsClaimCheck, isClaimCheckRef, jsonBytes } from '../../task/data-refs';

async function blobs() {
  return new FileBlobStore(await mkdtemp(join(tmpdir(), 'warden-claims-')));
}

describe('claimCheckJson', () => {
  it.each([
    ['a small value stays inline', { words: 4 }, false],
    ['null stays inline', null, false],
    ['a 900 KB output goes to the blob store', { text: 'x'.repeat(900 * 1024) }, true],
    ['many small items above the threshold go too', Array.from({ length: 5000 }, (_, i) => ({ i })), true],
  ])('%s', async (_what, value, checked) => {
    const store = await blobs();
    const result = await claimCheckJson(store, value, 16 * 1024);
    expect(isClaimCheckRef(result.value)).toBe(checked);
    expect(result.sha256).toBe(canonicalSha256(value));
    if (checked) {
      expect(jsonBytes(result.value)).toBeLessThan(200);
      expect(await resolveClaimChecks(store, result.value)).toEqual(value);
    } else {
      expect(result.value).toBe(value);
    }
  });
});

describe('claimCheckStrings', () => {
  it('keeps keys, numbers, paths and short strings, and checks in only long strings', async () => {
    const store = await blobs();
    const args = { path: 'out/big.txt', content: 'é'.repeat(20_000), nested: [{ note: 'short', body: 'y'.repeat(40_000) }], n: 3 };
    const checked = (await claimCheckStrings(store, args, 16 * 1024)) as typeof args;
    expect(checked.path).toBe('out/big.txt');
    expect(checked.n).toBe(3);
    expect(checked.nested[0]!.note).toBe('short');
    expect(isClaimCheckRef(checked.content)).toBe(true);
    expect(isClaimCheckRef(checked.nested[0]!.body)).toBe(true);
    expect(containsClaimCheck(checked)).toBe(true);
    expect(await resolveClaimChecks(store, checked)).toEqual(args);
  });

  it('leaves a value without claim checks untouched (same object)', async () => {
    const store = await blobs();
    const value = { a: [1, 2, { b: 'c' }] };
    expect(await resolveClaimChecks(store, value)).toBe(value);
  });

  it('does not take a look-alike object for a claim check', async () => {
    expect(isClaimCheckRef({ $warden: 'claim-check', sha256: 'nothex', bytes: 1, kind: 'json' })).toBe(false);
    expect(isClaimCheckRef({ $warden: 'claim-check', sha256: 'a'.repeat(64), bytes: 1, kind: 'json', extra: 1 })).toBe(false);
  });
});
