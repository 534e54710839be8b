/** `warden audit verify|proof|consistency`: checks the custody ledger and prints proofs from it. */
import { WardenError } from '../../errors';
import { ledgerPaths } from '../../custody/ledger';
import { loadTrustedKeys } from '../../custody/signing-key';
import { consistencyProof, inclusionProof, verifyConsistencyProof, verifyInclusionProof, verifyLedger, type VerifyReport } from '../../custody/verify-ledger';
import { stateDirOf } from '../../state-dir';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';

export const AUDIT_USAGE = `usage: warden audit verify [--task <workflowId>] [--json]
       warden audit proof <seq>
       warden audit consistency <size1> <size2>

  verify       check the custody ledger (<state folder>/custody.db): record signatures, the
               hash chain, checkpoints; names the first record changed, removed, inserted or
               reordered, or a truncation after a checkpoint (exit 0 intact, 1 tampered)
  proof        inclusion proof (JSON) of record <seq> against the latest signed checkpoint
  consistency  proof (JSON) that the first <size1> records are unchanged in the first <size2>`;

function usage(io: CliIo, message: string): number {
  io.stderr(`warden audit: ${message}\n${AUDIT_USAGE}\n`);
  return EXIT.usage;
}

function parseCount(text: string | undefined): number | undefined {
  return text !== undefined && /^\d+$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined;
}

function describe(report: VerifyReport): string {
  const lines: string[] = [];
  if (report.ok) {
    const latest = report.latestCheckpoint;
    lines.push(
      `custody ledger ${report.path}: intact, ${report.totalRecords} record${report.totalRecords === 1 ? '' : 's'}, ${report.checkpoints} checkpoint${report.checkpoints === 1 ? '' : 's'}` +
        (latest === null ? '' : ` (latest #${latest.id}: ${latest.treeSize} records, root ${latest.rootHash.slice(0, 16)}…, ${latest.timestamp})`),
    );
    if (report.uncheckpointed > 0) lines.push(`  ${report.uncheckpointed} record${report.uncheckpointed === 1 ? ' is' : 's are'} after the latest checkpoint (a cut there would not show yet)`);
  } else {
    lines.push(`custody ledger ${report.path}: TAMPERED`);
    const problem = report.firstProblem;
    if (problem !== undefined) lines.push(`  record ${problem.seq} (${problem.kind}): ${problem.message}`);
  }
  if (report.taskId !== undefined) {
    lines.push(`  task ${report.taskId}: ${report.records} record${report.records === 1 ? '' : 's'}${report.taskCheckpointed === true ? ', all covered by the latest checkpoint' : ', not all covered by a checkpoint yet'}`);
  }
  return `${lines.join('\n')}\n`;
}

function verifyAction(argv: string[], io: CliIo, stateDir: string): number {
  let taskId: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--json') json = true;
    else if (arg === '--task') {
      taskId = argv[i + 1];
      i += 1;
      if (taskId === undefined || taskId.startsWith('--')) return usage(io, '--task needs a workflow id');
    } else if (arg?.startsWith('--task=')) taskId = arg.slice('--task='.length);
    else return usage(io, `unexpected argument "${arg}"`);
  }
  const report = verifyLedger({ stateDir }, taskId === undefined ? {} : { taskId });
  io.stdout(json ? `${JSON.stringify(report, null, 2)}\n` : describe(report));
  return report.ok ? EXIT.ok : EXIT.failed;
}

function proofAction(argv: string[], io: CliIo, stateDir: string): number {
  const seq = parseCount(argv[0]);
  if (argv.length !== 1 || seq === undefined) return usage(io, 'proof needs one record number');
  const proof = inclusionProof({ stateDir }, seq);
  // Check it the way an outside verifier would before handing it out.
  const check = verifyInclusionProof(proof, loadTrustedKeys(ledgerPaths({ stateDir }).keyDir));
  if (!check.ok) {
    io.stderr(`warden audit: ERR_CUSTODY_BROKEN: the proof for record ${seq} does not verify: ${check.problems.join('; ')}\n`);
    return EXIT.failed;
  }
  io.stdout(`${JSON.stringify(proof, null, 2)}\n`);
  return EXIT.ok;
}

function consistencyAction(argv: string[], io: CliIo, stateDir: string): number {
  const size1 = parseCount(argv[0]);
  const size2 = parseCount(argv[1]);
  if (argv.length !== 2 || size1 === undefined || size2 === undefined) return usage(io, 'consistency needs two tree sizes');
  if (size1 > size2) return usage(io, `size1 (${size1}) must not exceed size2 (${size2})`);
  const proof = consistencyProof({ stateDir }, size1, size2);
  const check = verifyConsistencyProof(proof, loadTrustedKeys(ledgerPaths({ stateDir }).keyDir));
  if (!check.ok) {
    io.stderr(`warden audit: ERR_CUSTODY_BROKEN: the consistency proof ${size1} -> ${size2} does not verify: ${check.problems.join('; ')}\n`);
    return EXIT.failed;
  }
  io.stdout(`${JSON.stringify(proof, null, 2)}\n`);
  return EXIT.ok;
}

export async function auditCommand(argv: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action === '--help' || action === '-h') {
    io.stdout(`${AUDIT_USAGE}\n`);
    return EXIT.ok;
  }
  const stateDir = stateDirOf(io.env);
  try {
    switch (action) {
      case 'verify':
        return verifyAction(rest, io, stateDir);
      case 'proof':
        return proofAction(rest, io, stateDir);
      case 'consistency':
        return consistencyAction(rest, io, stateDir);
      default:
        return usage(io, 'expected verify, proof or consistency');
    }
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden audit: ${error.code}: ${error.message}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}
