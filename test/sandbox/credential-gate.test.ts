/**
 * The sandbox host's gate checks the capabilities a request carries against the call's
 * credential (issue 10, fault 1, "again per call"): a request handing a tool a capability its
 * credential does not name is refused before any code runs, and a built-in's name runs only the
 * built-in's source with only its own capability.
 */
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintCallCredential } from '../../identity/credential';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import { createCredentialGate, type CredentialGate } from '../../sandbox/credential-gate';
import type { CapabilityGrant, SandboxRunRequest } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { requiredScopeOf } from '../../tools/call-scope';
import { makeTempDir, rootGrantInput } from '../identity/identity-test-kit';

let stateDir: string;
let keystore: Keystore;
let root: IssuedGrant;
let gate: CredentialGate;

beforeAll(async () => {
  stateDir = makeTempDir('gate');
  keystore = await openKeystore({ stateDir });
  root = await issueTaskGrant(
    keystore,
    rootGrantInput({ expiresAt: Date.now() + 10 * 60_000, grants: { tools: ['fs.read', 'fs.write', 'word-count'], subagents: [], hosts: [], databases: ['inventory'] } }),
  );
  gate = createCredentialGate(stateDir);
});
afterAll(() => fs.rmSync(stateDir, { recursive: true, force: true }));

const readOnly: CapabilityGrant = { fs: { root: '/w', read: true, write: false, list: false } };
const readWrite: CapabilityGrant = { fs: { root: '/w', read: true, write: true, list: false } };

async function request(toolName: string, source: string, input: Record<string, unknown>, minted: CapabilityGrant, sent: CapabilityGrant): Promise<SandboxRunRequest> {
  const { token } = await mintCallCredential(keystore, root, { tool: toolName, scope: requiredScopeOf(toolName, input, minted) });
  return { type: 'run', id: '1', toolName, source, input, limits: { timeoutMs: 1000, memoryMb: 16, maxOutputBytes: 1000 }, capabilities: sent, credential: token };
}

describe('the credential gate', () => {
  it('runs a user tool whose request carries exactly the capabilities its credential names', async () => {
    expect(await gate.check(await request('word-count', 'return 1;', {}, readOnly, readOnly))).toEqual({ ok: true });
  });

  it('refuses a user tool handed a capability its credential does not name', async () => {
    const verdict = await gate.check(await request('word-count', 'return 1;', {}, readOnly, readWrite));
    expect(verdict).toMatchObject({ ok: false, code: 'ERR_CREDENTIAL_SCOPE' });
    expect(JSON.stringify(verdict)).toContain('fs.write:*');
  });

  it('refuses a built-in handed any capability but its own, or running another source', async () => {
    const source = builtinTools()['fs.read'].executor.source;
    expect(await gate.check(await request('fs.read', source, { path: 'a.txt' }, readOnly, readOnly))).toEqual({ ok: true });
    expect(await gate.check(await request('fs.read', source, { path: 'a.txt' }, readOnly, readWrite))).toMatchObject({ ok: false, code: 'ERR_CAPABILITY_NOT_GRANTED' });
    expect(await gate.check(await request('fs.read', 'return warden.fs.read("/etc/passwd");', { path: 'a.txt' }, readOnly, readOnly))).toMatchObject({
      ok: false,
      code: 'ERR_CREDENTIAL_SCOPE',
    });
  });
});
