/**
 * One signing key from a key source every worker mounts (`WARDEN_SIGNING_KEY_FILE`: a private JWK
 * file, e.g. a Kubernetes secret), instead of a key per worker. All workers sign with it and
 * verify with it alone: keys published in the shared database are ignored, so write access to
 * the database cannot add a trusted key.
 *
 * Invariants: the file must be a private Ed25519 or P-256 JWK readable by the owner only (mode
 * 0600 or stricter, refused otherwise); the key is imported non-extractable and only a signer
 * leaves this module; `kid` is the RFC 7638 thumbprint. Rotation is done by replacing the file
 * (`rotate` refuses): outstanding credentials signed by the old key stop verifying then.
 */
import { readUserFileSync, UserFileError } from '../regular-file';
import { webcrypto } from 'node:crypto';
import * as fs from 'node:fs';
import { calculateJwkThumbprint, importJWK } from './jose';
import { z } from 'zod';
import { KeystoreError } from '../errors';
import { jsonProblemText } from '../json-syntax';
import type { Jwks, PublicJwk } from './claims';
import { systemClock, type Clock } from './clock';
import { signCompactJws } from './compact-jws';
import { byteSignerOf, signRawBytes, type JwtSigner, type KeyInfo, type Keystore } from './keystore';

const B64 = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
const SourceJwkSchema = z.union([
  z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: B64, d: B64 }),
  z.object({ kty: z.literal('EC'), crv: z.literal('P-256'), x: B64, y: B64, d: B64 }),
]);

interface Loaded {
  stamp: string;
  info: KeyInfo;
  publicJwk: PublicJwk;
  signer: JwtSigner;
}

function stampOf(file: string): string {
  const stat = fs.statSync(file);
  return `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
}

/**
 * The private key of `jwk`, imported non-extractable, once it is shown to be one key: the JWK's
 * fields have the right shape but may still be no key (an EC point off the curve, a scalar out of
 * range) or two halves of different keys (`d` of one, `x` of another), which would sign tokens no
 * published key verifies. A signature made with `d` must verify with the public part.
 * @throws KeystoreError ERR_SIGNING_KEY_FILE_INVALID, naming the file, never the key material.
 */
async function usableKeyOf(file: string, jwk: z.infer<typeof SourceJwkSchema>, alg: 'EdDSA' | 'ES256'): Promise<webcrypto.CryptoKey> {
  const unusable = () => new KeystoreError('ERR_SIGNING_KEY_FILE_INVALID', `the signing key file ${file} holds no usable ${jwk.kty === 'OKP' ? 'Ed25519' : 'P-256'} key: its fields do not make one key pair (a point off the curve, or "d" and the public part of different keys); generate the key again`, { details: { file } });
  let key: webcrypto.CryptoKey;
  let publicKey: webcrypto.CryptoKey;
  try {
    key = (await importJWK(jwk, alg, { extractable: false })) as webcrypto.CryptoKey;
    const { d: _d, ...publicPart } = jwk;
    publicKey = (await importJWK(publicPart, alg)) as webcrypto.CryptoKey;
  } catch {
    // No cause: the import's error may quote the key's fields.
    throw unusable();
  }
  const algorithm = alg === 'EdDSA' ? { name: 'Ed25519' } : { name: 'ECDSA', hash: 'SHA-256' };
  const probe = Buffer.from('warden signing key self-check');
  const signature = await webcrypto.subtle.sign(algorithm, key, probe);
  if (!(await webcrypto.subtle.verify(algorithm, publicKey, signature, probe))) throw unusable();
  return key;
}

async function load(file: string): Promise<Loaded> {
  let stat: fs.Stats;
  let text: string;
  try {
    // The reader of every user's file (../regular-file.ts) first: its problems are worded (a
    // missing file, a FIFO refused rather than waited on), where stat's are bare errno codes.
    text = readUserFileSync(file, { what: 'the signing key file' });
    stat = fs.statSync(file);
  } catch (error) {
    const problem = error instanceof UserFileError ? error.problem : ((error as NodeJS.ErrnoException).code ?? 'error');
    throw new KeystoreError('ERR_SIGNING_KEY_FILE_INVALID', `cannot read the signing key file ${file}: ${problem}`, { details: { file }, cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Deliberately generic: nothing about the key material in the message (where, not what; and no cause, which quotes the text).
    throw new KeystoreError('ERR_SIGNING_KEY_FILE_INVALID', `cannot read the signing key file ${file}: not JSON at ${jsonProblemText(text, false)}`, { details: { file } });
  }
  if ((stat.mode & 0o077) !== 0) {
    throw new KeystoreError('ERR_SIGNING_KEY_FILE_INVALID', `the signing key file ${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`, { details: { file } });
  }
  const result = SourceJwkSchema.safeParse(parsed);
  if (!result.success) {
    const publicOnly = typeof parsed === 'object' && parsed !== null && !('d' in parsed) && ('x' in parsed);
    throw new KeystoreError('ERR_SIGNING_KEY_FILE_INVALID', `the signing key file ${file} is not a private Ed25519 or P-256 JWK${publicOnly ? ' (it has no "d": a public key, such as one from `warden keys jwks`, cannot sign)' : ''}`, { details: { file } });
  }
  const jwk = result.data;
  const alg = jwk.kty === 'OKP' ? 'EdDSA' : 'ES256';
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const key = await usableKeyOf(file, jwk, alg);
  const publicJwk: PublicJwk =
    jwk.kty === 'OKP' ? { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg: 'EdDSA', use: 'sig' } : { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid, alg: 'ES256', use: 'sig' };
  return {
    stamp: stampOf(file),
    info: { kid, alg, createdAt: new Date(stat.mtimeMs).toISOString(), status: 'active' },
    publicJwk,
    signer: {
      kid,
      alg,
      sign: async (payload, typ) => signCompactJws(key, { alg, kid, typ }, payload),
      signBytes: (message) => signRawBytes(key, alg, message),
    },
  };
}

/** The keystore of the key file at `file`. @throws KeystoreError ERR_SIGNING_KEY_FILE_INVALID when the file cannot be used (exit 2 at the CLI). */
export async function openKeySourceKeystore(file: string, clock: Clock = systemClock): Promise<Keystore> {
  let current = await load(file);
  const keystore: Keystore = {
    dir: file,
    clock,
    activeKid: () => current.info.kid,
    list: () => [{ ...current.info }],
    jwks: (): Jwks => ({ keys: [{ ...current.publicJwk }] }),
    signer: () => ({
      get kid() {
        return current.signer.kid;
      },
      get alg() {
        return current.signer.alg;
      },
      sign: (payload, typ) => current.signer.sign(payload, typ),
      signBytes: (message) => current.signer.signBytes(message),
    }),
    byteSigner: () => byteSignerOf(keystore),
    async rotate() {
      throw new KeystoreError('ERR_KEYSTORE_INVALID', `the signing key comes from ${file}: rotate it by replacing that file on every worker`, { details: { file } });
    },
    async reload() {
      current = await load(file);
    },
    async refresh() {
      let stamp: string;
      try {
        stamp = stampOf(file);
      } catch {
        return false;
      }
      if (stamp === current.stamp) return false;
      current = await load(file);
      return true;
    },
  };
  return keystore;
}
