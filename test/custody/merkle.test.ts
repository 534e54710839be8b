import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  EMPTY_ROOT,
  MerkleFrontier,
  consistencyProof,
  inclusionProof,
  leafHash,
  merkleRoot,
  nodeHash,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from '../../custody/merkle';

// Independent reference: plain SHA-256 with the RFC 9162 prefixes, written out by hand.
const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
const L = (entry: Buffer) => sha(Buffer.from([0]), entry);
const N = (left: Buffer, right: Buffer) => sha(Buffer.from([1]), left, right);
const hex = (b: Buffer) => b.toString('hex');

const entries = Array.from({ length: 7 }, (_, i) => Buffer.from(`entry-${i}`));
const l = entries.map(L);
const [l0, l1, l2, l3, l4, l5, l6] = l as [Buffer, Buffer, Buffer, Buffer, Buffer, Buffer, Buffer];

// RFC 6962 / 9162 reference vectors (Certificate Transparency; transparency-dev/merkle testonly).
const CT_ENTRIES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
const CT_ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

describe('RFC 9162 Merkle tree', () => {
  it('domain-separates leaves and nodes', () => {
    expect(hex(leafHash(entries[0] as Buffer))).toBe(hex(l0));
    expect(hex(nodeHash(l0, l1))).toBe(hex(N(l0, l1)));
    expect(hex(nodeHash(l0, l1))).not.toBe(hex(nodeHash(l1, l0)));
    expect(hex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('computes tree heads of small trees as worked out by hand', () => {
    const byHand = [
      EMPTY_ROOT,
      l0,
      N(l0, l1),
      N(N(l0, l1), l2),
      N(N(l0, l1), N(l2, l3)),
      N(N(N(l0, l1), N(l2, l3)), l4),
      N(N(N(l0, l1), N(l2, l3)), N(l4, l5)),
      N(N(N(l0, l1), N(l2, l3)), N(N(l4, l5), l6)),
    ];
    byHand.forEach((root, n) => expect(hex(merkleRoot(l, n)), `size ${n}`).toBe(hex(root)));
  });

  it('gives audit paths as worked out by hand (tree of 7)', () => {
    expect(inclusionProof(l, 0).map(hex)).toEqual([l1, N(l2, l3), N(N(l4, l5), l6)].map(hex));
    expect(inclusionProof(l, 3).map(hex)).toEqual([l2, N(l0, l1), N(N(l4, l5), l6)].map(hex));
    expect(inclusionProof(l, 4).map(hex)).toEqual([l5, l6, N(N(l0, l1), N(l2, l3))].map(hex));
    expect(inclusionProof(l, 6).map(hex)).toEqual([N(l4, l5), N(N(l0, l1), N(l2, l3))].map(hex));
  });

  it('gives consistency proofs as worked out by hand', () => {
    // 3 -> 7: RFC 9162 §2.1.4.1 example shape: [c, d, g, l] for tree d0..d6 with m = 3.
    expect(consistencyProof(l, 3, 7).map(hex)).toEqual([l2, l3, N(l0, l1), N(N(l4, l5), l6)].map(hex));
    // 4 -> 7: the first tree is a complete subtree: just the right part.
    expect(consistencyProof(l, 4, 7).map(hex)).toEqual([N(N(l4, l5), l6)].map(hex));
    // 6 -> 7
    expect(consistencyProof(l, 6, 7).map(hex)).toEqual([N(l4, l5), l6, N(N(l0, l1), N(l2, l3))].map(hex));
  });

  it('matches the Certificate Transparency reference roots and proofs', () => {
    const leaves = CT_ENTRIES.map(leafHash);
    CT_ROOTS.forEach((root, i) => expect(hex(merkleRoot(leaves, i + 1))).toBe(root));
    expect(inclusionProof(leaves, 0, 8).map(hex)).toEqual([
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
    expect(inclusionProof(leaves, 5, 8).map(hex)).toEqual([
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]);
    expect(consistencyProof(leaves, 2, 8).map(hex)).toEqual([
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
    expect(consistencyProof(leaves, 6, 8).map(hex)).toEqual([
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]);
  });

  describe('exhaustively for tree sizes 1..64', () => {
    const MAX = 64;
    const leaves = Array.from({ length: MAX }, (_, i) => L(Buffer.from(`leaf ${i}`)));
    const roots = Array.from({ length: MAX + 1 }, (_, n) => merkleRoot(leaves, n));

    it('the incremental frontier gives the same heads as the recursive definition', () => {
      const frontier = new MerkleFrontier();
      expect(hex(frontier.root())).toBe(hex(EMPTY_ROOT));
      for (let n = 1; n <= MAX; n += 1) {
        frontier.append(leaves[n - 1] as Buffer);
        expect(hex(frontier.root()), `size ${n}`).toBe(hex(roots[n] as Buffer));
        const restored = new MerkleFrontier(frontier.size, frontier.subtreeRoots);
        expect(hex(restored.root())).toBe(hex(roots[n] as Buffer));
      }
    });

    it('every inclusion proof verifies, and fails for the wrong leaf, index, root or a mangled path', () => {
      let checked = 0;
      for (let n = 1; n <= MAX; n += 1) {
        const root = roots[n] as Buffer;
        for (let i = 0; i < n; i += 1) {
          const leaf = leaves[i] as Buffer;
          const proof = inclusionProof(leaves, i, n);
          expect(verifyInclusion(leaf, i, n, proof, root), `${i}/${n}`).toBe(true);
          expect(verifyInclusion(leaves[(i + 1) % MAX] as Buffer, i, n, proof, root)).toBe(false);
          if (n > 1) expect(verifyInclusion(leaf, (i + 1) % n, n, proof, root)).toBe(false);
          // (A wrong tree size can walk the same path: the size is bound by the signed checkpoint, not the proof.)
          expect(verifyInclusion(leaf, i, 2 * n + 1, proof, root)).toBe(false);
          expect(verifyInclusion(leaf, i, n, proof, roots[n - 1] as Buffer)).toBe(false);
          expect(verifyInclusion(leaf, n, n, proof, root)).toBe(false);
          expect(verifyInclusion(leaf, i, n, [...proof, Buffer.alloc(32, 7)], root)).toBe(false);
          if (proof.length > 0) {
            expect(verifyInclusion(leaf, i, n, proof.slice(0, -1), root)).toBe(false);
            const flipped = proof.map((p) => Buffer.from(p));
            const first = flipped[0] as Buffer;
            first[5] = (first[5] as number) ^ 1;
            expect(verifyInclusion(leaf, i, n, flipped, root)).toBe(false);
          }
          checked += 1;
        }
      }
      expect(checked).toBe((MAX * (MAX + 1)) / 2);
    });

    it('every consistency proof verifies, and fails for wrong sizes, roots or a mangled path', () => {
      let checked = 0;
      for (let n2 = 0; n2 <= MAX; n2 += 1) {
        for (let n1 = 0; n1 <= n2; n1 += 1) {
          const proof = consistencyProof(leaves, n1, n2);
          const r1 = roots[n1] as Buffer;
          const r2 = roots[n2] as Buffer;
          expect(verifyConsistency(n1, n2, r1, r2, proof), `${n1} -> ${n2}`).toBe(true);
          if (n1 > 0 && n1 < n2) {
            expect(verifyConsistency(n1, n2, roots[n1 - 1] as Buffer, r2, proof)).toBe(false);
            expect(verifyConsistency(n1, n2, r1, roots[n2 - 1] as Buffer, proof)).toBe(false);
            expect(verifyConsistency(n1 + 1, n2, r1, r2, proof)).toBe(false);
            expect(verifyConsistency(n2, n1, r2, r1, proof)).toBe(false);
            expect(verifyConsistency(n1, n2, r1, r2, [])).toBe(false);
            expect(verifyConsistency(n1, n2, r1, r2, proof.slice(0, -1))).toBe(false);
            expect(verifyConsistency(n1, n2, r1, r2, [...proof, Buffer.alloc(32)])).toBe(false);
            const flipped = proof.map((p) => Buffer.from(p));
            const last = flipped[flipped.length - 1] as Buffer;
            last[0] = (last[0] as number) ^ 0x80;
            expect(verifyConsistency(n1, n2, r1, r2, flipped)).toBe(false);
          }
          checked += 1;
        }
      }
      expect(checked).toBe(((MAX + 1) * (MAX + 2)) / 2);
    });

    it('settles the degenerate consistency cases', () => {
      expect(verifyConsistency(4, 4, roots[4] as Buffer, roots[4] as Buffer, [])).toBe(true);
      expect(verifyConsistency(4, 4, roots[4] as Buffer, roots[5] as Buffer, [])).toBe(false);
      expect(verifyConsistency(0, 9, EMPTY_ROOT, roots[9] as Buffer, [])).toBe(true);
      expect(verifyConsistency(0, 9, roots[1] as Buffer, roots[9] as Buffer, [])).toBe(false);
    });
  });

  it('refuses malformed input: generators throw, verifiers say no', () => {
    const leaves = CT_ENTRIES.map(leafHash);
    expect(() => merkleRoot([Buffer.alloc(31)])).toThrow(TypeError);
    expect(() => inclusionProof(leaves, 8, 8)).toThrow(RangeError);
    expect(() => inclusionProof(leaves, 0, 9)).toThrow(RangeError);
    expect(() => consistencyProof(leaves, 5, 3)).toThrow(RangeError);
    const proof = inclusionProof(leaves, 5, 8);
    const root = merkleRoot(leaves);
    expect(verifyInclusion(Buffer.alloc(31), 5, 8, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[5] as Buffer, -1, 8, proof, root)).toBe(false);
    expect(verifyInclusion(leaves[5] as Buffer, 5, 8, [Buffer.alloc(31), ...proof.slice(1)], root)).toBe(false);
    expect(verifyInclusion(leaves[5] as Buffer, 5, 8, 'nope' as unknown as Buffer[], root)).toBe(false);
    expect(toHex(root)).toBe(CT_ROOTS[7]);
  });
});
