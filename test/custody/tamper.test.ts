/**
 * Tampering with the ledger file directly (what someone with write access to the state folder
 * can do) is detected, and the first record affected is named with the right kind.
 * Every case starts from 30 records with checkpoints at 10, 20 and 30.
 */
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/commands/audit';
import type { RecordRow } from '../../custody/ledger';
import { recordHash } from '../../custody/ledger-record';
import { kidOf, loadTrustedKeys } from '../../custody/signing-key';
import { assertLedgerIntact, verifyLedger, type ProblemKind } from '../../custody/verify-ledger';
import { fill, insertRow, openTempLedger, rowAt, shiftSeqs, type TempLedger } from './fixtures/ledger-fixture';

const attacker = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, kid: kidOf(publicKey) };
})();

/** Recomputes a row's hash for its (changed) content; optionally re-signs it with the attacker's key. */
function rehash(row: RecordRow, options: { resign?: 'attacker-kid' | 'keep-kid' } = {}): RecordRow {
  const kid = options.resign === 'attacker-kid' ? attacker.kid : row.kid;
  const hash = recordHash({
    seq: row.seq,
    recordKey: row.record_key,
    taskId: row.task_id,
    workflowId: row.workflow_id,
    kind: row.kind,
    body: JSON.parse(row.body) as never,
    prevHash: row.prev_hash,
    kid,
    appendedAt: row.appended_at,
  });
  const signature = options.resign === undefined ? row.signature : sign(null, Buffer.from(hash, 'hex'), attacker.privateKey).toString('base64url');
  return { ...row, kid, hash, signature };
}

function update(db: Database.Database, row: RecordRow, at: number = row.seq): void {
  db.prepare(
    `UPDATE records SET seq=@seq, record_key=@record_key, task_id=@task_id, workflow_id=@workflow_id, kind=@kind, body=@body,
     prev_hash=@prev_hash, hash=@hash, signature=@signature, kid=@kid, appended_at=@appended_at WHERE seq=@at`,
  ).run({ ...row, at });
}

interface Case {
  name: string;
  tamper: (db: Database.Database, t: TempLedger) => void;
  seq: number;
  kind: ProblemKind;
  message?: RegExp;
}

const CASES: Case[] = [
  {
    name: 'flip one byte of a body',
    tamper: (db) => {
      const row = rowAt(db, 12);
      const bytes = Buffer.from(row.body, 'utf8');
      const at = bytes.indexOf('notes-12') + 2;
      bytes[at] = (bytes[at] as number) ^ 0x01;
      db.prepare('UPDATE records SET body = ? WHERE seq = 12').run(bytes.toString('utf8'));
    },
    seq: 12,
    kind: 'changed',
    message: /content no longer matches its signed hash/,
  },
  {
    name: 'change a stored hash',
    tamper: (db) => db.prepare('UPDATE records SET hash = ? WHERE seq = 12').run(createHash('sha256').update('other').digest('hex')),
    seq: 12,
    kind: 'changed',
  },
  {
    name: 'change a body and its hash, keeping the old signature',
    tamper: (db) => {
      const row = rowAt(db, 12);
      update(db, rehash({ ...row, body: row.body.replace('"allow"', '"deny"') }));
    },
    seq: 12,
    kind: 'bad-signature',
  },
  {
    name: 'move a record to another task',
    tamper: (db) => db.prepare("UPDATE records SET task_id = 'task-z' WHERE seq = 12").run(),
    seq: 12,
    kind: 'changed',
  },
  {
    name: 'delete a record',
    tamper: (db) => db.prepare('DELETE FROM records WHERE seq = 12').run(),
    seq: 12,
    kind: 'removed',
    message: /record 12 was removed/,
  },
  {
    name: 'delete the first record',
    tamper: (db) => db.prepare('DELETE FROM records WHERE seq = 0').run(),
    seq: 0,
    kind: 'removed',
  },
  {
    name: 'delete three records',
    tamper: (db) => db.prepare('DELETE FROM records WHERE seq BETWEEN 12 AND 14').run(),
    seq: 12,
    kind: 'removed',
    message: /records 12\.\.14 were removed/,
  },
  {
    name: 'delete a record and renumber the rest to close the gap',
    tamper: (db) => {
      db.prepare('DELETE FROM records WHERE seq = 12').run();
      shiftSeqs(db, 13, -1);
    },
    seq: 12,
    kind: 'removed',
    message: /renumbered/,
  },
  {
    name: 'duplicate a record in place (the rest renumbered)',
    tamper: (db) => {
      const row = rowAt(db, 12);
      shiftSeqs(db, 13, 1);
      insertRow(db, { ...row, seq: 13, record_key: `${row.record_key}-again` });
    },
    seq: 13,
    kind: 'inserted',
    message: /copy of record 12/,
  },
  {
    name: 'duplicate a record at the end',
    tamper: (db) => insertRow(db, { ...rowAt(db, 12), seq: 30, record_key: 'k-12-again' }),
    seq: 30,
    kind: 'inserted',
    message: /copy of record 12/,
  },
  {
    name: 'insert a forged record (well-formed, chained, signed with another key)',
    tamper: (db) => {
      const before = rowAt(db, 12);
      shiftSeqs(db, 13, 1);
      const forged: RecordRow = {
        seq: 13,
        record_key: 'forged',
        task_id: 'task-a',
        workflow_id: 'task-a',
        kind: 'event',
        body: JSON.stringify({ args: { path: 'secrets.txt' }, decision: 'allow', step: 99, tool: 'fs.read' }),
        prev_hash: before.hash,
        hash: '',
        signature: '',
        kid: attacker.kid,
        appended_at: before.appended_at,
      };
      insertRow(db, rehash(forged, { resign: 'attacker-kid' }));
    },
    seq: 13,
    kind: 'inserted',
    message: /record after it chains directly to record 12/,
  },
  {
    name: 'swap two records',
    tamper: (db) => {
      db.prepare('UPDATE records SET seq = -1 WHERE seq = 12').run();
      db.prepare('UPDATE records SET seq = 12 WHERE seq = 13').run();
      db.prepare('UPDATE records SET seq = 13 WHERE seq = -1').run();
    },
    seq: 12,
    kind: 'reordered',
  },
  {
    name: 'move a record to the end',
    tamper: (db) => {
      db.prepare('UPDATE records SET seq = -1 WHERE seq = 12').run();
      shiftSeqs(db, 13, -1);
      db.prepare('UPDATE records SET seq = 29 WHERE seq = -1').run();
    },
    seq: 12,
    kind: 'reordered',
  },
  {
    name: 'truncate after a checkpoint',
    tamper: (db) => db.prepare('DELETE FROM records WHERE seq >= 25').run(),
    seq: 25,
    kind: 'truncated',
    message: /signed 30 records but only 25 remain/,
  },
  {
    name: 'forge a signature with another key (and name that key)',
    tamper: (db) => {
      const row = rowAt(db, 12);
      update(db, rehash({ ...row, body: row.body.replace('"allow"', '"deny"') }, { resign: 'attacker-kid' }));
    },
    seq: 12,
    kind: 'bad-signature',
    message: /not trusted/,
  },
  {
    name: 're-sign a record with another key under the ledger kid',
    tamper: (db) => update(db, rehash(rowAt(db, 12), { resign: 'keep-kid' })),
    seq: 12,
    kind: 'bad-signature',
    message: /does not verify/,
  },
  {
    name: 'rewrite a record and re-chain everything after it with another key',
    tamper: (db) => {
      let prev = '';
      for (let seq = 12; seq < 30; seq += 1) {
        const row = rowAt(db, seq);
        const changed = rehash({ ...row, body: seq === 12 ? row.body.replace('"allow"', '"deny"') : row.body, prev_hash: seq === 12 ? row.prev_hash : prev }, { resign: 'attacker-kid' });
        update(db, changed);
        prev = changed.hash;
      }
    },
    seq: 12,
    kind: 'bad-signature',
  },
  {
    name: "change a checkpoint's root",
    tamper: (db) => db.prepare('UPDATE checkpoints SET root_hash = ? WHERE id = 2').run('ab'.repeat(32)),
    seq: 19,
    kind: 'bad-signature',
    message: /checkpoint #2/,
  },
];

let temp: TempLedger | undefined;
afterEach(() => {
  temp?.cleanup();
  temp = undefined;
});

describe('tampering with the custody ledger', () => {
  it.each(CASES)('$name: detected at record $seq as $kind', ({ tamper, seq, kind, message }) => {
    temp = openTempLedger({ checkpointEvery: 10 });
    fill(temp.ledger, 30);
    expect(verifyLedger(temp.ledger).ok).toBe(true);
    tamper(temp.raw(), temp);
    const report = verifyLedger(temp.ledger);
    expect(report.ok).toBe(false);
    expect(report.firstProblem).toMatchObject({ seq, kind });
    if (message !== undefined) expect(report.firstProblem?.message).toMatch(message);
  });

  it('catches a key planted in the key folder when the verifier pins the ledger key', () => {
    temp = openTempLedger({ checkpointEvery: 10 });
    fill(temp.ledger, 30);
    const pinned = loadTrustedKeys(temp.ledger.keyDir);
    const db = temp.raw();
    const row = rowAt(db, 12);
    update(db, rehash({ ...row, body: row.body.replace('"allow"', '"deny"') }, { resign: 'attacker-kid' }));
    // Whoever can write the state folder can add a public key to it: the default trust follows the folder...
    writeFileSync(join(temp.stateDir, 'custody-keys', `${attacker.kid}.pub.pem`), attacker.publicKey.export({ format: 'pem', type: 'spki' }));
    expect(verifyLedger(temp.ledger).firstProblem).toMatchObject({ seq: 13, kind: 'changed' });
    // ...so an independent audit pins the keys it trusts.
    expect(verifyLedger(temp.ledger, { trustedKeys: pinned }).firstProblem).toMatchObject({ seq: 12, kind: 'bad-signature', message: expect.stringMatching(/not trusted/) });
  });

  it('makes assertLedgerIntact throw ERR_CUSTODY_BROKEN with the problem as details', () => {
    temp = openTempLedger({ checkpointEvery: 10 });
    fill(temp.ledger, 15);
    temp.raw().prepare('DELETE FROM records WHERE seq = 4').run();
    let error: unknown;
    try {
      assertLedgerIntact(temp.ledger);
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'ERR_CUSTODY_BROKEN', details: { seq: 4, kind: 'removed' } });
  });

  it('makes `warden audit verify` exit 1 and print the first problem', async () => {
    temp = openTempLedger({ checkpointEvery: 10 });
    fill(temp.ledger, 15);
    const out: string[] = [];
    const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => out.push(s), env: { WARDEN_STATE_DIR: temp.stateDir } };
    expect(await auditCommand(['verify'], io)).toBe(0);
    expect(out.join('')).toMatch(/intact, 15 records, 1 checkpoint/);
    temp.raw().prepare("UPDATE records SET body = replace(body, 'allow', 'deny') WHERE seq = 7").run();
    out.length = 0;
    expect(await auditCommand(['verify'], io)).toBe(1);
    expect(out.join('')).toMatch(/TAMPERED\n {2}record 7 \(changed\): record 7 was changed/);
    out.length = 0;
    expect(await auditCommand(['verify', '--json'], io)).toBe(1);
    expect(JSON.parse(out.join(''))).toMatchObject({ ok: false, firstProblem: { seq: 7, kind: 'changed' } });
  });
});
