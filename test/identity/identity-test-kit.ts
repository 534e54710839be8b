/**
 * Shared pieces of the identity tests: real temp folders, a frozen clock, a fresh authority
 * (keystore + SQLite stores + verifier) per suite, and an attacker's toolbox that builds tokens
 * byte by byte with node:crypto (so no library "helpfully" refuses to build a bad one).
 */
import { createPrivateKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WardenError } from '../../errors';
import type { GrantClaims } from '../../identity/claims';
import { openCredentialStores, type CredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { hashIntent, issueTaskGrant, type IssuedGrant, type IssueTaskGrantInput } from '../../identity/task-grant';
import { createCredentialVerifier, type CredentialVerifier } from '../../identity/verify-credential';

/** 2026-11-25T10:00:00Z: every suite starts its frozen clock here. */
export const T0 = Date.parse('2026-11-25T10:00:00.000Z');

export function makeTempDir(prefix: string): string {
  return fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `warden-${prefix}-`)));
}

/** A clock that only moves when told to. */
export class FrozenClock {
  now = T0;
  readonly clock = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** The code of the WardenError `work` throws or rejects with, "ok" when it succeeds; anything else fails the test. */
export async function codeOf(work: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof work === 'function' ? work() : work);
    return 'ok';
  } catch (error) {
    if (error instanceof WardenError) return error.code;
    throw error;
  }
}

/** The error `work` rejects with (a WardenError), for message and details assertions. */
export async function errorOf(work: Promise<unknown> | (() => unknown)): Promise<WardenError> {
  try {
    await (typeof work === 'function' ? work() : work);
  } catch (error) {
    if (error instanceof WardenError) return error;
    throw error;
  }
  throw new Error('expected a WardenError, got success');
}

export const ROOT_GRANTS = {
  tools: ['fs.read', 'fs.write', 'http.fetch', 'sql.query', 'word-count'],
  subagents: ['reviewer', 'checker'],
  hosts: ['api.example.com'],
  databases: ['inventory'],
};

/** What `warden run` would issue for examples/hello.yaml, deadline ten minutes after T0. */
export function rootGrantInput(overrides: Partial<IssueTaskGrantInput> = {}): IssueTaskGrantInput {
  return {
    workflowId: 'warden-scribe-1',
    user: 'alice@example.com',
    intentHash: hashIntent('Count the words in notes.txt'),
    agent: { name: 'scribe', model: { id: 'scripted-scribe', version: '2026-11-25' } },
    grants: ROOT_GRANTS,
    limits: { maxSteps: 50, toolTimeoutMs: 5000, toolMemoryMb: 64 },
    expiresAt: T0 + 10 * 60_000,
    ...overrides,
  };
}

/** A sub-agent's grant request under `parent`. */
export function childGrantInput(parent: IssuedGrant, name: string, overrides: Partial<IssueTaskGrantInput> = {}): IssueTaskGrantInput {
  return {
    workflowId: `${parent.claims.workflow_id}/${name}-1`,
    intentHash: hashIntent(`Review as ${name}`),
    agent: { name, model: { id: `scripted-${name}`, version: '1' } },
    grants: { tools: ['fs.read'], subagents: ['checker'], hosts: [], databases: [] },
    limits: { maxSteps: 10, toolTimeoutMs: 5000, toolMemoryMb: 32 },
    expiresAt: parent.claims.exp * 1000,
    parent: { token: parent.token },
    ...overrides,
  };
}

export interface Authority {
  stateDir: string;
  time: FrozenClock;
  keystore: Keystore;
  stores: CredentialStores;
  verifier: CredentialVerifier;
  root: IssuedGrant;
  close(): void;
}

/** A fresh state folder with a keystore, SQLite stores, a verifier and a root task grant, all on one frozen clock. */
export async function createAuthority(prefix: string, alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<Authority> {
  const stateDir = makeTempDir(prefix);
  const time = new FrozenClock();
  const keystore = await openKeystore({ stateDir, alg, clock: time.clock });
  const stores = openCredentialStores({ stateDir, clock: time.clock });
  const verifier = createCredentialVerifier({ keys: keystore, replayStore: stores.replay, revocationStore: stores.revocation, clock: time.clock });
  const root = await issueTaskGrant(keystore, rootGrantInput());
  return {
    stateDir,
    time,
    keystore,
    stores,
    verifier,
    root,
    close: () => {
      stores.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

// ---- the attacker's toolbox -------------------------------------------------------------

export function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

export function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index] as string, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** The real private key of `kid`, read from the keystore folder (what an insider with file access could do). */
export function privateKeyOf(keystore: Keystore, kid: string): KeyObject {
  const jwk = JSON.parse(fs.readFileSync(path.join(keystore.dir, `${kid}.jwk.json`), 'utf8')) as Record<string, string>;
  const { kid: _kid, alg: _alg, ...key } = jwk;
  return createPrivateKey({ key, format: 'jwk' });
}

/** A key no Warden keystore knows. */
export function foreignEd25519Key(): KeyObject {
  return generateKeyPairSync('ed25519').privateKey;
}

/** A compact JWS with exactly `header` and `payload`, signed by `key` (Ed25519 or P-256) with node:crypto. */
export function signCompact(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature =
    key.asymmetricKeyType === 'ed25519' ? cryptoSign(null, Buffer.from(input), key) : cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** Re-signs a grant's claims (changed by `edit`) with `key`, as a `warden-grant+jwt`. */
export function resignGrant(keystore: Keystore, claims: GrantClaims, key: KeyObject, kid: string, edit: (c: GrantClaims) => GrantClaims = (c) => c): string {
  return signCompact({ alg: key.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'ES256', kid, typ: 'warden-grant+jwt' }, edit(structuredClone(claims)), key);
}

// ---- a second process ---------------------------------------------------------------------

export interface ChildReply {
  ok: boolean;
  code?: string;
  kid?: string;
  jti?: string;
}

/** A forked `identity-child.ts` (tsx) answering one request at a time. */
export class IdentityChild {
  private readonly child: ChildProcess;
  private pending: ((reply: ChildReply) => void)[] = [];

  constructor() {
    this.child = fork(path.join(__dirname, 'identity-child.ts'), [], {
      execArgv: ['--require', require.resolve('tsx/cjs')],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (reply) => this.pending.shift()?.(reply as ChildReply));
  }

  request(message: Record<string, unknown>): Promise<ChildReply> {
    return new Promise((resolve, reject) => {
      this.pending.push(resolve);
      this.child.send(message, (error) => {
        if (error) reject(error);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill();
    await exited;
  }
}
