/**
 * The credential authority of one worker in a fleet: it signs with its own key (the keystore of
 * its state folder; the private key never leaves that folder, and never enters the database) and
 * trusts the public keys every worker published to the shared state database, so a task grant
 * issued by one worker verifies on another (delegation, minting, revocation checks).
 *
 * Invariants:
 * - Only public members are published: the JWKS of the local keystore (`kty, crv, x, [y], kid,
 *   alg, use`), re-checked against the JWK schema before insertion.
 * - A key verifies only until its `verify_until` (set when the worker rotates it away), as locally:
 *   the row's JWK is stored without a window and read back with `exp` from `verify_until`, so a
 *   verifier that loaded the key before the rotation refuses it after its window too.
 * - What is published is trusted: whoever can write `warden_public_keys` can mint grants. A
 *   deployment that cannot give workers a database only Warden writes should use one key from a
 *   key source instead (`WARDEN_SIGNING_KEY_FILE`, static-keystore.ts), which ignores published keys.
 */
import { JwksSchema, keyWindowEnd, PublicJwkSchema, type Jwks, type PublicJwk, type SigningAlg } from './claims';
import type { Clock } from './clock';
import type { JwtSigner, KeyInfo, Keystore } from './keystore';
import type { SqlDatabase } from '../state/sql-database';
import type { ByteSigner } from '../attestation/dsse';

/** Publishes the local keystore's public keys (insert, or update their verification window). */
export async function publishCredentialKeys(db: SqlDatabase, keystore: Keystore, workerId: string): Promise<void> {
  const windows = new Map(keystore.list().map((k) => [k.kid, k.verifyUntil ?? null]));
  const now = new Date(keystore.clock()).toISOString();
  for (const { exp: _window, ...jwk } of keystore.jwks().keys) {
    const checked = PublicJwkSchema.parse(jwk);
    await db.run(
      `INSERT INTO warden_public_keys (kid, purpose, jwk, worker, published_at, verify_until) VALUES ($1, 'credential', $2, $3, $4, $5)
       ON CONFLICT (kid) DO UPDATE SET verify_until = excluded.verify_until`,
      [checked.kid, JSON.stringify(checked), workerId, now, windows.get(checked.kid) ?? null],
    );
  }
}

/** Credential keys published by any worker that still verify at `now` (epoch ms). */
export async function readPublishedCredentialKeys(db: SqlDatabase, now: number): Promise<PublicJwk[]> {
  const rows = await db.all<{ jwk: string; verify_until: string | null }>("SELECT jwk, verify_until FROM warden_public_keys WHERE purpose = 'credential' ORDER BY kid");
  const keys: PublicJwk[] = [];
  for (const row of rows) {
    if (row.verify_until !== null && Date.parse(row.verify_until) <= now) continue;
    const parsed = PublicJwkSchema.safeParse(JSON.parse(row.jwk));
    // A row that is not a well-formed public key is never trusted (and never crashes verification).
    if (!parsed.success) continue;
    const { exp: _stored, ...jwk } = parsed.data;
    keys.push(row.verify_until === null ? jwk : { ...jwk, exp: keyWindowEnd(row.verify_until) });
  }
  return keys;
}

class SharedKeystore implements Keystore {
  private published: PublicJwk[] = [];

  constructor(
    private readonly local: Keystore,
    private readonly db: SqlDatabase,
    private readonly workerId: string,
  ) {}

  get dir(): string {
    return this.local.dir;
  }

  get clock(): Clock {
    return this.local.clock;
  }

  activeKid(): string {
    return this.local.activeKid();
  }

  list(): KeyInfo[] {
    return this.local.list();
  }

  /** The local keys that still verify, plus every other worker's published key. */
  jwks(): Jwks {
    const own = this.local.jwks();
    const kids = new Set(own.keys.map((k) => k.kid));
    return JwksSchema.parse({ keys: [...own.keys, ...this.published.filter((k) => !kids.has(k.kid))] });
  }

  signer(): JwtSigner {
    return this.local.signer();
  }

  byteSigner(): ByteSigner {
    return this.local.byteSigner();
  }

  async rotate(options: { maxTokenLifetimeMs: number; alg?: SigningAlg }): Promise<KeyInfo> {
    const info = await this.local.rotate(options);
    await publishCredentialKeys(this.db, this.local, this.workerId);
    await this.loadPublished();
    return info;
  }

  async reload(): Promise<void> {
    await this.local.reload();
    await this.loadPublished();
  }

  /** Always re-reads the published keys (a verifier calls this on an unknown kid, at most once a second per kid). */
  async refresh(): Promise<boolean> {
    const before = this.jwks().keys.map((k) => k.kid).join(',');
    await this.local.refresh();
    await this.loadPublished();
    return this.jwks().keys.map((k) => k.kid).join(',') !== before;
  }

  private async loadPublished(): Promise<void> {
    this.published = await readPublishedCredentialKeys(this.db, this.local.clock());
  }
}

/**
 * Publishes `local`'s public keys to `db` and returns a keystore that signs with `local` and
 * verifies with every worker's published keys.
 */
export async function openSharedKeystore(local: Keystore, db: SqlDatabase, workerId: string): Promise<Keystore> {
  await publishCredentialKeys(db, local, workerId);
  const shared = new SharedKeystore(local, db, workerId);
  await shared.reload();
  return shared;
}
