/** `warden audit verify|proof|consistency`: checks the custody ledger and prints proofs from it. */
import { workflowIdProblem } from '../../client/workflow-id';
import { delimiter, join } from 'node:path';
import { WardenError } from '../../errors';
import { readPublishedHeads } from '../../custody/checkpoint-witness';
import { KEY_DIR, ledgerPaths } from '../../custody/ledger';
import type { LedgerRows } from '../../custody/ledger-reader';
import { loadLedgerSnapshot } from '../../custody/ledger-snapshot';
import { publishedCustodyKeys } from '../../custody/shared-ledger';
import { loadPinnedKeys } from '../../custody/pinned-keys';
import { loadTrustedKeys, type TrustedKeys } from '../../custody/signing-key';
import {
  consistencyProof,
  inclusionProof,
  trustedKeysFromJwks,
  verifyConsistencyProof,
  verifyInclusionProof,
  verifyLedger,
  type LedgerSource,
  type VerifyReport,
} from '../../custody/verify-ledger';
import { stateDirOf } from '../../state-dir';
import { openPostgresDatabase } from '../../state/postgres-database';
import { stateStoreConfigOf } from '../../state/state-store';
import type { CliIo } from '../cli-io';
import { EXIT, exitCodeOfError } from '../exit-codes';
import { parseCommandArgs } from '../parse-command-args';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const AUDIT_USAGE = `usage: warden audit verify [--task <workflowId>] [--checkpoint <file|folder>] [--keys <jwks|folder>]... [--json]
       warden audit proof <seq>
       warden audit consistency <size1> <size2>

  verify       check the custody ledger (<state folder>/custody.db, or the shared ledger in
               WARDEN_DATABASE_URL): record signatures, the hash chain, checkpoints; names the
               first record changed, removed, inserted or reordered, or a truncation after a
               checkpoint (exit 0 intact, 1 tampered)
               --checkpoint: also check it against the signed tree heads published to that
               witness (default WARDEN_CUSTODY_WITNESS), trusting only the keys the witness
               published, and say how many records no published head covers yet
  proof        inclusion proof (JSON) of record <seq> against the latest signed checkpoint
  consistency  proof (JSON) that the first <size1> records are unchanged in the first <size2>`;

function usage(io: CliIo, message: string): number {
  io.stderr(`${terminalLine(`warden audit: ${message}`)}\n${AUDIT_USAGE}\n`);
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
    if (report.publishedHeads !== undefined) {
      lines.push(
        `  consistent with ${report.publishedHeads} published signed tree head${report.publishedHeads === 1 ? '' : 's'}; ${report.unpublished ?? 0} record${report.unpublished === 1 ? ' is' : 's are'} not yet covered by a published head`,
      );
    }
  } else {
    lines.push(`custody ledger ${report.path}: TAMPERED`);
    const problem = report.firstProblem;
    if (problem !== undefined) lines.push(`  record ${problem.seq} (${problem.kind}): ${problem.message}`);
  }
  if (report.taskId !== undefined) {
    lines.push(`  task ${report.taskId}: ${report.records} record${report.records === 1 ? '' : 's'}${report.taskCheckpointed === true ? ', all covered by the latest checkpoint' : ', not all covered by a checkpoint yet'}`);
  }
  // Problems quote the records they found wrong: others' text (../../terminal-text.ts).
  return `${lines.map(terminalLine).join('\n')}\n`;
}

/**
 * The ledger of this state folder or of the shared database, with the keys pinned outside the
 * database (this state folder's key folder, `pinned`) and, apart, the keys only the database
 * publishes (never trusted on their own: see custody/pinned-keys.ts).
 */
async function openLedgerForAudit(
  stateDir: string,
  env: NodeJS.ProcessEnv,
  pinned: TrustedKeys,
): Promise<{ source: LedgerSource & object; keys: TrustedKeys; databaseKeys: TrustedKeys; close(): Promise<void> }> {
  const config = stateStoreConfigOf(stateDir, env);
  if (config.mode === 'sqlite') {
    const source = { stateDir };
    return { source, keys: new Map([...loadTrustedKeys(ledgerPaths(source).keyDir), ...pinned]), databaseKeys: new Map(), close: async () => undefined };
  }
  const db = openPostgresDatabase(config.url, { maxConnections: 2, applicationName: 'warden-audit' });
  try {
    const keyDir = join(stateDir, KEY_DIR);
    const snapshot: LedgerRows = await loadLedgerSnapshot(db, keyDir);
    const keys = new Map([...loadTrustedKeys(keyDir), ...pinned]);
    const databaseKeys = new Map([...trustedKeysFromJwks(await publishedCustodyKeys(db))].filter(([kid]) => !keys.has(kid)));
    return { source: snapshot, keys, databaseKeys, close: () => db.close() };
  } catch (error) {
    await db.close();
    throw error;
  }
}

/** What `verify` says of a ledger that verifies only with keys the shared database publishes. */
function describeUnpinned(report: VerifyReport, kids: string[]): string {
  return (
    `custody ledger ${terminalLine(report.path)}: NOT VERIFIED: internally consistent (${report.totalRecords} record${report.totalRecords === 1 ? '' : 's'}, ${report.checkpoints} checkpoint${report.checkpoints === 1 ? '' : 's'}), ` +
    `but signed by key${kids.length === 1 ? '' : 's'} only the shared database vouches for (${terminalLine(kids.join(', '))}).\n` +
    '  Whoever can write that database could have rewritten the ledger under a key of their own. Pin the\n' +
    "  workers' custody keys (--keys <jwks|folder>, WARDEN_CUSTODY_TRUSTED_KEYS) or check a witness (--checkpoint).\n"
  );
}

async function verifyAction(argv: string[], io: CliIo, stateDir: string): Promise<number> {
  // The shared parser (../parse-command-args.ts): --task and --checkpoint once each, --keys repeatable, no empty value.
  const args = parseCommandArgs('audit', AUDIT_USAGE, argv, io, { task: { type: 'string' }, checkpoint: { type: 'string' }, keys: { type: 'string', multiple: true }, json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  if (args.positionals.length > 0) return usage(io, `unexpected argument "${args.positionals[0]}"`);
  const taskId = args.values.task;
  const witness = args.values.checkpoint ?? (io.env.WARDEN_CUSTODY_WITNESS?.trim() || undefined);
  const json = args.values.json === true;
  // Several locations: one per worker of a fleet (`--keys` repeated, or the variable as a path list);
  // `--keys` replaces the variable's list.
  const pinnedAt: string[] = args.values.keys ?? (io.env.WARDEN_CUSTODY_TRUSTED_KEYS ?? '').split(delimiter).map((p) => p.trim()).filter((p) => p !== '');
  const idProblem = taskId === undefined ? undefined : workflowIdProblem(taskId);
  if (idProblem !== undefined) return usage(io, `ERR_WORKFLOW_ID_INVALID: ${idProblem}`);
  const published = witness === undefined ? undefined : readPublishedHeads(witness);
  if (published !== undefined && published.keys.length === 0) {
    io.stderr(`${terminalLine(`warden audit: ERR_CUSTODY_NOT_FOUND: the witness ${published.location} published no keys to pin`)}\n`);
    return EXIT.failed;
  }
  const pinned = new Map(pinnedAt.flatMap((location) => [...loadPinnedKeys(location)]));
  const ledger = await openLedgerForAudit(stateDir, io.env, pinned);
  try {
    const options = {
      ...(taskId === undefined ? {} : { taskId }),
      ...(published === undefined ? {} : { anchors: published.heads.map((h) => h.checkpoint), published: true }),
    };
    const report = verifyLedger(ledger.source, { ...options, trustedKeys: published === undefined ? ledger.keys : trustedKeysFromJwks(published.keys) });
    if (!report.ok && published === undefined && ledger.databaseKeys.size > 0) {
      // Would the database's own keys make it verify? Then say exactly that, and no more.
      const withDatabaseKeys = verifyLedger(ledger.source, { ...options, trustedKeys: new Map([...ledger.keys, ...ledger.databaseKeys]) });
      if (withDatabaseKeys.ok) {
        const kids = [...ledger.databaseKeys.keys()];
        io.stdout(json ? `${terminalJson({ ...withDatabaseKeys, ok: false, verified: false, internallyConsistent: true, unpinnedKeys: kids }, 2)}\n` : describeUnpinned(withDatabaseKeys, kids));
        return EXIT.failed;
      }
    }
    io.stdout(json ? `${terminalJson(report, 2)}\n` : describe(report));
    return report.ok ? EXIT.ok : EXIT.failed;
  } finally {
    await ledger.close();
  }
}

function proofAction(argv: string[], io: CliIo, stateDir: string): number {
  const seq = parseCount(argv[0]);
  if (argv.length !== 1 || seq === undefined) return usage(io, 'proof needs one record number');
  const proof = inclusionProof({ stateDir }, seq);
  // Check it the way an outside verifier would before handing it out.
  const check = verifyInclusionProof(proof, loadTrustedKeys(ledgerPaths({ stateDir }).keyDir));
  if (!check.ok) {
    io.stderr(`${terminalLine(`warden audit: ERR_CUSTODY_BROKEN: the proof for record ${seq} does not verify: ${check.problems.join('; ')}`)}\n`);
    return EXIT.failed;
  }
  io.stdout(`${terminalJson(proof, 2)}\n`);
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
    io.stderr(`${terminalLine(`warden audit: ERR_CUSTODY_BROKEN: the consistency proof ${size1} -> ${size2} does not verify: ${check.problems.join('; ')}`)}\n`);
    return EXIT.failed;
  }
  io.stdout(`${terminalJson(proof, 2)}\n`);
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
        return await verifyAction(rest, io, stateDir);
      case 'proof':
        return proofAction(rest, io, stateDir);
      case 'consistency':
        return consistencyAction(rest, io, stateDir);
      default:
        return usage(io, 'expected verify, proof or consistency');
    }
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden audit: ${error.code}: ${terminalLines(error.message)}\n`);
      return exitCodeOfError(error);
    }
    throw error;
  }
}
