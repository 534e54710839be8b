/**
 * Cost of Warden's per-call credential: mint (sign a fresh JWT) + verify at the tool host
 * (header checks, jose signature and claim checks, scope, revocation lookup, replay-store insert
 * into the SQLite file), next to raw node:crypto Ed25519 sign + verify of the same number of bytes.
 * Run: node --require tsx/cjs bench/credential.bench.ts [iterations]
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mintCallCredential } from '../identity/credential';
import { createMemoryCredentialStores, openCredentialStores, type CredentialStores } from '../identity/credential-stores';
import { openKeystore } from '../identity/keystore';
import { hashIntent, issueTaskGrant } from '../identity/task-grant';
import { createCredentialVerifier } from '../identity/verify-credential';
import { percentile, summarize } from './stats';

const WARMUP = 200;

async function main(): Promise<void> {
  const iterations = Number(process.argv[2] ?? 2000);
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-bench-credential-'));
  const sqlite = openCredentialStores({ stateDir });
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

    const measureWarden = async (stores: CredentialStores) => {
      // The host side sees only the public JWKS, as the sandbox host will.
      const verifier = createCredentialVerifier({ keys: keystore.jwks(), replayStore: stores.replay, revocationStore: stores.revocation });
      const mint: number[] = [];
      const check: number[] = [];
      const total: number[] = [];
      for (let i = 0; i < WARMUP + iterations; i += 1) {
        const t0 = performance.now();
        const { token } = await mintCallCredential(keystore, grant, call);
        const t1 = performance.now();
        await verifier.verify(token, { tool: call.tool, requiredScope: call.scope });
        const t2 = performance.now();
        if (i >= WARMUP) {
          mint.push(t1 - t0);
          check.push(t2 - t1);
          total.push(t2 - t0);
        }
      }
      return { mint, check, total };
    };

    // Raw node:crypto over a signing input of the same size as a real credential's.
    const sample = await mintCallCredential(keystore, grant, call);
    const signingInput = Buffer.from(sample.token.slice(0, sample.token.lastIndexOf('.')));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const raw: number[] = [];
    for (let i = 0; i < WARMUP + iterations; i += 1) {
      const t0 = performance.now();
      const signature = sign(null, signingInput, privateKey);
      if (!verify(null, signingInput, publicKey, signature)) throw new Error('raw verify failed');
      if (i >= WARMUP) raw.push(performance.now() - t0);
    }

    const onSqlite = await measureWarden(sqlite);
    const inMemory = await measureWarden(createMemoryCredentialStores());

    const median = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 50);
    const p99 = (xs: number[]) => percentile([...xs].sort((a, b) => a - b), 99);
    console.log(`credential: ${sample.token.length} chars, signing input ${signingInput.length} bytes, EdDSA (Ed25519), ${iterations} iterations after ${WARMUP} warm-up`);
    console.log(summarize('raw node:crypto Ed25519 sign + verify', raw));
    console.log(summarize('warden mint (jose SignJWT)', onSqlite.mint));
    console.log(summarize('warden verify (checks + jose + SQLite revocation lookup + replay insert)', onSqlite.check));
    console.log(summarize('warden mint + verify, SQLite stores', onSqlite.total));
    console.log(summarize('warden mint + verify, in-memory stores', inMemory.total));
    console.log(
      `ratio warden (SQLite) / raw node:crypto: median ${(median(onSqlite.total) / median(raw)).toFixed(1)}x, p99 ${(p99(onSqlite.total) / p99(raw)).toFixed(1)}x`,
    );
  } finally {
    sqlite.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
