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
import { openStateStore, usesSharedDatabase } from '../state/state-store';

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
