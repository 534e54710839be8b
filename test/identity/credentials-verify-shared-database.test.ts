/**
 * `warden credentials verify` on a fleet with `WARDEN_DATABASE_URL`: a grant revoked on any worker
 * is in the shared database (`warden_revoked_grants`), so the command must check revocations
 * there, not in this state folder's identity.db (it did: a task ended on another worker still
 * verified as VALID). Real PostgreSQL; the revocation is written by the shared stores the workers use.
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { credentialsCommand } from '../../cli/commands/credentials';
import { openKeystore } from '../../identity/keystore';
import { createSqlCredentialStores } from '../../identity/sql-credential-stores';
import { issueTaskGrant } from '../../identity/task-grant';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { makeTempDir, rootGrantInput } from './identity-test-kit';

let stateDir: string;
let pg: TestDatabase;
beforeAll(async () => {
  stateDir = makeTempDir('cli-shared');
  pg = await createTestDatabase();
}, 300_000);
afterAll(async () => {
  await pg?.drop();
  fs.rmSync(stateDir, { recursive: true, force: true });
});

async function verify(token: string): Promise<{ code: number; stdout: string }> {
  let stdout = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: () => undefined, env: { WARDEN_STATE_DIR: stateDir, WARDEN_DATABASE_URL: pg.url } };
  return { code: await credentialsCommand(['verify', token], io), stdout };
}

describe('warden credentials verify with WARDEN_DATABASE_URL', () => {
  it('reports a grant revoked in the shared database as revoked', async () => {
    const keystore = await openKeystore({ stateDir });
    const task = await issueTaskGrant(keystore, rootGrantInput({ expiresAt: Date.now() + 10 * 60_000 }));
    expect((await verify(task.token)).code).toBe(0);
    const shared = createSqlCredentialStores({ db: pg.db });
    await shared.revocation.revokeGrant(task.id, 'task ended on another worker');
    const ended = await verify(task.token);
    expect(ended.code).toBe(1);
    expect(ended.stdout).toContain(`INVALID ERR_CREDENTIAL_REVOKED: grant ${task.id} was ended at`);
    expect(ended.stdout).toContain('task ended on another worker');
  }, 120_000);
});
