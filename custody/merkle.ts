/**
 * Merkle tree hashing after RFC 9162 §2.1 (the Certificate Transparency tree): leaf hashes are
 * SHA-256(0x00 || entry), interior nodes SHA-256(0x01 || left || right), so a leaf can never be
 * passed off as a node. Tree heads, inclusion proofs (audit paths) and consistency proofs are
 * computed by the RFC's recursive definitions and verified by its iterative algorithms
 * (§2.1.3.2, §2.1.4.2), so proofs produced here check out with any RFC 9162 verifier.
 *
 * Functions over trees take the leaf HASHES (not entries), in leaf order. Verifiers never throw
 * on bad input: a malformed proof is simply not valid.
 */
import { createHash } from 'node:crypto';

export const HASH_SIZE = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** SHA-256 of the concatenation of `parts`. */
export function sha256(...parts: Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** MTH of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = sha256();

/** RFC 9162 leaf hash: SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Buffer {
  return sha256(LEAF_PREFIX, entry);
}

/** RFC 9162 interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) throw new TypeError(`nodeHash: children must be ${HASH_SIZE}-byte hashes`);
  return sha256(NODE_PREFIX, left, right);
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** A 32-byte hash from lower-case hex. @throws TypeError on anything else. */
export function fromHex(hex: string): Buffer {
  if (!HEX_HASH.test(hex)) throw new TypeError('expected a 64-digit lower-case hex SHA-256 hash');
  return Buffer.from(hex, 'hex');
}

/** Largest power of two strictly smaller than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkLeaves(leaves: readonly Uint8Array[]): void {
  if (!Array.isArray(leaves)) throw new TypeError('expected an array of leaf hashes');
  for (const leaf of leaves) {
    if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_SIZE) throw new TypeError(`leaf hashes must be ${HASH_SIZE}-byte hashes`);
  }
}

function checkSize(name: string, size: number, max: number, min = 0): void {
  if (!Number.isSafeInteger(size) || size < min || size > max) throw new RangeError(`${name} ${size} is outside ${min}..${max}`);
}

/** MTH(D[lo:hi]) over leaf hashes. */
function subtreeHash(leaves: readonly Uint8Array[], lo: number, hi: number): Buffer {
  const n = hi - lo;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return Buffer.from(leaves[lo] as Uint8Array);
  const k = splitPoint(n);
  return nodeHash(subtreeHash(leaves, lo, lo + k), subtreeHash(leaves, lo + k, hi));
}

/** The Merkle Tree Hash (tree head) of the first `treeSize` leaves (default all). */
export function merkleRoot(leaves: readonly Uint8Array[], treeSize: number = leaves.length): Buffer {
  checkLeaves(leaves);
  checkSize('tree size', treeSize, leaves.length);
  return subtreeHash(leaves, 0, treeSize);
}

/** PATH(m, D[lo:hi]) of RFC 9162 §2.1.3.1. */
function path(leaves: readonly Uint8Array[], m: number, lo: number, hi: number): Buffer[] {
  const n = hi - lo;
  if (n <= 1) return [];
  const k = splitPoint(n);
  return m < k
    ? [...path(leaves, m, lo, lo + k), subtreeHash(leaves, lo + k, hi)]
    : [...path(leaves, m - k, lo + k, hi), subtreeHash(leaves, lo, lo + k)];
}

/** The audit path of leaf `index` in the tree of the first `treeSize` leaves (default all). */
export function inclusionProof(leaves: readonly Uint8Array[], index: number, treeSize: number = leaves.length): Buffer[] {
  checkLeaves(leaves);
  checkSize('tree size', treeSize, leaves.length, 1);
  checkSize('leaf index', index, treeSize - 1);
  return path(leaves, index, 0, treeSize);
}

/** SUBPROOF(m, D[lo:hi], b) of RFC 9162 §2.1.4.1. */
function subproof(leaves: readonly Uint8Array[], m: number, lo: number, hi: number, complete: boolean): Buffer[] {
  const n = hi - lo;
  if (m === n) return complete ? [] : [subtreeHash(leaves, lo, hi)];
  const k = splitPoint(n);
  return m <= k
    ? [...subproof(leaves, m, lo, lo + k, complete), subtreeHash(leaves, lo + k, hi)]
    : [...subproof(leaves, m - k, lo + k, hi, false), subtreeHash(leaves, lo, lo + k)];
}

/**
 * The consistency proof between the trees of the first `size1` and `size2` leaves.
 * Empty when size1 is 0 or equal to size2 (nothing to prove beyond comparing the heads).
 */
export function consistencyProof(leaves: readonly Uint8Array[], size1: number, size2: number = leaves.length): Buffer[] {
  checkLeaves(leaves);
  checkSize('second tree size', size2, leaves.length);
  checkSize('first tree size', size1, size2);
  if (size1 === 0 || size1 === size2) return [];
  return subproof(leaves, size1, 0, size2, true);
}

function isHash(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.length === HASH_SIZE;
}

function isProof(value: unknown): value is Uint8Array[] {
  return Array.isArray(value) && value.every(isHash);
}

/**
 * RFC 9162 §2.1.3.2: does `proof` show that the leaf with hash `leaf` sits at `index` in the tree
 * of `treeSize` leaves whose head is `root`?
 */
export function verifyInclusion(leaf: Uint8Array, index: number, treeSize: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!isHash(leaf) || !isHash(root) || !isProof(proof)) return false;
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) return false;
  // Sizes up to 2^53 do not fit 32-bit shifts: use arithmetic halving.
  let fn = index;
  let sn = treeSize - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

/**
 * RFC 9162 §2.1.4.2: does `proof` show that the tree of `size1` leaves with head `root1` is a
 * prefix of the tree of `size2` leaves with head `root2`? Two cases the RFC leaves undefined are
 * settled as usual: equal sizes need an empty proof and equal heads; an empty first tree is a
 * prefix of every tree (empty proof, `root1` the empty-tree head).
 */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!isHash(root1) || !isHash(root2) || !isProof(proof)) return false;
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 0 || size1 > size2) return false;
  if (size1 === size2) return proof.length === 0 && Buffer.from(root1).equals(root2);
  if (size1 === 0) return proof.length === 0 && EMPTY_ROOT.equals(root1);
  // 1. An empty path fails.
  if (proof.length === 0) return false;
  // 2. If first is an exact power of 2, prepend first_hash.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  // 3.
  let fn = size1 - 1;
  let sn = size2 - 1;
  // 4.
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 5.
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr: Buffer = Buffer.from(path[0] as Uint8Array);
  // 6.
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  // 7.
  return fr.equals(root1) && sr.equals(root2) && sn === 0;
}

/**
 * The right edge of a growing tree: the roots of its perfect subtrees, largest first (one per set
 * bit of the size). Appending is amortised O(1) and the tree head O(log n), which is what lets the
 * ledger sign checkpoints without rereading every leaf.
 */
export class MerkleFrontier {
  private readonly stack: Buffer[];
  private count: number;

  constructor(size = 0, subtreeRoots: readonly Uint8Array[] = []) {
    let bits = 0;
    for (let n = size; n > 0; n = Math.floor(n / 2)) bits += n % 2;
    if (!Number.isSafeInteger(size) || size < 0 || bits !== subtreeRoots.length || !subtreeRoots.every(isHash)) {
      throw new TypeError('MerkleFrontier: subtree roots do not match the tree size');
    }
    this.count = size;
    this.stack = subtreeRoots.map((h) => Buffer.from(h));
  }

  get size(): number {
    return this.count;
  }

  /** The perfect-subtree roots, largest first (what the constructor takes back). */
  get subtreeRoots(): readonly Buffer[] {
    return this.stack;
  }

  append(leaf: Uint8Array): void {
    if (!isHash(leaf)) throw new TypeError(`leaf hashes must be ${HASH_SIZE}-byte hashes`);
    let node: Buffer = Buffer.from(leaf);
    for (let n = this.count; n % 2 === 1; n = Math.floor(n / 2)) node = nodeHash(this.stack.pop() as Buffer, node);
    this.stack.push(node);
    this.count += 1;
  }

  /** MTH of the leaves appended so far. */
  root(): Buffer {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let root = this.stack[this.stack.length - 1] as Buffer;
    for (let i = this.stack.length - 2; i >= 0; i -= 1) root = nodeHash(this.stack[i] as Buffer, root);
    return root;
  }
}
