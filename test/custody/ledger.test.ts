import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CustodyLedger } from '../../custody/ledger';
import { GENESIS_HASH, recordHash, recordHashWithCanonicalBody, recordLeafHash } from '../../custody/ledger-record';
import { fromHex, merkleRoot, toHex } from '../../custody/merkle';
import { loadTrustedKeys, verifyBytes } from '../../custody/signing-key';
import {
  assertLedgerIntact,
  consistencyProof,
  inclusionProof,
  trustedKeysFromJwks,
  verifyConsistencyProof,
  verifyInclusionProof,
  verifyLedger,
} from '../../custody/verify-ledger';
import { fill, openTempLedger, tempStateDir, type TempLedger } from './fixtures/ledger-fixture';

let temp: TempLedger | undefined;
afterEach(() => {
  temp?.cleanup();
  temp = undefined;
});

function open(options: Parameters<typeof openTempLedger>[0] = {}): TempLedger {
  temp = openTempLedger(options);
  return temp;
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

describe('custody ledger', () => {
  it('appends signed records with contiguous seqs and a hash chain', () => {
    const { ledger } = open();
    fill(ledger, 5);
    const records = ledger.records();
    expect(records.map((r) => r.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(records[0]?.prevHash).toBe(GENESIS_HASH);
    const keys = loadTrustedKeys(ledger.keyDir);
    records.forEach((record, i) => {
      if (i > 0) expect(record.prevHash).toBe(records[i - 1]?.hash);
      expect(recordHash(record)).toBe(record.hash);
      expect(record.kid).toBe(ledger.kid);
      expect(verifyBytes(keys.get(record.kid)!, fromHex(record.hash), record.signature)).toBe(true);
    });
    expect(records[1]).toMatchObject({ recordKey: 'k-1', taskId: 'task-a', workflowId: 'task-a/child-1', kind: 'event', body: { step: 1 } });
    expect(verifyLedger(ledger)).toMatchObject({ ok: true, records: 5, totalRecords: 5 });
  });

  it('keeps the ledger under the state folder and the signing key private', () => {
    const { ledger, stateDir } = open();
    expect(ledger.path).toBe(join(stateDir, 'custody.db'));
    const keyDir = join(stateDir, 'custody-keys');
    expect(ledger.keyDir).toBe(keyDir);
    expect(statSync(keyDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(keyDir, `${ledger.kid}.key.pem`)).mode & 0o777).toBe(0o600);
    expect(statSync(ledger.path).mode & 0o077).toBe(0);
    expect(readFileSync(join(keyDir, 'active'), 'utf8').trim()).toBe(ledger.kid);
    expect(readdirSync(keyDir).sort()).toEqual(['active', `${ledger.kid}.key.pem`, `${ledger.kid}.pub.pem`].sort());
    expect(ledger.publicKeys()).toEqual([expect.objectContaining({ kty: 'OKP', crv: 'Ed25519', kid: ledger.kid })]);
  });

  it('appends a recordKey once: a re-derived record returns the first one', () => {
    const { ledger } = open();
    const first = ledger.append({ recordKey: 'trace:span', taskId: 't', workflowId: 't', kind: 'span', body: { a: 1 } });
    fill(ledger, 2);
    const again = ledger.append({ recordKey: 'trace:span', taskId: 't', workflowId: 't', kind: 'span', body: { a: 1 } });
    expect(first.appended).toBe(true);
    expect(again).toEqual({ record: first.record, appended: false });
    expect(ledger.size()).toBe(3);
    const batch = ledger.appendMany([
      { recordKey: 'x', taskId: 't', workflowId: 't', kind: 'span', body: 1 },
      { recordKey: 'x', taskId: 't', workflowId: 't', kind: 'span', body: 1 },
    ]);
    expect(batch.map((r) => r.appended)).toEqual([true, false]);
    expect(ledger.size()).toBe(4);
    expect(verifyLedger(ledger).ok).toBe(true);
  });

  it('appends a batch all or nothing, and refuses bodies that are not JSON', () => {
    const { ledger } = open();
    expect(() =>
      ledger.appendMany([
        { recordKey: 'a', taskId: 't', workflowId: 't', kind: 'span', body: { ok: true } },
        { recordKey: 'b', taskId: 't', workflowId: 't', kind: 'span', body: { bad: Number.NaN } },
      ]),
    ).toThrow(TypeError);
    expect(ledger.size()).toBe(0);
    expect(() => ledger.append({ recordKey: '', taskId: 't', workflowId: 't', kind: 'span', body: 1 })).toThrow(TypeError);
  });

  it('takes a signed checkpoint every N records and on demand, over the RFC 9162 tree of record hashes', () => {
    const { ledger } = open({ checkpointEvery: 5 });
    fill(ledger, 12);
    const interval = ledger.checkpoints();
    expect(interval.map((c) => [c.treeSize, c.reason, c.taskId])).toEqual([
      [5, 'interval', null],
      [10, 'interval', null],
    ]);
    const leaves = ledger.records().map((r) => recordLeafHash(r.hash));
    for (const c of interval) expect(c.rootHash).toBe(toHex(merkleRoot(leaves, c.treeSize)));
    const end = ledger.checkpoint('task-a');
    expect(end).toMatchObject({ id: 3, treeSize: 12, reason: 'task-end', taskId: 'task-a', rootHash: toHex(merkleRoot(leaves)) });
    // Nothing new since: the same checkpoint comes back.
    expect(ledger.checkpoint('task-b')).toEqual(end);
    expect(ledger.latestCheckpoint()).toEqual(end);
    const report = verifyLedger(ledger);
    expect(report).toMatchObject({ ok: true, checkpoints: 3, uncheckpointed: 0, latestCheckpoint: { id: 3, treeSize: 12 } });
  });

  it('continues the same chain and key after reopening, and rebuilds a lost Merkle frontier', () => {
    const t = open({ checkpointEvery: 4 });
    fill(t.ledger, 6);
    const kid = t.ledger.kid;
    t.ledger.close();
    const reopened = CustodyLedger.open({ stateDir: t.stateDir, checkpointEvery: 4 });
    try {
      expect(reopened.kid).toBe(kid);
      t.raw().prepare('DELETE FROM merkle_frontier').run();
      fill(reopened, 5, 6);
      expect(reopened.checkpoints().map((c) => c.treeSize)).toEqual([4, 8]);
      expect(verifyLedger(reopened)).toMatchObject({ ok: true, totalRecords: 11, checkpoints: 2, uncheckpointed: 3 });
    } finally {
      reopened.close();
    }
  });

  it('hashes stored canonical bodies exactly as the canonical record', () => {
    const { ledger } = open();
    const { record } = ledger.append({ recordKey: 'k', taskId: 'é', workflowId: '\u2028', kind: 'event', body: { z: [1.5, 'x'], a: null } });
    const { body: _body, hash: _hash, signature: _sig, ...rest } = record;
    expect(recordHashWithCanonicalBody(rest, '{"a":null,"z":[1.5,"x"]}')).toBe(recordHash(record));
  });

  it('verifies one task, and says when a task has no records or there is no ledger', () => {
    const { ledger, stateDir } = open({ checkpointEvery: 0 });
    fill(ledger, 9);
    const report = verifyLedger({ stateDir }, { taskId: 'task-b' });
    expect(report).toMatchObject({ ok: true, taskId: 'task-b', records: 3, totalRecords: 9, taskCheckpointed: false });
    ledger.checkpoint('task-b');
    expect(verifyLedger({ stateDir }, { taskId: 'task-b' }).taskCheckpointed).toBe(true);
    expect(codeOf(() => verifyLedger({ stateDir }, { taskId: 'nobody' }))).toBe('ERR_CUSTODY_NOT_FOUND');
    const empty = tempStateDir();
    expect(codeOf(() => verifyLedger({ stateDir: empty }))).toBe('ERR_CUSTODY_NOT_FOUND');
    rmSync(empty, { recursive: true, force: true });
    expect(assertLedgerIntact({ stateDir }).ok).toBe(true);
  });

  it('gives inclusion proofs that verify offline against the signed checkpoint, and only those', () => {
    const { ledger, stateDir } = open({ checkpointEvery: 10 });
    fill(ledger, 23);
    const keys = loadTrustedKeys(ledger.keyDir);
    for (let seq = 0; seq < 20; seq += 1) {
      const proof = inclusionProof({ stateDir }, seq);
      expect(proof).toMatchObject({ leafIndex: seq, treeSize: 20, checkpoint: { treeSize: 20 } });
      expect(verifyInclusionProof(JSON.parse(JSON.stringify(proof)), keys)).toEqual({ ok: true, problems: [] });
    }
    const proof = inclusionProof({ stateDir }, 3, { treeSize: 10 });
    expect(proof.checkpoint.treeSize).toBe(10);
    // The keys shipped in the proof work once the verifier chooses to trust them.
    expect(verifyInclusionProof(proof, trustedKeysFromJwks(proof.publicKeys)).ok).toBe(true);
    const forged = structuredClone(proof);
    (forged.record.body as { tool: string }).tool = 'fs.write';
    expect(verifyInclusionProof(forged, keys).ok).toBe(false);
    const badPath = structuredClone(proof);
    badPath.auditPath[0] = '0'.repeat(64);
    expect(verifyInclusionProof(badPath, keys).problems).toContain('the audit path does not lead to the checkpoint root');
    expect(verifyInclusionProof(proof, new Map()).ok).toBe(false);
    expect(verifyInclusionProof({ format: 'nope' }, keys).ok).toBe(false);
    expect(codeOf(() => inclusionProof({ stateDir }, 21))).toBe('ERR_CUSTODY_NOT_FOUND');
    expect(codeOf(() => inclusionProof({ stateDir }, 99))).toBe('ERR_CUSTODY_NOT_FOUND');
  });

  it('gives consistency proofs between checkpoints that verify offline', () => {
    const { ledger, stateDir } = open({ checkpointEvery: 10 });
    fill(ledger, 30);
    const keys = loadTrustedKeys(ledger.keyDir);
    const proof = consistencyProof({ stateDir }, 10, 30);
    expect(proof.checkpoint1?.treeSize).toBe(10);
    expect(proof.checkpoint2?.treeSize).toBe(30);
    expect(verifyConsistencyProof(proof, keys)).toEqual({ ok: true, problems: [] });
    for (const [a, b] of [
      [0, 30],
      [7, 7],
      [13, 29],
    ] as const) {
      expect(verifyConsistencyProof(consistencyProof({ stateDir }, a, b), keys).ok, `${a} -> ${b}`).toBe(true);
    }
    const bad = structuredClone(proof);
    bad.root1 = bad.root2;
    expect(verifyConsistencyProof(bad, keys).ok).toBe(false);
    expect(codeOf(() => consistencyProof({ stateDir }, 10, 31))).toBe('ERR_CUSTODY_NOT_FOUND');
  });

  it('holds the ledger to anchors: checkpoints kept elsewhere', () => {
    const t = open({ checkpointEvery: 10 });
    fill(t.ledger, 25);
    const anchor = t.ledger.checkpoints()[1]!;
    expect(verifyLedger(t.ledger, { anchors: [anchor] }).ok).toBe(true);
    // Someone cuts the ledger back to 15 records and removes every checkpoint that would show it.
    const db = t.raw();
    db.prepare('DELETE FROM records WHERE seq >= 15').run();
    db.prepare('DELETE FROM checkpoints').run();
    expect(verifyLedger(t.ledger).ok).toBe(true);
    expect(verifyLedger(t.ledger, { anchors: [anchor] }).firstProblem).toMatchObject({ seq: 15, kind: 'truncated' });
    expect(existsSync(t.ledger.path)).toBe(true);
  });
});

describe('custody ledger: the chain head kept between appends', () => {
  // The ledger keeps its Merkle frontier and last hash in memory between its own commits; any
  // commit by another connection must make it read them again, or the chain forks.
  const otherCommits: [string, (t: TempLedger) => void][] = [
    [
      'another ledger on the same file appends',
      (t) => {
        const other = CustodyLedger.open({ stateDir: t.stateDir, checkpointEvery: 0 });
        try {
          fill(other, 3, 100);
        } finally {
          other.close();
        }
      },
    ],
    ['a raw connection deletes the last two records and the stored frontier', (t) => t.raw().exec('DELETE FROM records WHERE seq >= 4; DELETE FROM merkle_frontier;')],
    ['a raw connection deletes the last record only (stored frontier now too large)', (t) => t.raw().exec('DELETE FROM records WHERE seq = 5')],
  ];

  it.each(otherCommits)('%s: the next append continues the chain in the file', (_name, commit) => {
    const t = open({ checkpointEvery: 0 });
    fill(t.ledger, 6);
    commit(t);
    const before = t.raw().prepare<[], { n: number; hash: string | null }>('SELECT count(*) AS n, (SELECT hash FROM records ORDER BY seq DESC LIMIT 1) AS hash FROM records').get()!;
    const { record } = t.ledger.append({ recordKey: 'after', taskId: 'task-a', workflowId: 'task-a', kind: 'event', body: { after: true } });
    expect(record.seq).toBe(before.n);
    expect(record.prevHash).toBe(before.hash);
    const checkpoint = t.ledger.checkpoint('task-a');
    expect(checkpoint.treeSize).toBe(before.n + 1);
    expect(checkpoint.rootHash).toBe(toHex(merkleRoot(t.ledger.leafHashes())));
    expect(verifyLedger(t.ledger)).toMatchObject({ ok: true, totalRecords: before.n + 1 });
  });

  it('forgets the head of a batch that rolled back', () => {
    const t = open({ checkpointEvery: 0 });
    fill(t.ledger, 4);
    t.raw().exec("CREATE TRIGGER refuse BEFORE INSERT ON records WHEN NEW.record_key = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END");
    fill(t.ledger, 1, 4); // learns the head after the trigger's commit
    const input = (recordKey: string) => ({ recordKey, taskId: 'task-a', workflowId: 'task-a', kind: 'event', body: { recordKey } });
    expect(codeOf(() => t.ledger.appendMany([input('lost'), input('refused')]))).toBe('ERR_CUSTODY_WRITE');
    // No other connection committed since: only a head dropped on rollback gives seq 5 here.
    const { record } = t.ledger.append(input('next'));
    expect(record.seq).toBe(5);
    expect(record.prevHash).toBe(t.ledger.record(4)?.hash);
    expect(t.ledger.recordByKey('lost')).toBeUndefined();
    expect(t.ledger.checkpoint().rootHash).toBe(toHex(merkleRoot(t.ledger.leafHashes())));
    expect(verifyLedger(t.ledger)).toMatchObject({ ok: true, totalRecords: 6 });
  });

  it('checkpoints the tree another connection grew', () => {
    const t = open({ checkpointEvery: 0 });
    fill(t.ledger, 3);
    t.ledger.checkpoint();
    const other = CustodyLedger.open({ stateDir: t.stateDir, checkpointEvery: 0 });
    try {
      fill(other, 2, 3);
    } finally {
      other.close();
    }
    const checkpoint = t.ledger.checkpoint();
    expect(checkpoint.treeSize).toBe(5);
    expect(checkpoint.rootHash).toBe(toHex(merkleRoot(t.ledger.leafHashes())));
  });
});

describe('custody ledger: the task of a trace', () => {
  const span = (traceId: string, spanId: string, taskId: string) => ({ recordKey: `${traceId}:${spanId}`, taskId, workflowId: taskId, kind: 'span', body: { traceId, spanId } });

  it('is the task of the first span record of that trace, found through the record keys', () => {
    const t = open({ checkpointEvery: 0 });
    t.ledger.appendMany([
      { recordKey: 'abc:not-a-span', taskId: 'task-event', workflowId: 'w', kind: 'event', body: { traceId: 'abc' } },
      span('abcd', 's1', 'task-longer-id'),
      span('abc', 's2', 'task-first'),
      span('abc', 's0', 'task-second'),
      span('ab', 's3', 'task-shorter-id'),
      span('abc;', 's4', 'task-after-semicolon'),
    ]);
    const cases: [string, string | undefined][] = [
      ['abc', 'task-first'],
      ['abcd', 'task-longer-id'],
      ['ab', 'task-shorter-id'],
      ['abc;', 'task-after-semicolon'],
      ['a', undefined],
      ['nobody', undefined],
    ];
    for (const [traceId, taskId] of cases) expect(t.ledger.taskIdOfTrace(traceId), traceId).toBe(taskId);
    const plan = t
      .raw()
      .prepare("EXPLAIN QUERY PLAN SELECT task_id FROM records WHERE record_key >= ? AND record_key < ? AND kind = 'span' ORDER BY seq LIMIT 1")
      .all('abc:', 'abc;') as { detail: string }[];
    expect(plan.map((row) => row.detail).join('\n')).toMatch(/SEARCH records USING INDEX sqlite_autoindex_records_\d \(record_key>\? AND record_key<\?\)/);
  });

  it('drops the body-parsing trace index an earlier version made, and keeps the chain', () => {
    const t = open({ checkpointEvery: 0 });
    fill(t.ledger, 3);
    t.ledger.close();
    t.raw().exec("CREATE INDEX records_by_trace ON records (json_extract(body, '$.traceId')) WHERE kind = 'span'");
    const reopened = CustodyLedger.open({ stateDir: t.stateDir, checkpointEvery: 0 });
    try {
      const indexes = t.raw().prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'").pluck().all();
      expect(indexes).not.toContain('records_by_trace');
      expect(indexes).toContain('records_by_task');
      reopened.append(span('t1', 's1', 'task-a'));
      expect(reopened.taskIdOfTrace('t1')).toBe('task-a');
      expect(verifyLedger(reopened)).toMatchObject({ ok: true, totalRecords: 4 });
    } finally {
      reopened.close();
    }
  });
});
