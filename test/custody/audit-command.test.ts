import { rmSync } from 'node:fs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/commands/audit';
import type { CliIo } from '../../cli/cli-io';
import { loadTrustedKeys } from '../../custody/signing-key';
import { verifyConsistencyProof, verifyInclusionProof } from '../../custody/verify-ledger';
import { fill, openTempLedger, tempStateDir, type TempLedger } from './fixtures/ledger-fixture';

let temp: TempLedger | undefined;
afterEach(() => {
  temp?.cleanup();
  temp = undefined;
});

/** A state folder with no ledger in it. */
const emptyStateDir = tempStateDir();
afterAll(() => rmSync(emptyStateDir, { recursive: true, force: true }));

function io(stateDir: string): CliIo & { out: string; err: string } {
  const captured = {
    out: '',
    err: '',
    stdout: (text: string) => void (captured.out += text),
    stderr: (text: string) => void (captured.err += text),
    env: { WARDEN_STATE_DIR: stateDir },
  };
  return captured;
}

describe('warden audit', () => {
  it('verify: reports an intact ledger, per task, as text or JSON', async () => {
    temp = openTempLedger({ checkpointEvery: 10 });
    fill(temp.ledger, 14);
    const text = io(temp.stateDir);
    expect(await auditCommand(['verify'], text)).toBe(0);
    expect(text.out).toMatch(/intact, 14 records, 1 checkpoint \(latest #1: 10 records, root [0-9a-f]{16}…/);
    expect(text.out).toMatch(/4 records are after the latest checkpoint/);
    const task = io(temp.stateDir);
    expect(await auditCommand(['verify', '--task', 'task-b', '--json'], task)).toBe(0);
    expect(JSON.parse(task.out)).toMatchObject({ ok: true, taskId: 'task-b', records: 5, totalRecords: 14, taskCheckpointed: false });
    const missing = io(temp.stateDir);
    expect(await auditCommand(['verify', '--task=nobody'], missing)).toBe(1);
    expect(missing.err).toMatch(/ERR_CUSTODY_NOT_FOUND: no custody records for task nobody/);
  });

  it('verify: says so when there is no ledger', async () => {
    const empty = io(emptyStateDir);
    expect(await auditCommand(['verify'], empty)).toBe(1);
    expect(empty.err).toMatch(/ERR_CUSTODY_NOT_FOUND: no custody ledger at .*custody\.db/);
  });

  it('proof: prints an inclusion proof against the latest checkpoint that verifies offline', async () => {
    temp = openTempLedger({ checkpointEvery: 10 });
    fill(temp.ledger, 12);
    const run = io(temp.stateDir);
    expect(await auditCommand(['proof', '7'], run)).toBe(0);
    const proof = JSON.parse(run.out) as { leafIndex: number; treeSize: number };
    expect(proof).toMatchObject({ format: 'warden.custody.inclusion-proof/1', leafIndex: 7, treeSize: 10, record: { seq: 7, recordKey: 'k-7' } });
    expect(verifyInclusionProof(proof, loadTrustedKeys(temp.ledger.keyDir)).ok).toBe(true);
    const uncovered = io(temp.stateDir);
    expect(await auditCommand(['proof', '11'], uncovered)).toBe(1);
    expect(uncovered.err).toMatch(/ERR_CUSTODY_NOT_FOUND: record 11 is not covered by checkpoint #1/);
  });

  it('consistency: prints a consistency proof between two tree sizes that verifies offline', async () => {
    temp = openTempLedger({ checkpointEvery: 5 });
    fill(temp.ledger, 15);
    const run = io(temp.stateDir);
    expect(await auditCommand(['consistency', '5', '15'], run)).toBe(0);
    const proof = JSON.parse(run.out) as { checkpoint1: { treeSize: number }; checkpoint2: { treeSize: number } };
    expect(proof).toMatchObject({ size1: 5, size2: 15, checkpoint1: { treeSize: 5 }, checkpoint2: { treeSize: 15 } });
    expect(verifyConsistencyProof(proof, loadTrustedKeys(temp.ledger.keyDir)).ok).toBe(true);
  });

  it.each([[[]], [['nope']], [['proof']], [['proof', 'x']], [['consistency', '3']], [['consistency', '5', '2']], [['verify', '--task']], [['verify', '--bogus']]])(
    'usage error for %j exits 2',
    async (argv) => {
      const run = io(emptyStateDir);
      expect(await auditCommand(argv, run)).toBe(2);
      expect(run.err).toMatch(/usage: warden audit verify/);
    },
  );

  it('--help prints the usage', async () => {
    const run = io(emptyStateDir);
    expect(await auditCommand(['--help'], run)).toBe(0);
    expect(run.out).toMatch(/warden audit proof <seq>/);
  });
});
