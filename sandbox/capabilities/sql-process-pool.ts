/**
 * The sandbox host's SQL processes: a warm pool of child processes (sql-process.ts) that run
 * tools' SQL statements, one statement per process at a time, off the host's main thread.
 *
 * Why: a statement that does not end (any agent granted a database can write one) held the host's
 * main thread in `sqlite3_step`, so the host could neither stop the call nor answer any other; the
 * worker then killed the host and every call pending on it, other tasks' included, was answered
 * ERR_SANDBOX_CRASHED. Now the host stays free: a cancelled or overrunning call's statement is
 * stopped by killing its SQL process (its transaction never commits), and the host answers the
 * call itself.
 *
 * Invariants:
 * - The host's policy gate decides every statement, in the host, before it applies: the process
 *   asks (`decide`, with what it measured inside its open transaction) and waits for the verdict;
 *   a refusal rolls the statement back and the gate's own error is what the call reports.
 * - A statement whose `signal` aborts has its process killed (SIGKILL) and settles only once that
 *   process has exited: nothing of it runs on after the call's answer.
 * - No process spawn per statement: processes are reused while they answer; one more than the
 *   statements in flight is kept ready (started in the background), at most `maxIdle` idle.
 * - Messages from a process are checked (zod); a malformed one, or a process that ends while
 *   asked, fails the statement ERR_SQL_FAILED and the process is killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { z } from 'zod';
import { CapabilityError, isErrorCode } from '../../errors';
import type { CapabilityGrant } from '../sandbox-messages';
import { capabilityError } from './capability-error';
import type { SqlGate, SqlMeasurement, SqlStatementCall } from './sql-capability';

/** What the host sends a SQL process for one statement. */
export interface SqlProcessRequest {
  type: 'run';
  grant: NonNullable<CapabilityGrant['sql']>;
  call: SqlStatementCall;
  /** Whether the statement is decided by a gate (the process asks, brokered exec). */
  gated: boolean;
}

/** The host's answer to a `decide`. */
export interface SqlProcessVerdict {
  type: 'verdict';
  allow: boolean;
}

const SqlValueSchema = z.union([z.string(), z.number(), z.null()]);
const MeasurementSchema = z.strictObject({
  database: z.string(),
  sql: z.string(),
  params: z.array(SqlValueSchema),
  tablesRead: z.array(z.string()),
  columnsFromTables: z.boolean().optional(),
  changes: z.array(z.strictObject({ table: z.string(), op: z.enum(['insert', 'update', 'delete']), rows: z.number() })).optional(),
});
const SqlProcessMessageSchema = z.union([
  z.strictObject({ type: z.literal('decide'), kind: z.enum(['query', 'exec']), measurement: MeasurementSchema }),
  z.strictObject({ type: z.literal('result'), ok: z.literal(true), value: z.unknown() }),
  z.strictObject({ type: z.literal('result'), ok: z.literal(false), code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
]);

const FROM_SOURCE = path.extname(__filename) === '.ts';
const PROCESS_MODULE = path.join(__dirname, FROM_SOURCE ? 'sql-process.ts' : 'sql-process.js');
const EXEC_ARGV = FROM_SOURCE ? ['--require', require.resolve('tsx/cjs')] : [];
const DEFAULT_MAX_IDLE = 2;
/**
 * Most characters of one message from a SQL process (a result's JSON): a process that sends a
 * longer one is killed and its statement fails ERR_SQL_FAILED, so a huge result never holds the
 * host (every task's) in building or parsing it.
 */
export const MAX_SQL_MESSAGE_CHARS = 64 * 1024 * 1024;
/** The line a SQL process writes once its modules are loaded. */
const READY_LINE = JSON.stringify({ type: 'ready' });

interface SqlProcess {
  child: ChildProcess;
  exited: Promise<void>;
  /** Lines from stdout not yet consumed, and who waits for the next. */
  lines: string[];
  waiter?: (line: string | undefined) => void;
  ended: boolean;
  /** Statements it has run. */
  runs: number;
  /** Set when it sent a message over the size limit (it is killed then). */
  overLimit: boolean;
  /** Settles once it has booted (its `ready` line) or ended. */
  ready: Promise<void>;
  booted: () => void;
}

export interface SqlProcessPoolOptions {
  /** Idle processes kept. Default 2. */
  maxIdle?: number;
  /** Most characters of one message from a process. Default MAX_SQL_MESSAGE_CHARS. */
  maxMessageChars?: number;
}

export interface SqlProcessPoolStats {
  /** Processes started. */
  started: number;
  /** Statements run by a process that had run one before. */
  reused: number;
  /** Processes killed because their statement's call was cancelled or overran. */
  killed: number;
}

export class SqlProcessPool {
  readonly #maxIdle: number;
  readonly #maxMessageChars: number;
  readonly #idle: SqlProcess[] = [];
  #closed = false;
  #started = 0;
  #reused = 0;
  #killed = 0;

  constructor(options: SqlProcessPoolOptions = {}) {
    this.#maxIdle = options.maxIdle ?? DEFAULT_MAX_IDLE;
    this.#maxMessageChars = options.maxMessageChars ?? MAX_SQL_MESSAGE_CHARS;
  }

  get stats(): SqlProcessPoolStats {
    return { started: this.#started, reused: this.#reused, killed: this.#killed };
  }

  /**
   * Starts a process now when none is idle, so the first statement does not wait for one to boot;
   * resolves once the idle process has booted (or ended: a process that cannot start is the
   * statement's failure to report, not the caller's).
   */
  prewarm(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#idle.length === 0) this.#idle.push(this.#spawn());
    return this.#idle[this.#idle.length - 1]!.ready;
  }

  /**
   * Runs one statement in a SQL process: rows (query) or the exec result. The process asks `gate`
   * (when given) inside the statement. Throws the CapabilityError the statement failed with (the
   * gate's own when it refused), ERR_SQL_FAILED when the process failed, ERR_TOOL_CANCELLED once
   * the process was killed because `signal` aborted.
   */
  async run(grant: SqlProcessRequest['grant'], call: SqlStatementCall, gate: SqlGate | undefined, signal: AbortSignal): Promise<unknown> {
    if (this.#closed) throw capabilityError('ERR_SQL_FAILED', 'the SQL processes are closed');
    if (signal.aborted) throw cancelled();
    const reused = this.#idle.pop();
    const proc = reused ?? this.#spawn();
    if (proc.runs > 0) this.#reused += 1;
    proc.runs += 1;
    // One ready for the next statement, started while this one runs.
    void this.prewarm();
    let stopped = false;
    const onAbort = () => {
      stopped = true;
      this.#killed += 1;
      proc.child.kill('SIGKILL');
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      const request: SqlProcessRequest = { type: 'run', grant, call, gated: gate !== undefined };
      send(proc, request);
      let refusal: CapabilityError | undefined;
      for (;;) {
        const line = await nextLine(proc);
        if (stopped) {
          await proc.exited;
          throw cancelled();
        }
        if (line === undefined && proc.overLimit) {
          throw capabilityError('ERR_SQL_FAILED', `the statement's result is over ${this.#maxMessageChars} characters of JSON; select fewer or smaller rows`);
        }
        if (line === undefined) throw capabilityError('ERR_SQL_FAILED', 'the SQL process ended while running the statement');
        const message = parseMessage(line);
        if (message === undefined) {
          proc.child.kill('SIGKILL');
          throw capabilityError('ERR_SQL_FAILED', 'the SQL process sent a malformed message');
        }
        if (message.type === 'decide') {
          let allow = true;
          try {
            decide(gate, message.kind, message.measurement as SqlMeasurement);
          } catch (error) {
            allow = false;
            refusal = error instanceof CapabilityError ? error : capabilityError('ERR_POLICY_DENIED', 'the policy gate refused the statement');
          }
          const verdict: SqlProcessVerdict = { type: 'verdict', allow };
          send(proc, verdict);
          continue;
        }
        this.#giveBack(proc);
        if (message.ok) return message.value;
        if (refusal !== undefined) throw refusal;
        const code = isErrorCode(message.code) ? message.code : 'ERR_SQL_FAILED';
        throw capabilityError(code, message.message, message.details);
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Kills every process; statements in flight fail. */
  close(): void {
    this.#closed = true;
    for (const proc of this.#idle.splice(0)) proc.child.kill('SIGKILL');
  }

  #spawn(): SqlProcess {
    const child = spawn(process.execPath, [...EXEC_ARGV, PROCESS_MODULE], { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
    this.#started += 1;
    let booted = () => undefined as void;
    const ready = new Promise<void>((resolve) => (booted = resolve));
    const proc: SqlProcess = {
      child,
      lines: [],
      ended: false,
      runs: 0,
      overLimit: false,
      ready,
      booted,
      exited: new Promise<void>((resolve) => child.once('exit', () => resolve())),
    };
    // The line being read, in pieces: each chunk is scanned once, and joined once at its line's end
    // (rescanning the whole line per chunk was quadratic: a 100 MB result held the host).
    const pieces: string[] = [];
    let pending = 0;
    const maxChars = this.#maxMessageChars;
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (text: string) => {
      if (proc.overLimit) return;
      let start = 0;
      for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
        pieces.push(text.slice(start, newline));
        const line = pieces.join('');
        pieces.length = 0;
        pending = 0;
        start = newline + 1;
        if (line.length > maxChars) return overLimit();
        deliver(proc, line);
      }
      if (start === text.length) return;
      pending += text.length - start;
      if (pending > maxChars) return overLimit();
      pieces.push(text.slice(start));
    });
    const overLimit = () => {
      proc.overLimit = true;
      pieces.length = 0;
      child.kill('SIGKILL');
    };
    const end = () => {
      proc.ended = true;
      proc.booted();
      const index = this.#idle.indexOf(proc);
      if (index !== -1) this.#idle.splice(index, 1);
      const waiter = proc.waiter;
      proc.waiter = undefined;
      waiter?.(undefined);
    };
    child.once('exit', end);
    child.once('error', end);
    // A write to a process that has just died is reported here and by its exit.
    child.stdin!.on('error', () => undefined);
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    return proc;
  }

  #giveBack(proc: SqlProcess): void {
    if (this.#closed || proc.ended || this.#idle.length >= this.#maxIdle) {
      proc.child.stdin?.end();
      return;
    }
    this.#idle.push(proc);
  }
}

function cancelled(): CapabilityError {
  return capabilityError('ERR_TOOL_CANCELLED', 'the statement was stopped: its call was cancelled or overran');
}

function decide(gate: SqlGate | undefined, kind: 'query' | 'exec', measurement: SqlMeasurement): void {
  if (gate === undefined) return;
  if (kind === 'query') gate.query(measurement);
  else gate.exec(measurement);
}

function send(proc: SqlProcess, message: unknown): void {
  proc.child.stdin?.write(`${JSON.stringify(message)}\n`);
}

function deliver(proc: SqlProcess, line: string): void {
  if (line === READY_LINE) {
    proc.booted();
    return;
  }
  const waiter = proc.waiter;
  if (waiter === undefined) {
    proc.lines.push(line);
    return;
  }
  proc.waiter = undefined;
  waiter(line);
}

function nextLine(proc: SqlProcess): Promise<string | undefined> {
  const line = proc.lines.shift();
  if (line !== undefined) return Promise.resolve(line);
  if (proc.ended) return Promise.resolve(undefined);
  return new Promise((resolve) => (proc.waiter = resolve));
}

function parseMessage(line: string): z.infer<typeof SqlProcessMessageSchema> | undefined {
  try {
    const parsed = SqlProcessMessageSchema.safeParse(JSON.parse(line));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

let shared: SqlProcessPool | undefined;

/** This process's pool (the sandbox host has one), created on first use. */
export function sharedSqlProcessPool(): SqlProcessPool {
  shared ??= new SqlProcessPool();
  return shared;
}

/** Closes this process's pool, if it was created (the host, as it ends). */
export function closeSharedSqlProcessPool(): void {
  shared?.close();
  shared = undefined;
}
