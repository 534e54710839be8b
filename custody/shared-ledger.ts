/**
 * The custody ledger on the shared state database (PostgreSQL when `WARDEN_DATABASE_URL` is set):
 * one hash chain and one RFC 9162 Merkle log for every worker of a deployment, with the same
 * record, checkpoint and signature formats as the SQLite file ledger (ledger.ts), so
 * `verify-ledger.ts` checks both alike.
 *
 * Invariants:
 * - Appends are serialised by the database: every append transaction first locks the single
 *   `warden_custody_head` row (`SELECT … FOR UPDATE`; on SQLite the transaction's write lock), reads
 *   the tail hash and Merkle frontier from it, inserts its records and writes the head back. Two
 *   workers appending at once therefore wait for each other and extend one linear chain; no
 *   process lock is involved.
 * - `seq` is the primary key and `record_key` unique, so even a bug that skipped the lock could not
 *   store two records at one position or one span twice: the transaction would fail and roll back.
 * - Each worker signs with its own custody key (kept in its state folder, never in the database);
 *   its public JWK is published in `warden_public_keys` so a verifier can find it. Publication is
 *   not trust: an audit that must survive a database compromise pins keys from a witness
 *   (checkpoint-witness.ts).
 */
import { CustodyError } from '../errors';
import type { SqlDatabase, SqlExecutor } from '../state/sql-database';
import { toSafeInteger } from '../state/sql-database';
import { canonicalize } from './canonical-json';
import { checkpointSigningInput, GENESIS_HASH, recordHashWithCanonicalBody, recordLeafHash, recordSigningInput, type Checkpoint, type LedgerRecord } from './ledger-record';
import { DEFAULT_CHECKPOINT_EVERY, rowToCheckpoint, rowToRecord, type AppendInput, type AppendResult, type CheckpointRow, type RecordFilter, type RecordRow } from './ledger';
import { MerkleFrontier, fromHex, toHex } from './merkle';
import { loadOrCreateSigningKey, loadTrustedKeys, publicJwk, signBytes, type PublicJwk, type SigningKey } from './signing-key';

export interface SharedLedgerOptions {
  db: SqlDatabase;
  /** This worker's custody signing key folder (`<stateDir>/custody-keys`). */
  keyDir: string;
  /** Name of this worker in `warden_public_keys`. */
  workerId: string;
  checkpointEvery?: number;
  now?: () => Date;
  /** Called with every checkpoint this ledger signs, after its transaction committed (witness publication). */
  onCheckpoint?: (checkpoint: Checkpoint, key: PublicJwk) => void | Promise<void>;
  /** Close `db` with the ledger (default false). */
  closeDatabase?: boolean;
}

/** Most records inserted by one statement (keeps parameter counts well under PostgreSQL's 65 535). */
const INSERT_CHUNK = 200;
const RECORD_COLUMNS = ['seq', 'record_key', 'task_id', 'workflow_id', 'kind', 'body', 'prev_hash', 'hash', 'signature', 'kid', 'appended_at', 'trace_id'] as const;

interface Head {
  size: number;
  tailHash: string;
  frontier: MerkleFrontier;
}

function writeError(where: string, error: unknown): CustodyError {
  if (error instanceof CustodyError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  return new CustodyError('ERR_CUSTODY_WRITE', `cannot append to the custody ledger ${where}: ${reason}`, { details: { path: where }, retryable: true, cause: error });
}

function traceIdOf(kind: string, body: unknown): string | null {
  if (kind !== 'span' || typeof body !== 'object' || body === null) return null;
  const traceId = (body as { traceId?: unknown }).traceId;
  return typeof traceId === 'string' ? traceId : null;
}

function numberRow<T extends { seq?: unknown }>(row: T): T {
  return row.seq === undefined ? row : { ...row, seq: toSafeInteger(row.seq, 'seq') };
}

function checkpointRow(row: CheckpointRow): CheckpointRow {
  return { ...row, id: toSafeInteger(row.id, 'id'), tree_size: toSafeInteger(row.tree_size, 'tree_size') };
}

export class SharedCustodyLedger {
  /** Where the ledger lives, for messages (the database, without its password). */
  readonly path: string;
  readonly keyDir: string;
  readonly checkpointEvery: number;
  readonly shared = true;
  private readonly key: SigningKey;
  private readonly now: () => Date;
  private published: Promise<void> | undefined;
  private closed = false;

  private constructor(private readonly options: SharedLedgerOptions) {
    this.path = options.db.description;
    this.keyDir = options.keyDir;
    this.key = loadOrCreateSigningKey(options.keyDir);
    this.now = options.now ?? (() => new Date());
    this.checkpointEvery = options.checkpointEvery ?? DEFAULT_CHECKPOINT_EVERY;
    if (!Number.isSafeInteger(this.checkpointEvery) || this.checkpointEvery < 0) throw new TypeError('checkpointEvery must be a non-negative integer');
  }

  /**
   * The ledger over `options.db` (schema current; see state/migrations.ts), signing with the key
   * of `options.keyDir` (created on first use). Nothing is written until the first append.
   * @throws CustodyError `ERR_CUSTODY_KEY` when the key cannot be loaded or created.
   */
  static open(options: SharedLedgerOptions): SharedCustodyLedger {
    return new SharedCustodyLedger(options);
  }

  get kid(): string {
    return this.key.kid;
  }

  get db(): SqlDatabase {
    return this.options.db;
  }

  /** Publishes this worker's public custody key (once per process; idempotent in the database). */
  publishKey(): Promise<void> {
    this.published ??= (async () => {
      const jwk = publicJwk(this.key.publicKey);
      await this.options.db.run(
        'INSERT INTO warden_public_keys (kid, purpose, jwk, worker, published_at, verify_until) VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT (kid) DO NOTHING',
        [jwk.kid, 'custody', JSON.stringify(jwk), this.options.workerId, this.now().toISOString()],
      );
    })().catch((error: unknown) => {
      this.published = undefined;
      throw error;
    });
    return this.published;
  }

  append(input: AppendInput): Promise<AppendResult> {
    return this.appendMany([input]).then((results) => results[0] as AppendResult);
  }

  /**
   * Appends records in order, in one transaction: all or none. A `recordKey` already stored
   * returns the stored record (`appended: false`).
   * @throws CustodyError `ERR_CUSTODY_WRITE` (retryable); TypeError when an input is malformed.
   */
  async appendMany(inputs: readonly AppendInput[]): Promise<AppendResult[]> {
    this.assertOpen();
    const prepared = inputs.map((input) => {
      for (const field of ['recordKey', 'taskId', 'workflowId', 'kind'] as const) {
        if (typeof input[field] !== 'string') throw new TypeError(`custody append: ${field} must be a string`);
      }
      if (input.recordKey === '' || input.kind === '') throw new TypeError('custody append: recordKey and kind must not be empty');
      canonicalize([input.recordKey, input.taskId, input.workflowId, input.kind]);
      return { input, bodyText: canonicalize(input.body) };
    });
    if (prepared.length === 0) return [];
    await this.publishKey().catch((error: unknown) => {
      throw writeError(this.path, error);
    });
    const checkpoints: Checkpoint[] = [];
    let results: AppendResult[];
    try {
      results = await this.options.db.transaction(async (tx) => {
        const head = await this.lockHead(tx);
        const startSize = head.size;
        const keys = [...new Set(prepared.map((p) => p.input.recordKey))];
        const existing = new Map<string, RecordRow>();
        for (let i = 0; i < keys.length; i += INSERT_CHUNK) {
          const chunk = keys.slice(i, i + INSERT_CHUNK);
          const rows = await tx.all<RecordRow>(`SELECT * FROM warden_custody_records WHERE record_key IN (${chunk.map((_, j) => `$${j + 1}`).join(', ')})`, chunk);
          for (const row of rows) existing.set(row.record_key, numberRow(row));
        }
        const out: AppendResult[] = [];
        const rows: (string | number | null)[][] = [];
        for (const { input, bodyText } of prepared) {
          const stored = existing.get(input.recordKey);
          if (stored !== undefined) {
            out.push({ record: rowToRecord(stored), appended: false });
            continue;
          }
          const unsigned = {
            seq: head.size,
            recordKey: input.recordKey,
            taskId: input.taskId,
            workflowId: input.workflowId,
            kind: input.kind,
            prevHash: head.tailHash,
            kid: this.key.kid,
            appendedAt: this.now().toISOString(),
          };
          const hash = recordHashWithCanonicalBody(unsigned, bodyText);
          const signature = signBytes(this.key, recordSigningInput(hash));
          const body = JSON.parse(bodyText) as LedgerRecord['body'];
          rows.push([unsigned.seq, unsigned.recordKey, unsigned.taskId, unsigned.workflowId, unsigned.kind, bodyText, unsigned.prevHash, hash, signature, unsigned.kid, unsigned.appendedAt, traceIdOf(input.kind, body)]);
          head.frontier.append(recordLeafHash(hash));
          head.size += 1;
          head.tailHash = hash;
          // Later inputs with the same key in this batch return this record.
          existing.set(input.recordKey, {
            seq: unsigned.seq,
            record_key: unsigned.recordKey,
            task_id: unsigned.taskId,
            workflow_id: unsigned.workflowId,
            kind: unsigned.kind,
            body: bodyText,
            prev_hash: unsigned.prevHash,
            hash,
            signature,
            kid: unsigned.kid,
            appended_at: unsigned.appendedAt,
          });
          const result: AppendResult = { record: { ...unsigned, body, hash, signature }, appended: true };
          if (this.checkpointEvery > 0 && head.size % this.checkpointEvery === 0) {
            await this.insertRecords(tx, rows.splice(0));
            result.checkpoint = await this.writeCheckpoint(tx, head.frontier, 'interval', null);
            checkpoints.push(result.checkpoint);
          }
          out.push(result);
        }
        await this.insertRecords(tx, rows);
        if (head.size !== startSize) await this.saveHead(tx, head);
        return out;
      });
    } catch (error) {
      if (error instanceof TypeError) throw error;
      throw writeError(this.path, error);
    }
    await this.announce(checkpoints);
    return results;
  }

  /**
   * A signed checkpoint of the whole ledger as it is now; the latest one when it already covers
   * every record.
   */
  async checkpoint(taskId?: string, reason: 'task-end' | 'manual' = taskId === undefined ? 'manual' : 'task-end'): Promise<Checkpoint> {
    this.assertOpen();
    let fresh = false;
    let checkpoint: Checkpoint;
    try {
      checkpoint = await this.options.db.transaction(async (tx) => {
        const head = await this.lockHead(tx);
        const latest = await tx.get<CheckpointRow>('SELECT * FROM warden_custody_checkpoints ORDER BY id DESC LIMIT 1');
        if (latest !== undefined && toSafeInteger(latest.tree_size) === head.size) return rowToCheckpoint(checkpointRow(latest));
        fresh = true;
        return this.writeCheckpoint(tx, head.frontier, reason, taskId ?? null);
      });
    } catch (error) {
      throw writeError(this.path, error);
    }
    if (fresh) await this.announce([checkpoint]);
    return checkpoint;
  }

  private async announce(checkpoints: readonly Checkpoint[]): Promise<void> {
    if (this.options.onCheckpoint === undefined) return;
    const jwk = publicJwk(this.key.publicKey);
    for (const checkpoint of checkpoints) await this.options.onCheckpoint(checkpoint, jwk);
  }

  private async lockHead(tx: SqlExecutor): Promise<Head> {
    const row = await tx.get<{ tree_size: number; tail_hash: string; subtree_roots: string }>(
      `SELECT tree_size, tail_hash, subtree_roots FROM warden_custody_head WHERE id = 0${tx.dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
    );
    if (row === undefined) throw new CustodyError('ERR_CUSTODY_WRITE', `the custody ledger ${this.path} has no head row: run \`warden db migrate\``, { retryable: false });
    const size = toSafeInteger(row.tree_size, 'tree_size');
    const roots = (JSON.parse(row.subtree_roots) as string[]).map(fromHex);
    return { size, tailHash: size === 0 ? GENESIS_HASH : row.tail_hash, frontier: new MerkleFrontier(size, roots) };
  }

  private async saveHead(tx: SqlExecutor, head: Head): Promise<void> {
    await tx.run('UPDATE warden_custody_head SET tree_size = $1, tail_hash = $2, subtree_roots = $3 WHERE id = 0', [
      head.size,
      head.tailHash,
      JSON.stringify(head.frontier.subtreeRoots.map(toHex)),
    ]);
  }

  private async insertRecords(tx: SqlExecutor, rows: readonly (string | number | null)[][]): Promise<void> {
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      const width = RECORD_COLUMNS.length;
      const values = chunk.map((_, r) => `(${RECORD_COLUMNS.map((__, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ');
      await tx.run(`INSERT INTO warden_custody_records (${RECORD_COLUMNS.join(', ')}) VALUES ${values}`, chunk.flat());
    }
  }

  private async writeCheckpoint(tx: SqlExecutor, frontier: MerkleFrontier, reason: Checkpoint['reason'], taskId: string | null): Promise<Checkpoint> {
    const unsigned = { treeSize: frontier.size, rootHash: toHex(frontier.root()), timestamp: this.now().toISOString(), reason, taskId, kid: this.key.kid };
    const signature = signBytes(this.key, checkpointSigningInput(unsigned));
    const row = await tx.get<{ id: number }>(
      'INSERT INTO warden_custody_checkpoints (tree_size, root_hash, timestamp, reason, task_id, kid, signature) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
      [unsigned.treeSize, unsigned.rootHash, unsigned.timestamp, reason, taskId, unsigned.kid, signature],
    );
    return { id: toSafeInteger(row?.id, 'id'), ...unsigned, signature };
  }

  async size(): Promise<number> {
    this.assertOpen();
    const row = await this.options.db.get<{ tree_size: number }>('SELECT tree_size FROM warden_custody_head WHERE id = 0');
    return row === undefined ? 0 : toSafeInteger(row.tree_size);
  }

  async record(seq: number): Promise<LedgerRecord | undefined> {
    const row = await this.options.db.get<RecordRow>('SELECT * FROM warden_custody_records WHERE seq = $1', [seq]);
    return row === undefined ? undefined : rowToRecord(numberRow(row));
  }

  async recordByKey(recordKey: string): Promise<LedgerRecord | undefined> {
    const row = await this.options.db.get<RecordRow>('SELECT * FROM warden_custody_records WHERE record_key = $1', [recordKey]);
    return row === undefined ? undefined : rowToRecord(numberRow(row));
  }

  async records(filter: RecordFilter = {}): Promise<LedgerRecord[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (filter.taskId !== undefined) {
      params.push(filter.taskId);
      where.push(`task_id = $${params.length}`);
    }
    if (filter.fromSeq !== undefined) {
      params.push(filter.fromSeq);
      where.push(`seq >= $${params.length}`);
    }
    if (filter.toSeq !== undefined) {
      params.push(filter.toSeq);
      where.push(`seq < $${params.length}`);
    }
    const rows = await this.options.db.all<RecordRow>(`SELECT * FROM warden_custody_records${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`, params);
    return rows.map((row) => rowToRecord(numberRow(row)));
  }

  /** The task of the first span recorded for `traceId`, if any. */
  async taskIdOfTrace(traceId: string): Promise<string | undefined> {
    const row = await this.options.db.get<{ task_id: string }>("SELECT task_id FROM warden_custody_records WHERE trace_id = $1 AND kind = 'span' ORDER BY seq LIMIT 1", [traceId]);
    return row?.task_id;
  }

  async checkpoints(): Promise<Checkpoint[]> {
    const rows = await this.options.db.all<CheckpointRow>('SELECT * FROM warden_custody_checkpoints ORDER BY id');
    return rows.map((row) => rowToCheckpoint(checkpointRow(row)));
  }

  async latestCheckpoint(): Promise<Checkpoint | undefined> {
    const row = await this.options.db.get<CheckpointRow>('SELECT * FROM warden_custody_checkpoints ORDER BY id DESC LIMIT 1');
    return row === undefined ? undefined : rowToCheckpoint(checkpointRow(row));
  }

  /** This worker's public key and those of the key folder (not the other workers': see {@link publishedCustodyKeys}). */
  publicKeys(): PublicJwk[] {
    return [...loadTrustedKeys(this.keyDir).values()].map(publicJwk);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.options.closeDatabase === true) await this.options.db.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new TypeError(`the custody ledger ${this.path} is closed`);
  }
}

/** Custody public keys every worker published to the shared database, by kid. */
export async function publishedCustodyKeys(db: SqlDatabase): Promise<PublicJwk[]> {
  const rows = await db.all<{ jwk: string }>("SELECT jwk FROM warden_public_keys WHERE purpose = 'custody' ORDER BY published_at, kid");
  return rows.map((row) => JSON.parse(row.jwk) as PublicJwk);
}
