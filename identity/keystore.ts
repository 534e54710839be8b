/**
 * The credential authority's signing keys, kept under `<stateDir>/keys/`.
 *
 *   keys/                 0700
 *     index.json          0600  { version, active, keys: [{ kid, alg, createdAt, retiredAt?, verifyUntil? }] }
 *     <kid>.jwk.json      0600  the private JWK of one key (kid = its RFC 7638 thumbprint)
 *     jwks.json           0600  the public JWKS, for processes that only verify; a retired key
 *                               carries its window's end as `exp` (epoch seconds)
 *     .lock                     held while the index changes
 *
 * Invariants:
 * - A private key never leaves this module: it is imported as a non-extractable CryptoKey and
 *   only `sign` functions are handed out (JWTs, and raw bytes for DSSE attestations through
 *   `byteSigner()`). `jwks()` copies the public members field by field.
 * - Exactly one key is active. The first open creates it under an exclusive lock, so processes
 *   opening a fresh state folder at once agree on one key.
 * - A retired key keeps verifying until `retiredAt + maxTokenLifetime` (every token it signed has
 *   expired by then) and is deleted by the next open or rotation after that. Its public JWK, in
 *   `jwks()` and jwks.json, carries that end as `exp`, so a verifier that loaded the key in its
 *   window refuses it after (token-verification.ts), not only one that reloads.
 */
import { randomUUID, webcrypto } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWTPayload } from './jose';
import { z } from 'zod';
import { KeystoreError } from '../errors';
import { jsonProblemText } from '../json-syntax';
import { withFileLock } from '../file-lock';
import type { ByteSigner } from '../attestation/dsse';
import { duplicateKids, JwksSchema, keyWindowEnd, SigningAlgSchema, type Jwks, type PublicJwk, type SigningAlg } from './claims';
import { systemClock, type Clock } from './clock';
import { signCompactJws } from './compact-jws';

import { KEYS_DIR } from './keystore-location';
export { KEYS_DIR };
const INDEX_FILE = 'index.json';
const JWKS_FILE = 'jwks.json';
const LOCK_FILE = '.lock';
const LOCK_TIMEOUT_MS = 10_000;
/** How often `signer()` looks for a rotation done by another process. */
const REFRESH_INTERVAL_MS = 1000;

const KidSchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a key id (base64url SHA-256 thumbprint)');

export const KeyRecordSchema = z.strictObject({
  kid: KidSchema,
  alg: SigningAlgSchema,
  createdAt: z.iso.datetime(),
  retiredAt: z.iso.datetime().optional(),
  /** After this instant the key no longer verifies and is pruned. */
  verifyUntil: z.iso.datetime().optional(),
});
export type KeyRecord = z.infer<typeof KeyRecordSchema>;

export const KeyIndexSchema = z
  .strictObject({
    version: z.literal(1),
    active: KidSchema,
    keys: z.array(KeyRecordSchema).min(1),
  })
  .refine((index) => index.keys.some((k) => k.kid === index.active && k.retiredAt === undefined), {
    message: 'the active key must be listed and not retired',
  })
  .refine((index) => new Set(index.keys.map((k) => k.kid)).size === index.keys.length, { message: 'key ids must be unique' });
export type KeyIndex = z.infer<typeof KeyIndexSchema>;

const B64 = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
/** A private key file. */
export const PrivateJwkFileSchema = z.union([
  z.strictObject({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: B64, d: B64, kid: KidSchema, alg: z.literal('EdDSA') }),
  z.strictObject({ kty: z.literal('EC'), crv: z.literal('P-256'), x: B64, y: B64, d: B64, kid: KidSchema, alg: z.literal('ES256') }),
]);
type PrivateJwkFile = z.infer<typeof PrivateJwkFileSchema>;

/** One key as `warden keys list` shows it. */
export interface KeyInfo extends KeyRecord {
  status: 'active' | 'retired';
}

/** Signs JWTs with the active key; the key itself stays inside the keystore. */
export interface JwtSigner {
  readonly kid: string;
  readonly alg: SigningAlg;
  /** A compact JWS of `payload` with protected header `{ alg, kid, typ }`. */
  sign(payload: JWTPayload, typ: string): Promise<string>;
  /**
   * A raw signature of `message` (DSSE's PAE bytes): Ed25519 (64 bytes) or ECDSA P-256 over
   * SHA-256, ASN.1 DER encoded. Never called with JWS signing input: DSSE's "DSSEv1 " prefix
   * keeps the two kinds of signed bytes apart.
   */
  signBytes(message: Uint8Array): Promise<Uint8Array>;
}

export interface Keystore {
  /** The `keys/` folder. */
  readonly dir: string;
  readonly clock: Clock;
  /** The active key's id. */
  activeKid(): string;
  /** Every key still on disk, active first. */
  list(): KeyInfo[];
  /** Public keys that still verify (active and retired-but-not-past-verifyUntil); `use: 'sig'`, no private members. */
  jwks(): Jwks;
  /** A signer for the key active now. */
  signer(): JwtSigner;
  /** Raw-byte signatures (DSSE envelopes) with the key active at each call; published in `jwks()` like every key. */
  byteSigner(): ByteSigner;
  /**
   * Makes a new key active. The old active key is retired and keeps verifying for
   * `maxTokenLifetimeMs` (the longest lifetime of any token it signed: the longest task deadline).
   */
  rotate(options: { maxTokenLifetimeMs: number; alg?: SigningAlg }): Promise<KeyInfo>;
  /** Re-reads the folder (another process may have rotated). */
  reload(): Promise<void>;
  /** `reload()` if the index changed on disk since it was read; cheap enough to call per signature. */
  refresh(): Promise<boolean>;
}

export interface OpenKeystoreOptions {
  stateDir: string;
  /** Algorithm of the key created on first use (default EdDSA, i.e. Ed25519). */
  alg?: SigningAlg;
  clock?: Clock;
}

/** Opens (creating on first use) the keystore under `<stateDir>/keys/`, pruning keys past their verification window. */
export async function openKeystore(options: OpenKeystoreOptions): Promise<Keystore> {
  const alg = SigningAlgSchema.parse(options.alg ?? 'EdDSA');
  const clock = options.clock ?? systemClock;
  const dir = join(options.stateDir, KEYS_DIR);
  ensurePrivateDir(dir);
  if (!fs.existsSync(join(dir, INDEX_FILE))) {
    await withLock(dir, async () => {
      if (fs.existsSync(join(dir, INDEX_FILE))) return; // another process created it while we waited
      const record = await createKey(dir, alg, clock());
      await writeIndexAndJwks(dir, { version: 1, active: record.kid, keys: [record] });
    });
  }
  const keystore = new FileKeystore(dir, clock);
  await keystore.reload();
  if (keystore.hasPrunableKeys()) await keystore.prune();
  return keystore;
}

/** The public JWKS written next to the keys, for a process that verifies but must not hold private keys. */
export function readJwksFile(stateDir: string): Jwks {
  return readJwksFileAt(join(stateDir, KEYS_DIR, JWKS_FILE));
}

/**
 * A public JWKS file (Warden's jwks.json, or one an operator supplies to the sandbox host). Keys
 * without `exp` (files written before windows were) verify until the file drops them.
 * @throws KeystoreError ERR_KEYSTORE_INVALID when it cannot be read, is not a Warden JWKS, or
 * lists a kid twice (which key it means would depend on list order), naming the file and the kid.
 */
export function readJwksFileAt(file: string): Jwks {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new KeystoreError('ERR_KEYSTORE_INVALID', `cannot read the JWKS ${file}: ${(error as Error).message}`, { details: { file }, cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new KeystoreError('ERR_KEYSTORE_INVALID', `cannot read the JWKS ${file}: not JSON (${jsonProblemText(text)})`, { details: { file }, cause: error });
  }
  const result = JwksSchema.safeParse(parsed);
  if (!result.success) throw new KeystoreError('ERR_KEYSTORE_INVALID', `${file} is not a Warden JWKS`, { details: { file } });
  const twice = duplicateKids(result.data);
  if (twice.length > 0) {
    throw new KeystoreError('ERR_KEYSTORE_INVALID', `${file} lists key ${twice[0]} more than once; a kid must name one key`, { details: { file, kids: twice.slice(0, 10) } });
  }
  return result.data;
}

interface LoadedKey {
  record: KeyRecord;
  publicJwk: PublicJwk;
}

class FileKeystore implements Keystore {
  private index: KeyIndex | undefined;
  private keys = new Map<string, LoadedKey>();
  private activeSigner: JwtSigner | undefined;
  private indexStamp = '';
  private lastRefreshCheck = 0;

  constructor(
    readonly dir: string,
    readonly clock: Clock,
  ) {}

  activeKid(): string {
    return this.loadedIndex().active;
  }

  list(): KeyInfo[] {
    const index = this.loadedIndex();
    return [...index.keys]
      .sort((a, b) => (a.kid === index.active ? -1 : b.kid === index.active ? 1 : b.createdAt.localeCompare(a.createdAt)))
      .map((record) => ({ ...record, status: record.kid === index.active ? 'active' : 'retired' }));
  }

  jwks(): Jwks {
    const now = this.clock();
    const keys: PublicJwk[] = [];
    for (const { record, publicJwk } of this.keys.values()) {
      if (record.verifyUntil === undefined || Date.parse(record.verifyUntil) > now) keys.push({ ...publicJwk });
    }
    return { keys };
  }

  signer(): JwtSigner {
    const keystore = this;
    return {
      get kid() {
        return keystore.currentSigner().kid;
      },
      get alg() {
        return keystore.currentSigner().alg;
      },
      async sign(payload, typ) {
        // Pick up a rotation made by another process before signing with a key that may be retired.
        if (performance.now() - keystore.lastRefreshCheck > REFRESH_INTERVAL_MS) await keystore.refresh();
        return keystore.currentSigner().sign(payload, typ);
      },
      async signBytes(message) {
        if (performance.now() - keystore.lastRefreshCheck > REFRESH_INTERVAL_MS) await keystore.refresh();
        return keystore.currentSigner().signBytes(message);
      },
    };
  }

  byteSigner(): ByteSigner {
    return byteSignerOf(this);
  }

  async rotate(options: { maxTokenLifetimeMs: number; alg?: SigningAlg }): Promise<KeyInfo> {
    if (!Number.isFinite(options.maxTokenLifetimeMs) || options.maxTokenLifetimeMs < 0) {
      throw new TypeError('maxTokenLifetimeMs must be a non-negative number of milliseconds');
    }
    const alg = SigningAlgSchema.parse(options.alg ?? this.activeSigner?.alg ?? 'EdDSA');
    let created: KeyRecord | undefined;
    await withLock(this.dir, async () => {
      const index = readIndex(this.dir); // the folder, not our copy: another process may have rotated
      const now = this.clock();
      const nowIso = new Date(now).toISOString();
      const verifyUntil = new Date(now + options.maxTokenLifetimeMs).toISOString();
      created = await createKey(this.dir, alg, now);
      const retired = index.keys.map((k) => (k.kid === index.active ? { ...k, retiredAt: nowIso, verifyUntil } : k));
      const { kept, pruned } = splitPrunable(retired, now);
      await writeIndexAndJwks(this.dir, { version: 1, active: created.kid, keys: [created, ...kept] });
      for (const k of pruned) removeKeyFile(this.dir, k.kid);
    });
    await this.reload();
    return { ...(created as KeyRecord), status: 'active' };
  }

  async reload(): Promise<void> {
    const index = readIndex(this.dir);
    const stamp = indexStamp(this.dir);
    const keys = new Map<string, LoadedKey>();
    let activeSigner: JwtSigner | undefined;
    for (const record of index.keys) {
      const file = readKeyFile(this.dir, record);
      keys.set(record.kid, { record, publicJwk: publicMemberOf(record, file) });
      if (record.kid === index.active) activeSigner = await signerFor(file);
    }
    this.index = index;
    this.keys = keys;
    this.activeSigner = activeSigner;
    this.indexStamp = stamp;
    this.lastRefreshCheck = performance.now();
  }

  async refresh(): Promise<boolean> {
    this.lastRefreshCheck = performance.now();
    if (indexStamp(this.dir) === this.indexStamp) return false;
    await this.reload();
    return true;
  }

  hasPrunableKeys(): boolean {
    return splitPrunable(this.loadedIndex().keys, this.clock()).pruned.length > 0;
  }

  /** Deletes keys whose verification window has passed. */
  async prune(): Promise<void> {
    await withLock(this.dir, async () => {
      const index = readIndex(this.dir);
      const { kept, pruned } = splitPrunable(index.keys, this.clock());
      if (pruned.length === 0) return;
      await writeIndexAndJwks(this.dir, { ...index, keys: kept });
      for (const k of pruned) removeKeyFile(this.dir, k.kid);
    });
    await this.reload();
  }

  private currentSigner(): JwtSigner {
    if (this.activeSigner === undefined) throw new TypeError('keystore not loaded');
    return this.activeSigner;
  }

  private loadedIndex(): KeyIndex {
    if (this.index === undefined) throw new TypeError('keystore not loaded');
    return this.index;
  }
}

function splitPrunable(keys: readonly KeyRecord[], now: number): { kept: KeyRecord[]; pruned: KeyRecord[] } {
  const kept: KeyRecord[] = [];
  const pruned: KeyRecord[] = [];
  for (const k of keys) (k.verifyUntil !== undefined && Date.parse(k.verifyUntil) <= now ? pruned : kept).push(k);
  return { kept, pruned };
}

async function signerFor(file: PrivateJwkFile): Promise<JwtSigner> {
  const { kid, alg, ...jwk } = file;
  // Non-extractable: nothing, not even this module, can read the private key back out of it.
  const key = (await importJWK(jwk, alg, { extractable: false })) as webcrypto.CryptoKey;
  return {
    kid,
    alg,
    // node:crypto's synchronous one-shot sign (compact-jws.ts): the same JWS, without a WebCrypto round trip per credential.
    sign: async (payload, typ) => signCompactJws(key, { alg, kid, typ }, payload),
    signBytes: (message) => signRawBytes(key, alg, message),
  };
}

/**
 * A raw signature with a non-extractable WebCrypto key: Ed25519 as is, ECDSA P-256 converted from
 * WebCrypto's IEEE P1363 form (r || s) to ASN.1 DER, the encoding DSSE verifiers (and node:crypto's
 * default) expect.
 */
export async function signRawBytes(key: webcrypto.CryptoKey, alg: SigningAlg, message: Uint8Array): Promise<Uint8Array> {
  const data = new Uint8Array(message);
  if (alg === 'EdDSA') return new Uint8Array(await webcrypto.subtle.sign({ name: 'Ed25519' }, key, data));
  return p1363ToDer(new Uint8Array(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, data)));
}

/** `r || s` (two 32-byte big-endian integers) as DER `SEQUENCE { INTEGER r, INTEGER s }`. */
export function p1363ToDer(signature: Uint8Array): Uint8Array {
  if (signature.length !== 64) throw new TypeError(`an ECDSA P-256 signature has 64 bytes, not ${signature.length}`);
  const integer = (bytes: Uint8Array): number[] => {
    let start = 0;
    while (start < bytes.length - 1 && bytes[start] === 0) start++;
    const trimmed = [...bytes.subarray(start)];
    // A leading 1 bit would read as negative: DER prepends a zero byte.
    return (trimmed[0] as number) & 0x80 ? [0x02, trimmed.length + 1, 0, ...trimmed] : [0x02, trimmed.length, ...trimmed];
  };
  const body = [...integer(signature.subarray(0, 32)), ...integer(signature.subarray(32))];
  return new Uint8Array([0x30, body.length, ...body]);
}

/** A ByteSigner that signs with whatever key `keystore` has active when it signs (a rotation in between is picked up). */
export function byteSignerOf(keystore: Pick<Keystore, 'signer'>): ByteSigner {
  const signer = keystore.signer();
  return {
    get kid() {
      return signer.kid;
    },
    get alg() {
      return signer.alg;
    },
    signBytes: (message) => signer.signBytes(message),
  };
}

/** The JWKS member of a key: its public part and, when it is retired, the end of its window (`exp`, epoch seconds, rounded down). */
function publicMemberOf(record: KeyRecord, file: PrivateJwkFile): PublicJwk {
  const jwk = publicPartOf(file);
  return record.verifyUntil === undefined ? jwk : { ...jwk, exp: keyWindowEnd(record.verifyUntil) };
}

function publicPartOf(file: PrivateJwkFile): PublicJwk {
  return file.kty === 'OKP'
    ? { kty: 'OKP', crv: 'Ed25519', x: file.x, kid: file.kid, alg: 'EdDSA', use: 'sig' }
    : { kty: 'EC', crv: 'P-256', x: file.x, y: file.y, kid: file.kid, alg: 'ES256', use: 'sig' };
}

async function createKey(dir: string, alg: SigningAlg, now: number): Promise<KeyRecord> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const file = PrivateJwkFileSchema.parse({ ...jwk, kid, alg });
  writeFileAtomic(keyFilePath(dir, kid), `${JSON.stringify(file)}\n`);
  return { kid, alg, createdAt: new Date(now).toISOString() };
}

function keyFilePath(dir: string, kid: string): string {
  return join(dir, `${KidSchema.parse(kid)}.jwk.json`);
}

function removeKeyFile(dir: string, kid: string): void {
  fs.rmSync(keyFilePath(dir, kid), { force: true });
}

function readKeyFile(dir: string, record: KeyRecord): PrivateJwkFile {
  const file = keyFilePath(dir, record.kid);
  let parsed: unknown;
  try {
    fs.chmodSync(file, 0o600);
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new KeystoreError('ERR_KEYSTORE_INVALID', `cannot read key ${record.kid}`, { details: { file }, cause: error });
  }
  const result = PrivateJwkFileSchema.safeParse(parsed);
  if (!result.success || result.data.kid !== record.kid || result.data.alg !== record.alg) {
    throw new KeystoreError('ERR_KEYSTORE_INVALID', `key file of ${record.kid} is not a ${record.alg} private JWK with that kid`, { details: { file } });
  }
  return result.data;
}

function readIndex(dir: string): KeyIndex {
  const file = join(dir, INDEX_FILE);
  let parsed: unknown;
  try {
    fs.chmodSync(file, 0o600);
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new KeystoreError('ERR_KEYSTORE_INVALID', `cannot read the key index ${file}: ${(error as Error).message}`, { details: { file }, cause: error });
  }
  const result = KeyIndexSchema.safeParse(parsed);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`);
    throw new KeystoreError('ERR_KEYSTORE_INVALID', `invalid key index ${file}: ${issues.join('; ')}`, { details: { file, issues } });
  }
  return result.data;
}

async function writeIndexAndJwks(dir: string, index: KeyIndex): Promise<void> {
  const checked = KeyIndexSchema.parse(index);
  const jwks: Jwks = { keys: checked.keys.map((record) => publicMemberOf(record, readKeyFile(dir, record))) };
  // JWKS first: a verifier must know a key before anything signs with it.
  writeFileAtomic(join(dir, JWKS_FILE), `${JSON.stringify(JwksSchema.parse(jwks), null, 2)}\n`);
  writeFileAtomic(join(dir, INDEX_FILE), `${JSON.stringify(checked, null, 2)}\n`);
}

function indexStamp(dir: string): string {
  try {
    const stat = fs.statSync(join(dir, INDEX_FILE));
    return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
  } catch {
    return '';
  }
}

function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Write to a fresh 0600 temp file, fsync, rename over `file`: readers see the old or the new content, never half. */
function writeFileAtomic(file: string, content: string): void {
  const tmp = `${file}.${process.pid}.${randomUUID()}.tmp`;
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (error) {
    fs.rmSync(tmp, { force: true });
    throw error;
  }
}

/**
 * Runs `fn` holding `<dir>/.lock` (file-lock.ts: taken only from a holder that no longer runs, and
 * race-free between two takers of a stale lock).
 * @throws KeystoreError ERR_KEYSTORE_LOCKED (retryable) when a live process holds it past LOCK_TIMEOUT_MS.
 */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = join(dir, LOCK_FILE);
  const lockOptions = {
    timeoutMs: LOCK_TIMEOUT_MS,
    pollMs: 10,
    pollJitterMs: 40,
    timeoutError: () =>
      new KeystoreError('ERR_KEYSTORE_LOCKED', `the keystore ${dir} is locked by another process (${lockPath}); remove the file if no warden process is running`, {
        details: { lockPath },
        retryable: true,
      }),
  };
  return withFileLock(lockPath, lockOptions, fn);
}

