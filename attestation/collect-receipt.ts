/**
 * Gathers what a task receipt proves from the custody ledger of this configuration (the state
 * folder's file, or the shared ledger when `WARDEN_DATABASE_URL` is set): the task's records, a
 * signed tree head covering all of them (a new checkpoint when the latest does not; either way
 * published to the witness `WARDEN_CUSTODY_WITNESS` names), and the leaves to prove
 * against it; then builds and signs the receipt (task-receipt.ts).
 */
import { openCheckpointWitness } from '../custody/checkpoint-witness';
import { CustodyLedger } from '../custody/ledger';
import type { LedgerRows } from '../custody/ledger-reader';
import type { Checkpoint, LedgerRecord } from '../custody/ledger-record';
import { loadLedgerSnapshot } from '../custody/ledger-snapshot';
import { openCommandLedger } from '../custody/process-ledger';
import { publishedCustodyKeys, SharedCustodyLedger } from '../custody/shared-ledger';
import type { PublicJwk } from '../custody/signing-key';
import { CustodyError } from '../errors';
import type { TaskResult } from '../task/task-run';
import type { ByteSigner } from './dsse';
import { buildTaskReceipt, type TaskReceipt } from './task-receipt';

export interface CollectReceiptOptions {
  stateDir: string;
  env: NodeJS.ProcessEnv;
  /** The task's closed result (from Temporal). */
  result: TaskResult;
  user: string;
  intentHash: string;
  signer: ByteSigner;
  now?: () => Date;
}

interface LedgerView {
  records: LedgerRecord[];
  checkpoint: Checkpoint;
  leaves: Buffer[];
  custodyKeys: PublicJwk[];
  location: string;
}

function publishHead(env: NodeJS.ProcessEnv, ledger: string, checkpoint: Checkpoint, keys: PublicJwk[]): void {
  const location = env.WARDEN_CUSTODY_WITNESS?.trim();
  if (!location) return;
  const witness = openCheckpointWitness(location);
  const signer = keys.find((k) => k.kid === checkpoint.kid);
  if (signer !== undefined) witness.publishKey(signer);
  witness.publish(ledger, checkpoint);
}

function noRecords(taskId: string, where: string): CustodyError {
  return new CustodyError('ERR_CUSTODY_NOT_FOUND', `no custody records of task ${taskId} in ${where} (was it run with WARDEN_TELEMETRY=0, or on another state folder?)`, { details: { taskId } });
}

async function fileLedgerView(options: CollectReceiptOptions, taskId: string): Promise<LedgerView> {
  const ledger = CustodyLedger.open({ stateDir: options.stateDir });
  try {
    const records = ledger.records({ taskId });
    if (records.length === 0) throw noRecords(taskId, ledger.path);
    const last = records[records.length - 1]!.seq;
    let checkpoint = ledger.latestCheckpoint();
    if (checkpoint === undefined || checkpoint.treeSize <= last) checkpoint = ledger.checkpoint(undefined, 'manual');
    // The head a receipt proves against is published (again: harmless) where auditors look.
    publishHead(options.env, ledger.path, checkpoint, ledger.publicKeys());
    return { records, checkpoint, leaves: ledger.leafHashes(checkpoint.treeSize), custodyKeys: ledger.publicKeys(), location: ledger.path };
  } finally {
    ledger.close();
  }
}

async function sharedLedgerView(options: CollectReceiptOptions, taskId: string, ledger: SharedCustodyLedger): Promise<LedgerView> {
  const records = await ledger.records({ taskId });
  if (records.length === 0) throw noRecords(taskId, ledger.path);
  const last = records[records.length - 1]!.seq;
  let checkpoint = await ledger.latestCheckpoint();
  const keys = [...ledger.publicKeys(), ...(await publishedCustodyKeys(ledger.db))];
  if (checkpoint === undefined || checkpoint.treeSize <= last) checkpoint = await ledger.checkpoint(undefined, 'manual');
  publishHead(options.env, ledger.path, checkpoint, keys);
  const snapshot: LedgerRows = await loadLedgerSnapshot(ledger.db, ledger.keyDir);
  return { records, checkpoint, leaves: snapshot.leafHashes(checkpoint.treeSize), custodyKeys: keys, location: ledger.path };
}

/** The signed receipt of the (closed) task `options.result`. @throws CustodyError when the ledger has no record of it. */
export async function collectTaskReceipt(options: CollectReceiptOptions): Promise<TaskReceipt> {
  const taskId = options.result.workflowId;
  const opened = openCommandLedger(options.stateDir, options.env);
  let view: LedgerView;
  if (opened instanceof SharedCustodyLedger) {
    try {
      view = await sharedLedgerView(options, taskId, opened);
    } finally {
      await opened.close();
    }
  } else {
    opened.close();
    view = await fileLedgerView(options, taskId);
  }
  const unique = new Map(view.custodyKeys.map((k) => [k.kid, k]));
  return buildTaskReceipt(
    {
      result: options.result,
      user: options.user,
      intentHash: options.intentHash,
      records: view.records,
      leaves: view.leaves,
      checkpoint: view.checkpoint,
      ledger: view.location,
      custodyKeys: [...unique.values()],
      issuedAt: (options.now ?? (() => new Date()))().toISOString(),
    },
    options.signer,
  );
}
