/**
 * The JWKS a verifier of Warden's output needs, as `warden keys jwks` publishes it: the
 * credential authority's keys that still verify (they sign grants, credentials, claim
 * attestations and task receipts; with a shared database every worker's published key, with
 * `WARDEN_SIGNING_KEY_FILE` that one key) and the custody ledger's signing keys (they sign custody
 * records and tree heads: a receipt's proofs are checked with them).
 *
 * One set for both is safe: each key signs only its own kinds of bytes, and those cannot be taken
 * for one another (a JWS signing input is base64url text, a DSSE signature covers bytes starting
 * "DSSEv1 ", a custody signature covers a 32-byte record hash or a checkpoint's canonical JSON
 * with its own `type`).
 */
import { join } from 'node:path';
import { KEY_DIR } from '../custody/ledger';
import { publishedCustodyKeys } from '../custody/shared-ledger';
import { loadTrustedKeys, publicJwk } from '../custody/signing-key';
import { z } from 'zod';
import { PublicJwkSchema, type Jwks, type PublicJwk } from '../identity/claims';
import { openCredentialAuthority } from '../identity/credential-authority';
import { openStateDatabase, openStateStore, stateStoreConfigOf, usesSharedDatabase } from '../state/state-store';
import { KEYS_DIR, readJwksFileAt } from '../identity/keystore';
import { signingKeyFileOf } from '../identity/credential-authority';
import { openKeySourceKeystore } from '../identity/key-source-keystore';
import { readPublishedCredentialKeys } from '../identity/shared-keystore';
import { existsSync } from 'node:fs';

/** A published key set: Warden's keys of every worker, so larger than one keystore's. */
export const PublishedJwksSchema = z.strictObject({ keys: z.array(PublicJwkSchema).max(4096) });

/** A custody key as a JWKS member (`alg: EdDSA`, `use: sig`). */
function custodyMember(key: { kty: string; crv: string; x: string; kid: string }): PublicJwk {
  return { kty: 'OKP', crv: 'Ed25519', x: key.x, kid: key.kid, alg: 'EdDSA', use: 'sig' };
}

/** Every key a verifier of this deployment's attestations, receipts and custody proofs needs. */
export async function publishedJwks(stateDir: string, env: NodeJS.ProcessEnv): Promise<Jwks> {
  const state = usesSharedDatabase(env) ? await openStateStore({ stateDir, env }) : undefined;
  try {
    const authority = await openCredentialAuthority({ stateDir, env, ...(state === undefined ? {} : { state }) });
    try {
      const keys = new Map<string, PublicJwk>();
      for (const key of authority.keystore.jwks().keys) keys.set(key.kid, key);
      for (const key of loadTrustedKeys(join(stateDir, KEY_DIR)).values()) {
        const jwk = publicJwk(key);
        if (!keys.has(jwk.kid)) keys.set(jwk.kid, custodyMember(jwk));
      }
      if (state !== undefined) for (const jwk of await publishedCustodyKeys(state.db)) if (!keys.has(jwk.kid)) keys.set(jwk.kid, custodyMember(jwk));
      return PublishedJwksSchema.parse({ keys: [...keys.values()] });
    } finally {
      await authority.close();
    }
  } finally {
    await state?.close();
  }
}

/** What a verifier found to trust without writing anything, and where it looked. */
export interface ReadPublishedJwks {
  jwks: Jwks;
  /** Where the keys were looked for, for a message when there are none (`the state folder …`). */
  searched: string;
}

/**
 * The keys {@link publishedJwks} would give, read without creating or changing anything (a
 * verification must write nothing; `publishedJwks` opens the keystore, which makes a signing key
 * in a folder that has none): with `WARDEN_SIGNING_KEY_FILE`, that key's public half; otherwise
 * the state folder's `keys/jwks.json` as its keystore last wrote it (keys past their window left
 * out, as the keystore leaves them out); the folder's custody keys; with a shared database, the
 * keys workers published there (read only: no schema change, no worker id). An empty set when
 * there is none (a fresh or absent state folder).
 */
export async function readPublishedJwks(stateDir: string, env: NodeJS.ProcessEnv, now: number = Date.now()): Promise<ReadPublishedJwks> {
  const keys = new Map<string, PublicJwk>();
  const add = (jwk: PublicJwk) => {
    if (!keys.has(jwk.kid)) keys.set(jwk.kid, jwk);
  };
  const keyFile = signingKeyFileOf(env);
  const places: string[] = [];
  if (keyFile !== undefined) {
    for (const key of (await openKeySourceKeystore(keyFile)).jwks().keys) add(key);
    places.push(`the signing key file ${keyFile}`);
  } else {
    const file = join(stateDir, KEYS_DIR, 'jwks.json');
    if (existsSync(file)) for (const key of readJwksFileAt(file).keys) if (key.exp === undefined || key.exp * 1000 > now) add(key);
  }
  places.push(`the state folder ${stateDir}`);
  for (const key of loadTrustedKeys(join(stateDir, KEY_DIR)).values()) add(custodyMember(publicJwk(key)));
  if (usesSharedDatabase(env)) {
    const config = stateStoreConfigOf(stateDir, env);
    places.push(`the shared database ${config.description}`);
    const db = openStateDatabase(config);
    try {
      // A database no worker has set up yet has no table of keys: no key, nothing created.
      if (keyFile === undefined) for (const jwk of await readPublishedCredentialKeys(db, now).catch(() => [])) add(jwk);
      for (const jwk of await publishedCustodyKeys(db).catch(() => [])) add(custodyMember(jwk));
    } finally {
      await db.close();
    }
  }
  return { jwks: PublishedJwksSchema.parse({ keys: [...keys.values()] }), searched: places.join(', ') };
}
