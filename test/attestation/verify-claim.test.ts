/**
 * Each claim kind, true and false, checked by `verifyClaim` against real parts: files on disk,
 * a SQLite database, an HTTP server on loopback and a real test process. A verified claim is
 * signed and its envelope verifies offline; a refuted one is never signed.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync, mkdirSync, symlinkSync, realpathSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readConfinedFileBytes } from '../../sandbox/capabilities/fs-capability';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attestClaim, type AttestedRun } from '../../attestation/claim-attestation';
import { byteSignerFromKey } from '../../attestation/dsse';
import { openStatement, sha256Hex } from '../../attestation/in-toto-statement';
import { verifyClaim, type ClaimVerifierMeans } from '../../attestation/verify-claim';
import type { PublicJwk } from '../../identity/claims';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-claims-')));
const workspace = join(dir, 'workspace');
let server: Server;
let base = '';
let means: ClaimVerifierMeans;

beforeAll(async () => {
  mkdirSync(workspace);
  writeFileSync(join(workspace, 'report.md'), '# Report\n42 rows deleted\n');
  writeFileSync(join(workspace, 'passing.test.js'), 'process.exit(require("./report-ok") ? 0 : 1)\n');
  writeFileSync(join(workspace, 'report-ok.js'), 'module.exports = true\n');
  writeFileSync(join(workspace, 'failing.test.js'), 'console.error("1 failed"); process.exit(3)\n');
  writeFileSync(join(dir, 'outside.md'), '# Report\n42 rows deleted\n');
  symlinkSync(join(dir, 'outside.md'), join(workspace, 'link-out.md'));
  const db = new Database(join(dir, 'app.db'));
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, status TEXT); INSERT INTO items (status) VALUES ('open'), ('open'), ('closed')");
  db.close();
  server = createServer((req, res) => {
    res.statusCode = req.url === '/health' ? 200 : 503;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  means = {
    // The fs capability's confined open, as Warden's verifier reads committed files.
    readFile: async (path) => readConfinedFileBytes({ root: workspace, read: true, write: false, list: false }, path),
    countRows: async (_database, sql, params) => {
      const d = new Database(join(dir, 'app.db'), { readonly: true });
      try {
        return (d.prepare(sql).get(...params) as { n: number }).n;
      } finally {
        d.close();
      }
    },
    httpStatus: async (url, method) => (await fetch(url, { method })).status,
    runTests: (command, args, cwd) =>
      new Promise((done) => {
        execFile(command, args, { cwd: join(workspace, cwd ?? '.') }, (error, stdout, stderr) => {
          done({ exitCode: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
        });
      }),
    // The task's tests, as its file declares them (attestation.tests).
    testCommands: [
      { command: process.execPath, args: ['passing.test.js'] },
      { command: process.execPath, args: ['failing.test.js'] },
    ],
    recorded: {
      workflowId: 'wf-1',
      steps: [{ index: 0, turn: 0, kind: 'tool', tool: 'fs.write', args: { path: 'report.md' }, decision: 'allow', reason: '', executed: true, startedAt: '', durationMs: 1 }],
      children: [],
    },
  };
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('claims checked against real state', () => {
  const reportDigest = sha256Hex('# Report\n42 rows deleted\n');
  const cases: Array<[string, unknown, 'verified' | 'refuted' | 'unverified']> = [
    ['file digest, true', { kind: 'file.sha256', path: 'report.md', sha256: reportDigest }, 'verified'],
    ['file digest, false', { kind: 'file.sha256', path: 'report.md', sha256: '0'.repeat(64) }, 'refuted'],
    ['file digest of a missing file', { kind: 'file.sha256', path: 'nope.md', sha256: reportDigest }, 'refuted'],
    ['file digest through a link out of the workspace', { kind: 'file.sha256', path: 'link-out.md', sha256: reportDigest }, 'unverified'],
    ['file digest of a folder', { kind: 'file.sha256', path: '.', sha256: reportDigest }, 'unverified'],
    ['file text, true', { kind: 'file.contains', path: 'report.md', text: '42 rows deleted' }, 'verified'],
    ['file text, false', { kind: 'file.contains', path: 'report.md', text: '43 rows deleted' }, 'refuted'],
    ['row count, true', { kind: 'sql.count', database: 'app', table: 'items', where: { status: 'open' }, equals: 2 }, 'verified'],
    ['row count, false', { kind: 'sql.count', database: 'app', table: 'items', equals: 42 }, 'refuted'],
    ['row count of a missing table', { kind: 'sql.count', database: 'app', table: 'ghosts', equals: 0 }, 'unverified'],
    ['http status, true', { kind: 'http.status', url: '/health', status: 200 }, 'verified'],
    ['http status, false', { kind: 'http.status', url: '/down', status: 200 }, 'refuted'],
    ['tests pass, true', { kind: 'tests.pass', command: process.execPath, args: ['passing.test.js'] }, 'verified'],
    ['tests pass, false', { kind: 'tests.pass', command: process.execPath, args: ['failing.test.js'] }, 'refuted'],
    // Which command is "the tests" is the task file's to say: a claimant's own command is never run.
    ['tests pass, a command the task does not declare', { kind: 'tests.pass', command: process.execPath, args: ['-e', '0'] }, 'unverified'],
    ['tests pass, a declared command with other arguments', { kind: 'tests.pass', command: process.execPath, args: ['passing.test.js', '--test-name-pattern=^none$'] }, 'unverified'],
    ['tests pass, a declared command in another folder', { kind: 'tests.pass', command: process.execPath, args: ['passing.test.js'], cwd: 'sub' }, 'unverified'],
    ['tool called, true', { kind: 'tool.called', tool: 'fs.write', args: { path: 'report.md' } }, 'verified'],
    ['tool called, false', { kind: 'tool.called', tool: 'sql.exec' }, 'refuted'],
    ['a sentence', 'the tests pass', 'unverified'],
    ['a custom claim with no verifier', { kind: 'custom', verifier: 'audit', params: {} }, 'unverified'],
  ];
  it.each(cases)('%s', async (_name, raw, verdict) => {
    const claim = typeof raw === 'object' && raw !== null && (raw as { kind?: string }).kind === 'http.status' ? { ...(raw as object), url: `${base}${(raw as { url: string }).url}`, method: 'GET' } : raw;
    const check = await verifyClaim(claim as never, means);
    expect(check.verdict, check.reason).toBe(verdict);
  });

  it('a task that declares no test command verifies no tests.pass claim', async () => {
    const check = await verifyClaim({ kind: 'tests.pass', command: process.execPath, args: ['passing.test.js'] }, { ...means, testCommands: [] });
    expect(check).toMatchObject({ verdict: 'unverified', reason: expect.stringMatching(/attestation\.tests/) });
  });

  it('a refuted test claim says what Warden saw, from its own run', async () => {
    const check = await verifyClaim({ kind: 'tests.pass', command: process.execPath, args: ['failing.test.js'] }, means);
    expect(check.observed).toMatchObject({ exitCode: 3, stderrTail: expect.stringContaining('1 failed') });
  });
});

describe('attesting', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as object), kid: 'k1', alg: 'EdDSA', use: 'sig' } as PublicJwk;
  const signer = byteSignerFromKey(privateKey, 'k1');
  const run: AttestedRun = { workflowId: 'wf-1', runId: 'run-1', user: 'alice@example.com', intentHash: 'ab'.repeat(32), agentId: 'agent:scribe@wf-1', model: { id: 'm', version: '1' } };

  it('signs a verified claim with the file digest and the run as subjects', async () => {
    const check = await verifyClaim({ kind: 'file.contains', path: 'report.md', text: '42 rows' }, means);
    const envelope = await attestClaim(check, run, '2026-11-30T00:00:00.000Z', signer, { seq: 7, hash: 'cd'.repeat(32) });
    const { statement } = openStatement(envelope, { keys: [jwk] });
    expect(statement.subject.map((s) => s.name)).toEqual(['file:report.md', 'workflow:wf-1', 'custody:7']);
    expect(statement.subject[0]!.digest.sha256).toBe(sha256Hex('# Report\n42 rows deleted\n'));
    expect(statement.predicateType).toBe('https://warden.dev/attestation/claim/file.contains/v1');
    expect(statement.predicate).toMatchObject({ verdict: 'verified', run: { runId: 'run-1' } });
  });

  it('never signs a refuted or unverified claim', async () => {
    for (const claim of [{ kind: 'tool.called', tool: 'sql.exec' } as const, 'the tests pass']) {
      expect(await attestClaim(await verifyClaim(claim, means), run, '2026-11-30T00:00:00.000Z', signer)).toBeUndefined();
    }
  });
});
