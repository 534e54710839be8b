/**
 * `credential`: Warden's per-call credential, minted (compact JWS, Ed25519, node:crypto via identity/compact-jws.ts) and verified at the
 * tool host (header and claim checks, node:crypto signature, scope, revocation lookup and replay-store
 * insert in the SQLite identity store), next to raw node:crypto Ed25519 sign + verify of the same
 * number of bytes, interleaved.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { join } from 'node:path';
import { mintCallCredential } from '../../identity/credential';
import { openCredentialStores } from '../../identity/credential-stores';
import { openKeystore } from '../../identity/keystore';
import { hashIntent, issueTaskGrant } from '../../identity/task-grant';
import { createCredentialVerifier } from '../../identity/verify-credential';
import { figure, type BenchSection } from '../bench-section';
import { interleaveWithin, summarize } from '../stats';

export const credentialSection: BenchSection = {
  name: 'credential',
  title: 'per-call credential mint + verify (SQLite stores) vs raw node:crypto Ed25519 sign + verify',
  async run({ quick, tmpDir }) {
    // As many interleaved pairs as fit the budget, never fewer than 500 (300 with --quick).
    const budget = quick ? { budgetMs: 1000, min: 300, max: 300 } : { budgetMs: 5000, min: 500, max: 2000 };
    const stateDir = join(tmpDir, 'credential');
    const stores = openCredentialStores({ stateDir });
    try {
      const keystore = await openKeystore({ stateDir });
      const grant = await issueTaskGrant(keystore, {
        workflowId: 'warden-bench-1',
        user: 'bench@example.com',
        intentHash: hashIntent('benchmark'),
        agent: { name: 'bench', model: { id: 'scripted', version: '1' } },
        grants: { tools: ['fs.read'], subagents: [], hosts: [], databases: [] },
        expiresAt: Date.now() + 3_600_000,
      });
      const call = { tool: 'fs.read', scope: ['fs.read:notes.txt'] };
      // The host side sees only the public JWKS, as the sandbox host does.
      const verifier = createCredentialVerifier({ keys: keystore.jwks(), replayStore: stores.replay, revocationStore: stores.revocation });
      const sample = await mintCallCredential(keystore, grant, call);
      const signingInput = Buffer.from(sample.token.slice(0, sample.token.lastIndexOf('.')));
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const { samples: timings, n: samples } = await interleaveWithin(quick ? 50 : 200, budget, {
        warden: async () => {
          const { token } = await mintCallCredential(keystore, grant, call);
          await verifier.verify(token, { tool: call.tool, requiredScope: call.scope });
        },
        raw: () => {
          if (!verify(null, signingInput, publicKey, sign(null, signingInput, privateKey))) throw new Error('raw verify failed');
        },
      });
      return {
        figures: [
          figure('credential.mint-verify', 'credential mint + verify (node:crypto JWS, SQLite replay + revocation)', summarize(timings.warden), {
            baseline: { label: 'node:crypto Ed25519 sign + verify', summary: summarize(timings.raw) },
          }),
        ],
        notes: [`credential ${sample.token.length} chars, signing input ${signingInput.length} bytes; ${samples} samples each (as many as fit ${budget.budgetMs / 1000} s, at least ${budget.min}, at most ${budget.max}), interleaved.`],
      };
    } finally {
      stores.close();
    }
  },
};
