/**
 * Signed tree heads published outside the ledger (issue 9, fault 10): an attacker who can write
 * the ledger (and even use its signing key) cuts its tail or rewrites it so that the ledger alone
 * still verifies; `warden audit verify --checkpoint <witness>` must see it. Table-driven over the
 * two ledgers (the state folder's SQLite file, the shared PostgreSQL one) and the two witness
 * forms (folder, file).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/commands/audit';
import type { CliIo } from '../../cli/cli-io';
import { WARDEN_ATTR } from '../../custody/attributes';
import { readPublishedHeads } from '../../custody/checkpoint-witness';
import { KEY_DIR, type CheckpointRow, type RecordRow } from '../../custody/ledger';
import { checkpointSigningInput, GENESIS_HASH, recordHashWithCanonicalBody, recordLeafHash, recordSigningInput } from '../../custody/ledger-record';
import { MerkleFrontier, toHex } from '../../custody/merkle';
import { kidOf, loadOrCreateSigningKey, signBytes, type SigningKey } from '../../custody/signing-key';
import { setupTelemetry } from '../../telemetry/setup-telemetry';
import { createTestDatabase, type TestDatabase } from '../support/postgres';

let pg: TestDatabase;
const dirs: string[] = [];
beforeAll(async () => {
  pg = await createTestDatabase();
}, 120_000);
afterAll(async () => {
  await pg?.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Raw access to a ledger's tables: what an attacker with write access to its storage has. */
interface RawLedger {
  read(): Promise<{ rows: RecordRow[]; checkpoints: CheckpointRow[] }>;
  /** Replaces every record and checkpoint (and the stored Merkle head) with these. */
  write(rows: readonly RecordRow[], checkpoints: readonly CheckpointRow[]): Promise<void>;
  close(): Promise<void>;
}

function sqliteRaw(stateDir: string): RawLedger {
  const db = new Database(join(stateDir, 'custody.db'));
  return {
    async read() {
      return {
        rows: db.prepare('SELECT * FROM records ORDER BY seq').all() as RecordRow[],
        checkpoints: db.prepare('SELECT * FROM checkpoints ORDER BY id').all() as CheckpointRow[],
      };
    },
    async write(rows, checkpoints) {
      db.transaction(() => {
        db.exec('DELETE FROM records; DELETE FROM checkpoints; DELETE FROM merkle_frontier;');
        const insert = db.prepare(
          'INSERT INTO records (seq, record_key, task_id, workflow_id, kind, body, prev_hash, hash, signature, kid, appended_at) VALUES (@seq, @record_key, @task_id, @workflow_id, @kind, @body, @prev_hash, @hash, @signature, @kid, @appended_at)',
        );
        for (const row of rows) insert.run(row);
        const cp = db.prepare('INSERT INTO checkpoints (id, tree_size, root_hash, timestamp, reason, task_id, kid, signature) VALUES (@id, @tree_size, @root_hash, @timestamp, @reason, @task_id, @kid, @signature)');
        for (const c of checkpoints) cp.run(c);
      })();
    },
    async close() {
      db.close();
    },
  };
}

function postgresRaw(): RawLedger {
  const db = pg.db;
  return {
    async read() {
      const rows = await db.all<RecordRow>('SELECT seq, record_key, task_id, workflow_id, kind, body, prev_hash, hash, signature, kid, appended_at FROM warden_custody_records ORDER BY seq');
      const checkpoints = await db.all<CheckpointRow>('SELECT * FROM warden_custody_checkpoints ORDER BY id');
      return { rows: rows.map((r) => ({ ...r, seq: Number(r.seq) })), checkpoints: checkpoints.map((c) => ({ ...c, id: Number(c.id), tree_size: Number(c.tree_size) })) };
    },
    async write(rows, checkpoints) {
      await db.transaction(async (tx) => {
        await tx.exec('DELETE FROM warden_custody_records; DELETE FROM warden_custody_checkpoints;');
        for (const r of rows) {
          await tx.run(
            'INSERT INTO warden_custody_records (seq, record_key, task_id, workflow_id, kind, body, prev_hash, hash, signature, kid, appended_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)',
            [r.seq, r.record_key, r.task_id, r.workflow_id, r.kind, r.body, r.prev_hash, r.hash, r.signature, r.kid, r.appended_at],
          );
        }
        for (const c of checkpoints) {
          await tx.run('INSERT INTO warden_custody_checkpoints (id, tree_size, root_hash, timestamp, reason, task_id, kid, signature) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)', [
            c.id,
            c.tree_size,
            c.root_hash,
            c.timestamp,
            c.reason,
            c.task_id,
            c.kid,
            c.signature,
          ]);
        }
        const frontier = new MerkleFrontier();
        for (const r of rows) frontier.append(recordLeafHash(r.hash));
        await tx.run('UPDATE warden_custody_head SET tree_size = $1, tail_hash = $2, subtree_roots = $3 WHERE id = 0', [
          rows.length,
          rows.at(-1)?.hash ?? GENESIS_HASH,
          JSON.stringify(frontier.subtreeRoots.map(toHex)),
        ]);
      });
    },
    async close() {
      // The test database's pool is closed by drop().
    },
  };
}

/**
 * Re-hashes and re-signs every record from the first one `mutate` changes onwards, and every
 * checkpoint, with `key`: a ledger that verifies on its own.
 */
function resign(rows: readonly RecordRow[], checkpoints: readonly CheckpointRow[], key: SigningKey, mutate: (row: RecordRow) => RecordRow): { rows: RecordRow[]; checkpoints: CheckpointRow[] } {
  const out: RecordRow[] = [];
  const roots = new Map<number, string>();
  const frontier = new MerkleFrontier();
  let prev = GENESIS_HASH;
  for (const original of rows) {
    const row = { ...mutate({ ...original }), prev_hash: prev, kid: key.kid };
    row.hash = recordHashWithCanonicalBody(
      { seq: row.seq, recordKey: row.record_key, taskId: row.task_id, workflowId: row.workflow_id, kind: row.kind, prevHash: row.prev_hash, kid: row.kid, appendedAt: row.appended_at },
      row.body,
    );
    row.signature = signBytes(key, recordSigningInput(row.hash));
    out.push(row);
    prev = row.hash;
    frontier.append(recordLeafHash(row.hash));
    roots.set(frontier.size, toHex(frontier.root()));
  }
  const signed = checkpoints.map((c) => {
    const unsigned = { treeSize: c.tree_size, rootHash: roots.get(c.tree_size) ?? c.root_hash, timestamp: c.timestamp, reason: c.reason as 'interval', taskId: c.task_id, kid: key.kid };
    return { ...c, root_hash: unsigned.rootHash, kid: key.kid, signature: signBytes(key, checkpointSigningInput(unsigned)) };
  });
  return { rows: out, checkpoints: signed };
}

interface Case {
  stateDir: string;
  witness: string;
  env: NodeJS.ProcessEnv;
  raw: RawLedger;
}

/** Runs 23 spans through real telemetry (group commit, a checkpoint every 5 records, 2 task ends). */
async function recordSpans(backend: 'sqlite' | 'postgres', witnessKind: 'folder' | 'file'): Promise<Case> {
  const stateDir = tempDir('warden-witness-state-');
  const witnessDir = tempDir('warden-witness-');
  const witness = witnessKind === 'folder' ? `${witnessDir}/heads/` : join(witnessDir, 'heads.jsonl');
  if (backend === 'postgres') {
    await pg.db.exec(
      `DELETE FROM warden_custody_records; DELETE FROM warden_custody_checkpoints; DELETE FROM warden_public_keys; UPDATE warden_custody_head SET tree_size = 0, tail_hash = '${GENESIS_HASH}', subtree_roots = '[]'`,
    );
  }
  const env: NodeJS.ProcessEnv = { WARDEN_STATE_DIR: stateDir, ...(backend === 'postgres' ? { WARDEN_DATABASE_URL: pg.url } : {}) };
  const telemetry = setupTelemetry({ stateDir, serviceName: 'warden-test', env, witness, register: false, checkpointEvery: 5, exporter: { isTaskEnd: (span) => span.name === 'task end' } });
  for (let i = 0; i < 23; i += 1) {
    const task = i < 12 ? 'task-1' : 'task-2';
    telemetry.tracer.startSpan(i === 11 || i === 22 ? 'task end' : `step ${i}`, { attributes: { [WARDEN_ATTR.taskId]: task } }).end();
  }
  await telemetry.shutdown();
  return { stateDir, witness, env, raw: backend === 'sqlite' ? sqliteRaw(stateDir) : postgresRaw() };
}

function io(env: NodeJS.ProcessEnv): CliIo & { out: string; err: string } {
  const captured = { out: '', err: '', stdout: (t: string) => void (captured.out += t), stderr: (t: string) => void (captured.err += t), env };
  return captured;
}

async function audit(c: Case, withWitness: boolean): Promise<{ code: number; report: { ok: boolean; firstProblem?: { kind: string; seq: number }; unpublished?: number; publishedHeads?: number } }> {
  const run = io(c.env);
  const code = await auditCommand(['verify', '--json', ...(withWitness ? ['--checkpoint', c.witness] : [])], run);
  return { code, report: JSON.parse(run.out || '{}') };
}

const CASES = [
  ['SQLite ledger', 'sqlite', 'folder'],
  ['SQLite ledger', 'sqlite', 'file'],
  ['shared PostgreSQL ledger', 'postgres', 'folder'],
  ['shared PostgreSQL ledger', 'postgres', 'file'],
] as const;

describe.each(CASES)('%s with a witness %s', (_name, backend, witnessKind) => {
  it('publishes every signed tree head as it is made, with the signing key, and verifies against them', async () => {
    const c = await recordSpans(backend, witnessKind);
    const published = readPublishedHeads(c.witness);
    const { checkpoints } = await c.raw.read();
    // Interval heads at 5, 10, 15, 20; the spans ended in one tick, so both task ends come after
    // that one group append and share the head at 23.
    expect(published.heads.map((h) => h.checkpoint.treeSize)).toEqual(checkpoints.map((cp) => Number(cp.tree_size)).sort((a, b) => a - b));
    expect(published.heads.map((h) => h.checkpoint.treeSize)).toEqual([5, 10, 15, 20, 23]);
    expect(published.keys).toHaveLength(1);
    const { code, report } = await audit(c, true);
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, publishedHeads: 5, unpublished: 0 });
    if (witnessKind === 'folder') expect(readdirSync(c.witness).filter((f) => f.startsWith('sth-'))).toHaveLength(5);
    await c.raw.close();
  });

  it('detects the newest checkpoint deleted together with the records it covered, which the ledger alone cannot', async () => {
    const c = await recordSpans(backend, witnessKind);
    const { rows, checkpoints } = await c.raw.read();
    const kept = checkpoints.slice(0, -1);
    const cut = Number(kept.at(-1)!.tree_size);
    await c.raw.write(
      rows.filter((r) => r.seq < cut),
      kept,
    );
    expect((await audit(c, false)).report.ok).toBe(true);
    const { code, report } = await audit(c, true);
    expect(code).toBe(1);
    expect(report.firstProblem).toMatchObject({ kind: 'truncated', seq: cut });
    await c.raw.close();
  });

  it('detects records rewritten and re-signed with the ledger key itself', async () => {
    const c = await recordSpans(backend, witnessKind);
    const { rows, checkpoints } = await c.raw.read();
    const key = loadOrCreateSigningKey(join(c.stateDir, KEY_DIR));
    const forged = resign(rows, checkpoints, key, (row) => (row.seq === 8 ? { ...row, body: row.body.replace('step 8', 'step 8 (edited)') } : row));
    expect(forged.rows[8]!.body).toContain('edited');
    await c.raw.write(forged.rows, forged.checkpoints);
    expect((await audit(c, false)).report.ok).toBe(true);
    const { code, report } = await audit(c, true);
    expect(code).toBe(1);
    expect(report.firstProblem).toMatchObject({ kind: 'changed' });
    await c.raw.close();
  });

  it('pins the keys the witness published: a key slipped into the key folder and re-signed records are refused', async () => {
    const c = await recordSpans(backend, witnessKind);
    const { rows, checkpoints } = await c.raw.read();
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const attacker: SigningKey = { kid: kidOf(publicKey), privateKey, publicKey };
    writeFileSync(join(c.stateDir, KEY_DIR, `${attacker.kid}.pub.pem`), publicKey.export({ format: 'pem', type: 'spki' }));
    if (backend === 'postgres') {
      await pg.db.run("INSERT INTO warden_public_keys (kid, purpose, jwk, worker, published_at) VALUES ($1, 'custody', $2, 'attacker', 'now')", [
        attacker.kid,
        JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: (publicKey.export({ format: 'jwk' }) as { x: string }).x, kid: attacker.kid }),
      ]);
    }
    const forged = resign(rows, checkpoints, attacker, (row) => row);
    await c.raw.write(forged.rows, forged.checkpoints);
    expect((await audit(c, false)).report.ok).toBe(true);
    const { code, report } = await audit(c, true);
    expect(code).toBe(1);
    expect(report.firstProblem).toMatchObject({ seq: 0, kind: 'bad-signature' });
    await c.raw.close();
  });
});

describe('records not yet covered by a published head', () => {
  it('are counted by audit verify', async () => {
    const stateDir = tempDir('warden-witness-state-');
    const witness = join(tempDir('warden-witness-'), 'heads.jsonl');
    const env = { WARDEN_STATE_DIR: stateDir, WARDEN_CUSTODY_WITNESS: witness };
    const telemetry = setupTelemetry({ stateDir, serviceName: 'warden-test', env, register: false, checkpointEvery: 4, exporter: { isTaskEnd: () => false } });
    for (let i = 0; i < 11; i += 1) telemetry.tracer.startSpan(`step ${i}`, { attributes: { [WARDEN_ATTR.taskId]: 't' } }).end();
    await telemetry.shutdown();
    const run = io(env);
    // WARDEN_CUSTODY_WITNESS is the default witness.
    expect(await auditCommand(['verify'], run)).toBe(0);
    expect(run.out).toMatch(/consistent with 2 published signed tree heads; 3 records are not yet covered by a published head/);
  });

  it('a witness that cannot be written is reported, and the spans are still in the ledger once', async () => {
    const stateDir = tempDir('warden-witness-state-');
    const errors: string[] = [];
    const telemetry = setupTelemetry({
      stateDir,
      serviceName: 'warden-test',
      env: {},
      witness: '/dev/null/heads/',
      register: false,
      checkpointEvery: 2,
      exporter: { isTaskEnd: () => false, onError: (e) => errors.push((e as Error).message) },
    });
    for (let i = 0; i < 4; i += 1) telemetry.tracer.startSpan(`step ${i}`, { attributes: { [WARDEN_ATTR.taskId]: 't' } }).end();
    await telemetry.forceFlush();
    expect(await telemetry.ledger.size()).toBe(4);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toMatch(/cannot publish to the custody witness \/dev\/null\/heads\//);
    await telemetry.shutdown();
  });

  it('an unreadable witness line is reported, not skipped', async () => {
    const witness = join(tempDir('warden-witness-'), 'heads.jsonl');
    writeFileSync(witness, '{"format":"warden.custody.signed-tree-head/1"\n');
    expect(() => readPublishedHeads(witness)).toThrow(/heads\.jsonl:1 line is neither a signed tree head nor a public key/);
  });
});
