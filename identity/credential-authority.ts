/**
 * Which keys a worker signs credentials with and which stores it keeps them in, from its
 * configuration:
 *
 *   keys    WARDEN_SIGNING_KEY_FILE set -> that one key, for signing and verifying (every worker)
 *           otherwise                   -> the keystore of the state folder (`keys/`); with a
 *                                          shared database its public keys are published there
 *                                          and every worker's published keys verify
 *   stores  shared database             -> its tables (grants, revocations, jti replay)
 *           otherwise                   -> `<stateDir>/identity.db`
 */
import type { StateStore } from '../state/state-store';
import type { Clock } from './clock';
import { openCredentialStores, type CredentialStores } from './credential-stores';
import { openKeySourceKeystore } from './key-source-keystore';
import { openKeystore, type Keystore } from './keystore';
import { openSharedKeystore } from './shared-keystore';
import { createSqlCredentialStores } from './sql-credential-stores';

export interface CredentialAuthority {
  keystore: Keystore;
  stores: CredentialStores;
  /** Where keys come from, for logs: `state folder`, `state folder, published to <db>`, or `key file <path>`. */
  keySource: string;
  close(): Promise<void>;
}

export interface OpenCredentialAuthorityOptions {
  stateDir: string;
  env?: NodeJS.ProcessEnv;
  /** The shared state store (PostgreSQL) when there is one; its database is not closed here. */
  state?: StateStore;
  clock?: Clock;
}

/** The signing key file of `env`, if one is configured. */
export function signingKeyFileOf(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const file = env.WARDEN_SIGNING_KEY_FILE?.trim();
  return file === undefined || file === '' ? undefined : file;
}

/**
 * Checks the signing key file of `env`, when one is configured, before a worker starts: a file
 * that cannot be used is the operator's to fix, so `warden worker` and `warden run` refuse it
 * (exit 2) before they start or reach a Temporal server, not after. The worker reads the file
 * again when it opens its keystore (key-source-keystore.ts), so a file replaced in between is
 * still checked there. Resolves with the file checked, or undefined when none is configured.
 *
 * @throws KeystoreError ERR_SIGNING_KEY_FILE_INVALID when the file is missing, not a private
 *   Ed25519 or P-256 JWK (RFC 7517, RFC 8037), or readable by others.
 */
export async function checkSigningKeyFile(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const file = signingKeyFileOf(env);
  if (file !== undefined) await openKeySourceKeystore(file);
  return file;
}

export async function openCredentialAuthority(options: OpenCredentialAuthorityOptions): Promise<CredentialAuthority> {
  const env = options.env ?? process.env;
  const keyFile = signingKeyFileOf(env);
  const shared = options.state?.shared === true ? options.state : undefined;
  let keystore: Keystore;
  let keySource: string;
  if (keyFile !== undefined) {
    keystore = await openKeySourceKeystore(keyFile, options.clock);
    keySource = `key file ${keyFile}`;
  } else {
    const local = await openKeystore({ stateDir: options.stateDir, ...(options.clock === undefined ? {} : { clock: options.clock }) });
    keystore = shared === undefined ? local : await openSharedKeystore(local, shared.db, shared.workerId);
    keySource = shared === undefined ? 'state folder' : `state folder, published to ${shared.config.description}`;
  }
  const stores =
    shared === undefined
      ? openCredentialStores({ stateDir: options.stateDir, ...(options.clock === undefined ? {} : { clock: options.clock }) })
      : createSqlCredentialStores({ db: shared.db, ...(options.clock === undefined ? {} : { clock: options.clock }) });
  return {
    keystore,
    stores,
    keySource,
    close: async () => {
      await stores.close();
    },
  };
}
