/**
 * Two workers with separate state folders and one shared PostgreSQL database (issue 12): a grant
 * issued on one is found, delegated and minted from on the other, credentials verify across
 * them and are accepted once fleet-wide, and a task ended on either stops its credentials at
 * every sandbox host. The reproduced fault (a grant unknown to the other worker, so steps failed
 * with ERR_CREDENTIAL_REVOKED) is the first case.
 */
import { exportJWK, generateKeyPair } from 'jose';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential } from '../../identity/credential';
import { openCredentialAuthority, type CredentialAuthority } from '../../identity/credential-authority';
import { issueTaskGrant, verifyTaskGrant } from '../../identity/task-grant';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { createCredentialGate } from '../../sandbox/credential-gate';
import { SANDBOX_PROBE_CALL } from '../../sandbox/sandbox-messages';
import { getBuiltinTool } from '../../tools/builtin-tools';
import { openStateStore, type StateStore } from '../../state/state-store';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { childGrantInput, codeOf, foreignEd25519Key, makeTempDir, rootGrantInput, signCompact } from './identity-test-kit';

let pg: TestDatabase;
const opened: { close(): Promise<void> }[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  pg = await createTestDatabase();
}, 120_000);
afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
  await pg?.drop();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function worker(name: string, env: NodeJS.ProcessEnv = {}): Promise<CredentialAuthority & { stateDir: string; state: StateStore }> {
  const stateDir = makeTempDir(`worker-${name}`);
  dirs.push(stateDir);
  const fullEnv = { WARDEN_DATABASE_URL: pg.url, WARDEN_WORKER_ID: name, ...env };
  const state = await openStateStore({ stateDir, env: fullEnv });
  opened.push(state);
  const authority = await openCredentialAuthority({ stateDir, env: fullEnv, state });
  opened.push(authority);
  return { ...authority, stateDir, state };
}

function callOf(token: string) {
  const source = getBuiltinTool('fs.read')!.executor.source;
  return { ...SANDBOX_PROBE_CALL, type: 'run' as const, id: 'c1', toolName: 'fs.read', source, input: { path: 'notes.txt' }, credential: token };
}

describe('two workers sharing one database', () => {
  it('find, delegate and mint from each other’s grants; credentials verify across workers and are accepted once', async () => {
    const a = await worker('a');
    const b = await worker('b');
    expect(a.keystore.activeKid()).not.toBe(b.keystore.activeKid());
    const root = await issueTaskGrant(a.keystore, rootGrantInput({ expiresAt: Date.now() + 10 * 60_000 }));
    await a.stores.grants.saveGrant(root);

    // B never issued it, yet knows it and trusts A's signature.
    const onB = await b.stores.grants.getGrant(root.id);
    expect(onB?.hash).toBe(root.hash);
    expect((await verifyTaskGrant(root.token, b.keystore)).id).toBe(root.id);
    const child = await issueTaskGrant(b.keystore, childGrantInput(root, 'reviewer', { expiresAt: Date.now() + 5 * 60_000 }));
    await b.stores.grants.saveGrant(child);
    expect(await a.stores.grants.chainTokens(child.id)).toEqual([root.token, child.token]);

    // A credential minted on B from A's grant, checked on A: once.
    const credential = await mintCallCredential(b.keystore, root.token, { tool: 'fs.read', scope: ['fs.read:notes.txt'] });
    const onA = createCredentialVerifier({ keys: a.keystore, replayStore: a.stores.replay, revocationStore: a.stores.revocation });
    const onBVerifier = createCredentialVerifier({ keys: b.keystore, replayStore: b.stores.replay, revocationStore: b.stores.revocation });
    expect((await onA.verify(credential.token, { tool: 'fs.read', requiredScope: ['fs.read:notes.txt'] })).claims.grant).toBe(root.id);
    expect(await codeOf(onBVerifier.verify(credential.token, { tool: 'fs.read', requiredScope: ['fs.read:notes.txt'] }))).toBe('ERR_CREDENTIAL_REPLAYED');
  });

  it('a task ended on one worker stops its credentials at the other worker’s sandbox host gate', async () => {
    const a = await worker('a2');
    const b = await worker('b2');
    const root = await issueTaskGrant(a.keystore, rootGrantInput({ expiresAt: Date.now() + 10 * 60_000 }));
    await a.stores.grants.saveGrant(root);
    const gateOnA = createCredentialGate(a.stateDir, { databaseUrl: pg.url });
    const before = await mintCallCredential(a.keystore, root.token, { tool: 'fs.read', scope: ['fs.read:notes.txt'] });
    expect(await gateOnA.check(callOf(before.token))).toEqual({ ok: true });
    // B runs endTask for the task (as a worker that picked up the last activity would).
    await b.stores.revocation.revokeGrant(root.id, 'task completed');
    const after = await mintCallCredential(a.keystore, root.token, { tool: 'fs.read', scope: ['fs.read:notes.txt'] });
    expect(await gateOnA.check(callOf(after.token))).toMatchObject({ ok: false, code: 'ERR_CREDENTIAL_REVOKED' });
  });

  it('a rotation on one worker is published and verifies on the other at once; an unpublished key does not', async () => {
    const a = await worker('a3');
    const b = await worker('b3');
    await a.keystore.rotate({ maxTokenLifetimeMs: 60_000 });
    const grant = await issueTaskGrant(a.keystore, rootGrantInput({ expiresAt: Date.now() + 60_000 }));
    expect((await verifyTaskGrant(grant.token, b.keystore)).id).toBe(grant.id);
    const forged = signCompact({ alg: 'EdDSA', kid: 'x'.repeat(43), typ: 'warden-grant+jwt' }, { ...grant.claims }, foreignEd25519Key());
    expect(await codeOf(verifyTaskGrant(forged, b.keystore))).toBe('ERR_CREDENTIAL_KID_UNKNOWN');
  });

  it('with one key from WARDEN_SIGNING_KEY_FILE, every worker signs with it and keys published in the database are not trusted', async () => {
    const dir = makeTempDir('key-source');
    dirs.push(dir);
    const keyFile = path.join(dir, 'signing.jwk');
    const { privateKey } = await generateKeyPair('EdDSA', { extractable: true });
    fs.writeFileSync(keyFile, JSON.stringify(await exportJWK(privateKey)), { mode: 0o600 });
    const a = await worker('a4', { WARDEN_SIGNING_KEY_FILE: keyFile });
    const b = await worker('b4', { WARDEN_SIGNING_KEY_FILE: keyFile });
    expect(a.keySource).toBe(`key file ${keyFile}`);
    expect(a.keystore.activeKid()).toBe(b.keystore.activeKid());
    const grant = await issueTaskGrant(a.keystore, rootGrantInput({ expiresAt: Date.now() + 60_000 }));
    expect((await verifyTaskGrant(grant.token, b.keystore)).id).toBe(grant.id);

    // A worker with its own key publishes it; the key-source workers ignore it.
    const rogue = await worker('rogue');
    const rogueGrant = await issueTaskGrant(rogue.keystore, rootGrantInput({ expiresAt: Date.now() + 60_000 }));
    expect(await codeOf(verifyTaskGrant(rogueGrant.token, b.keystore))).toBe('ERR_CREDENTIAL_KID_UNKNOWN');
    expect(await codeOf(a.keystore.rotate({ maxTokenLifetimeMs: 0 }))).toBe('ERR_KEYSTORE_INVALID');

    fs.chmodSync(keyFile, 0o644);
    expect(await codeOf(worker('c4', { WARDEN_SIGNING_KEY_FILE: keyFile }))).toBe('ERR_SIGNING_KEY_FILE_INVALID');
  });

  it('never puts a private key into the database', async () => {
    await worker('a5');
    const rows = await pg.db.all<{ jwk: string }>('SELECT jwk FROM warden_public_keys');
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(Object.keys(JSON.parse(row.jwk))).not.toContain('d');
  });
});
