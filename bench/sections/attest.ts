/**
 * `attest`: the time Warden takes to check and sign one claim of each kind, end to end as the
 * `attestClaim` activity does it (attestation/claim-verification.ts): the verifier's own
 * credential minted and verified (SQLite replay and revocation stores), the check against the
 * committed state through the confined fs open, the SQL broker's read-only query, the
 * `http.fetch` capability to a loopback server, a test re-run in the OS sandbox (bubblewrap) or
 * the recorded steps, a `claim-verdict` record appended to a custody ledger, and the in-toto
 * Statement signed in a DSSE envelope. Each figure sits next to the same check done bare (read
 * and hash, better-sqlite3 count, plain fetch, plain `node --test`, the history scan without
 * credential, custody or signature), interleaved. Also: `warden attest verify`'s offline check
 * of one envelope against the JWKS.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { verifyAndAttestClaim, type AttestClaimInput } from '../../attestation/claim-verification';
import { openStatement } from '../../attestation/in-toto-statement';
import { findToolCall } from '../../attestation/tool-called';
import { CustodyLedger } from '../../custody/ledger';
import { openCredentialStores } from '../../identity/credential-stores';
import { openKeystore } from '../../identity/keystore';
import { hashIntent, issueTaskGrant } from '../../identity/task-grant';
import { osSandboxProblem } from '../../sandbox/os/sandboxed-process';
import type { StepRecord, TaskResult } from '../../task/task-run';
import { TaskSchema } from '../../task/task-schema';
import { figure, type BenchSection, type Figure } from '../bench-section';
import { interleave, summarize } from '../stats';

const run = promisify(execFile);

const TEST_FILE = `const test = require('node:test');
const assert = require('node:assert');
test('sum', () => assert.strictEqual(1 + 1, 2));
`;

function steps(n: number): StepRecord[] {
  return Array.from({ length: n }, (_, index) => ({
    index,
    turn: index,
    kind: 'tool' as const,
    tool: index % 2 === 0 ? 'fs.read' : 'sql.exec',
    args: index % 2 === 0 ? { path: `f${index}.txt` } : { database: 'app', sql: `DELETE FROM items WHERE id = ${index}`, params: [] },
    decision: 'allow' as const,
    reason: '',
    executed: true,
    startedAt: '',
    durationMs: 0,
  }));
}

export const attestSection: BenchSection = {
  name: 'attest',
  // Not one of issue 17's figures: runs when named (`npm run bench -- attest`).
  runByDefault: false,
  title: 'check + sign one claim per kind (credential, committed state, custody, DSSE) vs the same check done bare',
  async run({ quick, tmpDir, log }) {
    const dir = join(tmpDir, 'attest');
    const workspace = join(dir, 'workspace');
    mkdirSync(workspace, { recursive: true });
    const report = Buffer.alloc(256 * 1024, 'warden attests what it checked\n');
    writeFileSync(join(workspace, 'report.md'), report);
    writeFileSync(join(workspace, 'sum.test.js'), TEST_FILE);
    const database = join(dir, 'app.db');
    const db = new Database(database);
    db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, status TEXT); CREATE INDEX items_status ON items (status)");
    const insert = db.prepare('INSERT INTO items (status) VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 10_000; i++) insert.run(i % 3 === 0 ? 'closed' : 'open');
    })();
    const openCount = (db.prepare("SELECT count(*) AS n FROM items WHERE status = 'open'").get() as { n: number }).n;
    db.close();
    const server = createServer((_req, res) => {
      res.statusCode = 200;
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;

    const stateDir = join(dir, 'state');
    const stores = openCredentialStores({ stateDir });
    const ledger = CustodyLedger.open({ stateDir });
    try {
      const keystore = await openKeystore({ stateDir });
      const grants = { tools: ['fs.read', 'sql.exec', 'proc.run'], subagents: [], hosts: [host], databases: ['app'], commands: ['node'] };
      const grant = await issueTaskGrant(keystore, {
        workflowId: 'warden-bench-attest',
        user: 'bench@example.com',
        intentHash: hashIntent('benchmark'),
        agent: { name: 'bench', model: { id: 'scripted', version: '1' } },
        grants,
        expiresAt: Date.now() + 3_600_000,
      });
      await stores.grants.saveGrant(grant);
      const task = TaskSchema.parse({
        user: 'bench@example.com',
        intent: 'benchmark',
        agent: { name: 'bench', model: { driver: 'scripted', script: [{ final: 'x' }] } },
        tools: { builtin: ['fs.read', 'sql.exec', 'proc.run'] },
        grants,
        resources: { workspace, databases: { app: database }, hosts: [host] },
        attestation: { tests: [{ command: 'node', args: ['--test', 'sum.test.js'] }] },
      });
      const recorded: Pick<TaskResult, 'workflowId' | 'steps' | 'children'> = { workflowId: 'warden-bench-attest', steps: steps(200), children: [] };
      const deps = { keystore, stores, stateDir, protectedPaths: [stateDir], protectedFiles: [], ledger };
      let sequence = 0;
      const input = (claim: unknown): AttestClaimInput => ({
        rootWorkflowId: 'warden-bench-attest',
        rootRunId: 'run-1',
        task,
        committed: true,
        taskStatus: 'completed',
        claimant: { workflowId: 'warden-bench-attest', runId: 'run-1', agent: 'bench', model: { id: 'scripted', version: '1' }, grantId: grant.id },
        // A new index per sample: each check is a new claim (a repeated one returns its recorded verdict).
        index: sequence++,
        claim,
        ...((claim as { kind?: string }).kind === 'tool.called' ? { recorded } : {}),
      });

      const digest = createHash('sha256').update(report).digest('hex');
      const sandboxProblem = osSandboxProblem();
      const hasBwrap = sandboxProblem === undefined;
      const kinds: { kind: string; claim: unknown; bare: () => Promise<unknown> | unknown; samples: number }[] = [
        { kind: 'file.sha256', claim: { kind: 'file.sha256', path: 'report.md', sha256: digest }, bare: () => createHash('sha256').update(readFileSync(join(workspace, 'report.md'))).digest('hex'), samples: 200 },
        { kind: 'file.contains', claim: { kind: 'file.contains', path: 'report.md', text: 'warden attests' }, bare: () => readFileSync(join(workspace, 'report.md'), 'utf8').includes('warden attests'), samples: 200 },
        {
          kind: 'sql.count',
          claim: { kind: 'sql.count', database: 'app', table: 'items', where: { status: 'open' }, equals: openCount },
          bare: () => {
            const d = new Database(database, { readonly: true });
            try {
              return d.prepare("SELECT count(*) AS n FROM items WHERE status = 'open'").get();
            } finally {
              d.close();
            }
          },
          samples: 200,
        },
        { kind: 'http.status', claim: { kind: 'http.status', url: `http://${host}/health`, status: 200 }, bare: async () => (await fetch(`http://${host}/health`)).status, samples: 200 },
        { kind: 'tool.called', claim: { kind: 'tool.called', tool: 'sql.exec', args: { sql: 'DELETE FROM items WHERE id = 199' } }, bare: () => findToolCall(recorded, 'sql.exec', { sql: 'DELETE FROM items WHERE id = 199' }), samples: 200 },
        ...(hasBwrap
          ? [{ kind: 'tests.pass', claim: { kind: 'tests.pass', command: 'node', args: ['--test', 'sum.test.js'] }, bare: () => run(process.execPath, ['--test', 'sum.test.js'], { cwd: workspace, env: { PATH: process.env['PATH'] ?? '' } }), samples: 20 }]
          : []),
      ];
      const figures: Figure[] = [];
      let lastEnvelope: unknown;
      for (const k of kinds) {
        log(`attest: ${k.kind}`);
        const samples = quick ? Math.max(5, Math.round(k.samples / 4)) : k.samples;
        const timings = await interleave(quick ? 2 : 5, samples, {
          warden: async () => {
            const outcome = await verifyAndAttestClaim(deps, input(k.claim));
            if (outcome.verdict !== 'verified') throw new Error(`the ${k.kind} claim was ${outcome.verdict}: ${outcome.reason}`);
            lastEnvelope = outcome.envelope;
          },
          bare: k.bare,
        });
        figures.push(
          figure(`attest.${k.kind}`, `${k.kind}: check + custody + sign`, summarize(timings.warden), {
            baseline: { label: 'the same check, bare', summary: summarize(timings.bare) },
          }),
        );
      }
      const jwks = keystore.jwks();
      const offline = await interleave(20, quick ? 200 : 1000, { verify: () => openStatement(lastEnvelope, jwks) });
      figures.push(figure('attest.verify-offline', 'attest verify: one envelope against the JWKS', summarize(offline.verify)));
      return {
        figures,
        notes: [
          `file claims on a 256 KiB committed file; sql.count over 10,000 rows (indexed condition); http.status to a loopback server; tool.called over 200 recorded steps; tests.pass re-runs \`node --test\` of one file in bubblewrap (an overlay per run).`,
          hasBwrap ? 'tests.pass baseline: the same `node --test` outside the sandbox, with a clean environment as in it.' : `tests.pass skipped: ${sandboxProblem}`,
          'custom (user-defined) verifiers are not measured here: their cost is the sandbox section\'s call plus the check they run.',
        ],
      };
    } finally {
      ledger.close();
      stores.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  },
};
