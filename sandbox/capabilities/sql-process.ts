/**
 * Entry point of a SQL process: a child of the sandbox host that runs tools' SQL statements, one at
 * a time, so that a statement that does not end holds this process, never the host's main thread.
 *
 * Why a process: SQLite cannot be interrupted from JavaScript (`sqlite3_step` holds its thread;
 * a worker thread's `terminate()` waits for it to return), but a process can be killed. The host
 * kills this process when the statement's call is cancelled or overruns; the open transaction was
 * never committed, and SQLite's rollback journal undoes it at the next open (brokered execs journal
 * their images before committing and record the call id in the same transaction, so a journaled
 * call whose id is not in the target never happened: recovery/sql-undo-journal.ts).
 *
 * Protocol (newline-delimited JSON; read and written synchronously, the statement runs inside a
 * synchronous SQLite transaction): stdin gives `run` requests (sql-process-pool.ts,
 * SqlProcessRequestSchema); for each, stdout gives zero or more `decide` questions, each answered
 * on stdin by a `verdict` before the statement goes on (the host's policy gate decides every
 * statement, an exec inside its open transaction), then one `result`.
 *
 * Invariants: the process holds no state between statements but its loaded modules (each opens
 * and closes its database); it ends when its stdin closes, and a watchdog thread kills it when
 * its parent (the host) is gone, even in the middle of a statement, so no statement outlives the
 * host that asked for it.
 */
// First: the modules below compile with the forking Warden process's code cache.
import './sql-process-code-cache';
import * as fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { Worker } from 'node:worker_threads';
import { CapabilityError } from '../../errors';
import { capabilityError } from './capability-error';
import { writeAllSync } from '../write-all-sync';
import { runSqlStatement, type SqlGate, type SqlMeasurement } from './sql-capability';
import type { SqlProcessRequest, SqlProcessVerdict } from './sql-process-pool';

const STDIN = 0;
const STDOUT = 1;
/** How often the watchdog looks for its parent, in ms. */
const WATCHDOG_INTERVAL_MS = 200;

const decoder = new StringDecoder('utf8');
const chunk = Buffer.alloc(64 * 1024);
const pause = new Int32Array(new SharedArrayBuffer(4));
/** Text read after the last line returned, not yet scanned whole; and the earlier pieces of its line. */
let buffered = '';
const pieces: string[] = [];

/** The next line on stdin, blocking; undefined at its end. Each chunk is scanned once (not the whole line per chunk). */
function readLine(): string | undefined {
  for (;;) {
    const newline = buffered.indexOf('\n');
    if (newline !== -1) {
      pieces.push(buffered.slice(0, newline));
      const line = pieces.join('');
      pieces.length = 0;
      buffered = buffered.slice(newline + 1);
      return line;
    }
    if (buffered !== '') pieces.push(buffered);
    buffered = '';
    let read: number;
    try {
      read = fs.readSync(STDIN, chunk, 0, chunk.length, null);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 2);
        continue;
      }
      if (code === 'EOF') return undefined;
      throw error;
    }
    if (read === 0) return undefined;
    buffered = decoder.write(chunk.subarray(0, read));
  }
}

function writeLine(message: unknown): void {
  try {
    writeAllSync(STDOUT, Buffer.from(`${JSON.stringify(message)}\n`, 'utf8'));
  } catch (error) {
    // The host is gone: nobody is left to answer.
    if ((error as NodeJS.ErrnoException).code === 'EPIPE') process.exit(0);
    throw error;
  }
}

/** Asks the host's gate about `measurement`; throws when it refuses (the host keeps its own error to report). */
function ask(kind: 'query' | 'exec', measurement: SqlMeasurement): void {
  writeLine({ type: 'decide', kind, measurement });
  const line = readLine();
  if (line === undefined) process.exit(0);
  const verdict = JSON.parse(line) as SqlProcessVerdict;
  if (verdict.allow !== true) throw capabilityError('ERR_POLICY_DENIED', 'the policy gate refused the statement');
}

const gate: SqlGate = { query: (m) => ask('query', m), exec: (m) => ask('exec', m) };

function serve(): void {
  writeLine({ type: 'ready' });
  for (;;) {
    const line = readLine();
    if (line === undefined) return;
    const request = JSON.parse(line) as SqlProcessRequest;
    try {
      const value = runSqlStatement(request.grant, request.call, request.gated ? { gate } : {});
      writeLine({ type: 'result', ok: true, value });
    } catch (error) {
      const failure = error instanceof CapabilityError ? error : capabilityError('ERR_SQL_FAILED', 'the capability failed unexpectedly');
      writeLine({ type: 'result', ok: false, code: failure.code, message: failure.message, ...(Object.keys(failure.details).length === 0 ? {} : { details: failure.details }) });
    }
  }
}

/** Kills this process once its parent has gone (reparented), also while the main thread is inside a statement. */
function startWatchdog(): void {
  const source = `
    const parent = process.ppid;
    setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL'); }, ${WATCHDOG_INTERVAL_MS});
  `;
  new Worker(source, { eval: true }).unref();
}

if (require.main === module) {
  startWatchdog();
  serve();
  process.exit(0);
}
