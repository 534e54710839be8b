/**
 * The ledger's Ed25519 signing key, kept under `<stateDir>/custody-keys/`:
 *
 *   <kid>.key.pem   PKCS#8 private key, mode 0600 (folder 0700)
 *   <kid>.pub.pem   SPKI public key; what verifiers trust
 *   active          the kid new records are signed with
 *
 * `kid` is the RFC 7638 JWK thumbprint of the public key. The private key never leaves this
 * module except as a `KeyObject` handed to `sign`. Verification trusts the public keys found in
 * this folder (or given explicitly), never keys stored inside the ledger file, so rewriting the
 * ledger cannot also rewrite what it is checked against.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustodyError } from '../errors';
import { canonicalize } from './canonical-json';

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** Trusted public keys by kid. */
export type TrustedKeys = ReadonlyMap<string, KeyObject>;

export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
}

const ACTIVE_FILE = 'active';
const KID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** RFC 7638 thumbprint (base64url SHA-256 of the canonical required members) of an Ed25519 key. */
export function kidOf(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' }) as { kty?: string; crv?: string; x?: string };
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new TypeError('expected an Ed25519 public key');
  return createHash('sha256').update(canonicalize({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })).digest('base64url');
}

export function publicJwk(publicKey: KeyObject): PublicJwk {
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid: kidOf(publicKey) };
}

/** A public key from a JWK as {@link publicJwk} writes it. */
export function publicKeyFromJwk(jwk: { kty: string; crv: string; x: string }): KeyObject {
  return createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
}

/** Base64url Ed25519 signature over `message`. */
export function signBytes(key: SigningKey, message: Uint8Array): string {
  return sign(null, message, key.privateKey).toString('base64url');
}

/** Whether `signature` (base64url) is a valid Ed25519 signature of `message` by `publicKey`. Never throws. */
export function verifyBytes(publicKey: KeyObject, message: Uint8Array, signature: string): boolean {
  try {
    if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
    return verify(null, message, publicKey, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

function keyError(message: string, cause?: unknown): CustodyError {
  return new CustodyError('ERR_CUSTODY_KEY', message, { cause });
}

function loadKey(keyDir: string, kid: string): SigningKey {
  if (!KID_PATTERN.test(kid)) throw keyError(`custody key folder ${keyDir}: "${ACTIVE_FILE}" does not name a key`);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(readFileSync(join(keyDir, `${kid}.key.pem`)));
  } catch (error) {
    // Deliberately generic: nothing about the key material in the message.
    throw keyError(`cannot load the custody signing key ${kid} from ${keyDir}`, error);
  }
  const publicKey = createPublicKey(privateKey);
  if (privateKey.asymmetricKeyType !== 'ed25519' || kidOf(publicKey) !== kid) throw keyError(`custody signing key ${kid} in ${keyDir} does not match its name`);
  return { kid, privateKey, publicKey };
}

function writeAtomically(path: string, data: string, mode: number): void {
  const tmp = `${path}.${randomUUID()}.tmp`;
  writeFileSync(tmp, data, { mode, flag: 'wx' });
  try {
    linkSync(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * The active signing key of `keyDir`, created on first use. Safe when several processes start
 * at once: the first to link `active` wins and the others load its key.
 */
export function loadOrCreateSigningKey(keyDir: string): SigningKey {
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  const activePath = join(keyDir, ACTIVE_FILE);
  if (existsSync(activePath)) return loadKey(keyDir, readFileSync(activePath, 'utf8').trim());
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = kidOf(publicKey);
  try {
    writeAtomically(join(keyDir, `${kid}.key.pem`), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, 0o600);
    writeAtomically(join(keyDir, `${kid}.pub.pem`), publicKey.export({ format: 'pem', type: 'spki' }) as string, 0o644);
    chmodSync(keyDir, 0o700);
  } catch (error) {
    throw keyError(`cannot write a custody signing key to ${keyDir}`, error);
  }
  const tmp = `${activePath}.${randomUUID()}.tmp`;
  writeFileSync(tmp, `${kid}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, activePath);
    return { kid, privateKey, publicKey };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw keyError(`cannot activate the custody signing key in ${keyDir}`, error);
    // Another process activated its key first: use that one, drop ours.
    for (const suffix of ['.key.pem', '.pub.pem']) {
      try {
        unlinkSync(join(keyDir, `${kid}${suffix}`));
      } catch {
        // already gone
      }
    }
    return loadKey(keyDir, readFileSync(activePath, 'utf8').trim());
  } finally {
    unlinkSync(tmp);
  }
}

/** Every `<kid>.pub.pem` of `keyDir` whose content matches its name. Empty when the folder is missing. */
export function loadTrustedKeys(keyDir: string): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  let entries: string[];
  try {
    entries = readdirSync(keyDir);
  } catch {
    return keys;
  }
  for (const entry of entries.sort()) {
    const match = /^([A-Za-z0-9_-]{43})\.pub\.pem$/.exec(entry);
    if (!match?.[1]) continue;
    try {
      const key = createPublicKey(readFileSync(join(keyDir, entry)));
      if (key.asymmetricKeyType === 'ed25519' && kidOf(key) === match[1]) keys.set(match[1], key);
    } catch {
      // unreadable or not a key: not trusted
    }
  }
  return keys;
}
