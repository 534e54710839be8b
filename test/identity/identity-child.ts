/**
 * A second process for the cross-process tests: it verifies credentials with only the public
 * JWKS and the shared SQLite stores (as the sandbox host will), or opens a keystore (to race
 * other processes creating the first key). It never sees a private key.
 */
import { openCredentialStores, type CredentialStores } from '../../identity/credential-stores';
import type { Jwks } from '../../identity/claims';
import { openKeystore } from '../../identity/keystore';
import { createCredentialVerifier, type CredentialVerifier } from '../../identity/verify-credential';
import { WardenError } from '../../errors';

let verifier: CredentialVerifier | undefined;
let stores: CredentialStores | undefined;

type Request =
  | { type: 'init'; stateDir: string; jwks: Jwks; now: number }
  | { type: 'verify'; token: string; tool: string; requiredScope: string[] }
  | { type: 'open-keystore'; stateDir: string; startAt: number };

process.on('message', (raw) => {
  void handle(raw as Request).then(
    (reply) => process.send?.(reply),
    (error: unknown) => process.send?.({ ok: false, code: error instanceof WardenError ? error.code : `crash: ${String(error)}` }),
  );
});

async function handle(request: Request): Promise<Record<string, unknown>> {
  if (request.type === 'init') {
    stores = openCredentialStores({ stateDir: request.stateDir, clock: () => request.now });
    verifier = createCredentialVerifier({ keys: request.jwks, replayStore: stores.replay, revocationStore: stores.revocation, clock: () => request.now });
    return { ok: true };
  }
  if (request.type === 'verify') {
    if (verifier === undefined) throw new Error('not initialised');
    const { claims } = await verifier.verify(request.token, { tool: request.tool, requiredScope: request.requiredScope });
    return { ok: true, jti: claims.jti };
  }
  // Start together: wait until the agreed instant so the opens really race.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, request.startAt - Date.now())));
  const keystore = await openKeystore({ stateDir: request.stateDir });
  return { ok: true, kid: keystore.activeKid() };
}

process.on('disconnect', () => {
  stores?.close();
  process.exit(0);
});
