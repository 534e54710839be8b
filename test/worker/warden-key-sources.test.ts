/**
 * Attack: Warden's own secrets and evidence that live outside the state folder, named by the
 * worker's configuration, are not among the resources it keeps from agents:
 *  - `WARDEN_SIGNING_KEY_FILE`, the one private key every worker of a fleet signs credentials
 *    with: a task whose workspace holds it (e.g. a deployment folder) reads it with `fs.read`,
 *    and the private scalar lands in the tool output, the result and the history;
 *  - `WARDEN_CUSTODY_WITNESS`, the folder signed tree heads are published to so a cut or
 *    re-signed ledger shows: a task whose workspace is that folder rewrites `jwks.json` (the keys
 *    `warden audit verify --checkpoint` pins) and its commit makes that real.
 *
 * Expected: both are protected like the keystore and the approvers' key folder: a task whose
 * workspace or database reaches them is refused (ERR_RESOURCE_PROTECTED), and the fs capability
 * never serves them under any path.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let deploy: string;
let witness: string;
let d: string;
const saved = { key: process.env.WARDEN_SIGNING_KEY_FILE, witness: process.env.WARDEN_CUSTODY_WITNESS };

beforeAll(async () => {
  deploy = mkdtempSync(join(tmpdir(), 'warden-attack-deploy-'));
  mkdirSync(join(deploy, 'secrets'));
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  d = jwk.d!;
  writeFileSync(join(deploy, 'secrets', 'signing.jwk'), JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }), { mode: 0o600 });
  writeFileSync(join(deploy, 'README.md'), 'deployment notes');
  witness = join(mkdtempSync(join(tmpdir(), 'warden-attack-witness-')), 'heads');
  mkdirSync(witness);
  process.env.WARDEN_SIGNING_KEY_FILE = join(deploy, 'secrets', 'signing.jwk');
  process.env.WARDEN_CUSTODY_WITNESS = `${witness}/`;
  env = await startWardenTestEnv();
});
afterAll(async () => {
  await env?.close();
  if (saved.key === undefined) delete process.env.WARDEN_SIGNING_KEY_FILE;
  else process.env.WARDEN_SIGNING_KEY_FILE = saved.key;
  if (saved.witness === undefined) delete process.env.WARDEN_CUSTODY_WITNESS;
  else process.env.WARDEN_CUSTODY_WITNESS = saved.witness;
});

describe('the fleet signing key (WARDEN_SIGNING_KEY_FILE) inside a workspace', () => {
  let result: TaskResult;
  beforeAll(async () => {
    result = await env.runTask({
      user: 'mallory@example.com',
      intent: 'summarise the deployment notes',
      agent: {
        name: 'reader',
        model: { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'README.md' } }, { tool: 'fs.read', args: { path: 'secrets/signing.jwk' } }, { final: 'done' }] },
      },
      tools: { builtin: ['fs.read'] },
      grants: { tools: ['fs.read'] },
      limits: { onDeny: 'continue' },
      resources: { workspace: deploy },
    });
  });

  it('is refused: the task before it starts, or the read', () => {
    const refused = result.reason?.includes('ERR_RESOURCE_PROTECTED') === true || result.steps[1]?.error?.code === 'ERR_PATH_OUTSIDE_WORKSPACE';
    expect(refused ? 'refused' : `read: ${JSON.stringify(result.steps[1]?.output).slice(0, 40)}…`).toBe('refused');
  });

  it('never puts the private key into the result or the history', async () => {
    expect(JSON.stringify(result)).not.toContain(d);
    const history = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
    expect(JSON.stringify(history)).not.toContain(d);
  });
});

describe('the custody witness folder (WARDEN_CUSTODY_WITNESS) as a workspace', () => {
  it('is refused, and the keys it pins are not rewritten by an agent', async () => {
    const forgedKeys = JSON.stringify({ keys: [{ kty: 'OKP', crv: 'Ed25519', x: 'A'.repeat(43), kid: 'B'.repeat(43) }] });
    const result = await env.runTask({
      user: 'mallory@example.com',
      intent: 'tidy the folder',
      agent: { name: 'tidy', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'jwks.json', content: forgedKeys } }, { final: 'done' }] } },
      tools: { builtin: ['fs.write'] },
      grants: { tools: ['fs.write'] },
      resources: { workspace: witness },
    });
    const pinned = existsSync(join(witness, 'jwks.json')) ? readFileSync(join(witness, 'jwks.json'), 'utf8') : '';
    expect(pinned).not.toContain('B'.repeat(43));
    expect(result.reason ?? `status ${result.status}`).toMatch(/ERR_RESOURCE_PROTECTED/);
  });
});
