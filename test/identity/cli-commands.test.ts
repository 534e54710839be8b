import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { credentialsCommand } from '../../cli/commands/credentials';
import { keysCommand } from '../../cli/commands/keys';
import { mintCallCredential } from '../../identity/credential';
import { openCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { findSecrets } from '../../identity/redact';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { makeTempDir, rootGrantInput } from './identity-test-kit';

let stateDir: string;
beforeAll(() => {
  stateDir = makeTempDir('cli');
});
afterAll(() => fs.rmSync(stateDir, { recursive: true, force: true }));

async function run(command: typeof keysCommand, argv: string[], dir = stateDir): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { WARDEN_STATE_DIR: dir } };
  const code = await command(argv, io);
  return { code, stdout, stderr };
}

describe('warden keys', () => {
  it('jwks prints the public key set (creating the first key), and nothing private', async () => {
    const { code, stdout } = await run(keysCommand, ['jwks']);
    expect(code).toBe(0);
    const jwks = JSON.parse(stdout);
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(findSecrets(stdout)).toEqual([]);
  });

  it('rotate makes a new key active and list shows both', async () => {
    const before = JSON.parse((await run(keysCommand, ['jwks'])).stdout).keys[0].kid as string;
    const rotated = await run(keysCommand, ['rotate', '--alg', 'ES256', '--verify-for', '30m']);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(new RegExp(`^active key: \\S{43} \\(ES256\\)\\nretired:    ${before}, verifies until \\S+Z\\n$`));
    const list = await run(keysCommand, ['list']);
    const lines = list.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/ES256 .* active$/);
    expect(lines[1]).toMatch(new RegExp(`^${before}  EdDSA  created \\S+  retired \\S+, verifies until \\S+$`));
    expect(JSON.parse((await run(keysCommand, ['jwks'])).stdout).keys).toHaveLength(2);
  });

  it.each([[[]], [['delete']], [['rotate', '--alg', 'RS256']], [['jwks', '--alg', 'ES256']], [['rotate', '--verify-for', 'forever']], [['list', 'extra']]])('%j is a usage error', async (argv) => {
    expect((await run(keysCommand, argv)).code).toBe(2);
  });
});

describe('warden credentials verify', () => {
  let keystore: Keystore;
  let grant: IssuedGrant;
  beforeAll(async () => {
    keystore = await openKeystore({ stateDir });
    grant = await issueTaskGrant(keystore, rootGrantInput({ expiresAt: Date.now() + 10 * 60_000 }));
  });
  const mint = (scope = ['fs.read:notes.txt']) => mintCallCredential(keystore, grant, { tool: 'fs.read', scope });

  it('explains a valid credential (act chain, scope, expiry in human terms) and exits 0 without using it up', async () => {
    const { token, claims } = await mint();
    const first = await run(credentialsCommand, ['verify', token, '--tool', 'fs.read', '--scope', 'fs.read:notes.txt']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('call credential');
    expect(first.stdout).toContain(`id (jti)   ${claims.jti}`);
    expect(first.stdout).toContain('audience   "tool:fs.read"');
    expect(first.stdout).toContain('scope      fs.read:notes.txt');
    expect(first.stdout).toContain('act chain  user:alice@example.com → agent:scribe@warden-scribe-1');
    expect(first.stdout).toMatch(/expires {4}\S+ \(in (59|60) s\)/);
    expect(first.stdout.trim().split('\n').at(-1)).toBe('VALID');
    expect((await run(credentialsCommand, ['verify', token, '--tool', 'fs.read'])).code).toBe(0);
    // Still unused: the tool host accepts it once, after which the CLI reports the replay.
    const stores = openCredentialStores({ stateDir });
    try {
      await createCredentialVerifier({ keys: keystore, replayStore: stores.replay, revocationStore: stores.revocation }).verify(token, { tool: 'fs.read', requiredScope: [] });
    } finally {
      stores.close();
    }
    const replayed = await run(credentialsCommand, ['verify', token]);
    expect(replayed.code).toBe(1);
    expect(replayed.stdout).toContain(`INVALID ERR_CREDENTIAL_REPLAYED: credential ${claims.jti} was already used`);
  });

  it('says which check fails: wrong tool, uncovered scope, expired', async () => {
    const { token } = await mint();
    const wrongTool = await run(credentialsCommand, ['verify', token, '--tool', 'fs.write']);
    expect([wrongTool.code, wrongTool.stdout.trim().split('\n').at(-1)]).toEqual([1, 'INVALID ERR_CREDENTIAL_AUDIENCE: audience "tool:fs.read" is not "tool:fs.write"']);
    const wrongScope = await run(credentialsCommand, ['verify', token, '--scope', 'fs.read:secrets.txt']);
    expect(wrongScope.stdout).toContain('INVALID ERR_CREDENTIAL_SCOPE');
    const past = await openKeystore({ stateDir, clock: () => Date.now() - 3 * 3_600_000 });
    const oldGrant = await issueTaskGrant(past, rootGrantInput({ expiresAt: Date.now() - 3 * 3_600_000 + 600_000 }));
    const old = await mintCallCredential(past, oldGrant, { tool: 'fs.read', scope: [] });
    const expired = await run(credentialsCommand, ['verify', old.token]);
    expect(expired.code).toBe(1);
    expect(expired.stdout).toMatch(/expires {4}\S+ \(3 h ago\)/);
    expect(expired.stdout).toContain('INVALID ERR_CREDENTIAL_EXPIRED');
  });

  it('explains a task grant and its revocation', async () => {
    const task = await issueTaskGrant(keystore, rootGrantInput({ expiresAt: Date.now() + 60_000 }));
    const ok = await run(credentialsCommand, ['verify', task.token]);
    expect([ok.code, ok.stdout.split('\n')[0]]).toEqual([0, 'task grant (claims as the token states them; verdict below)']);
    const stores = openCredentialStores({ stateDir });
    stores.revocation.revokeGrant(task.id, 'task completed');
    stores.close();
    const ended = await run(credentialsCommand, ['verify', task.token]);
    expect(ended.code).toBe(1);
    expect(ended.stdout).toContain(`INVALID ERR_CREDENTIAL_REVOKED: grant ${task.id} was ended at`);
  });

  it('--json gives one object; garbage and foreign keys are reported, not thrown', async () => {
    const { token } = await mint();
    const json = await run(credentialsCommand, ['verify', token, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, kind: 'call credential', header: { alg: keystore.signer().alg, typ: 'warden-call+jwt' }, claims: { aud: 'tool:fs.read' } });
    const garbage = await run(credentialsCommand, ['verify', 'not-a-token', '--json']);
    expect([garbage.code, JSON.parse(garbage.stdout).code]).toEqual([1, 'ERR_CREDENTIAL_MALFORMED']);
    const elsewhere = makeTempDir('cli-other');
    try {
      const noKeys = await run(credentialsCommand, ['verify', token], elsewhere);
      expect(noKeys.stdout).toContain('INVALID ERR_KEYSTORE_INVALID: no Warden keys under');
      await run(keysCommand, ['jwks'], elsewhere);
      const foreign = await run(credentialsCommand, ['verify', token], elsewhere);
      expect(foreign.stdout).toContain('INVALID ERR_CREDENTIAL_KID_UNKNOWN');
    } finally {
      fs.rmSync(elsewhere, { recursive: true, force: true });
    }
    expect((await run(credentialsCommand, ['verify'])).code).toBe(2);
    expect((await run(credentialsCommand, ['inspect', token])).code).toBe(2);
  });
});
