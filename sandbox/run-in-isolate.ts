/**
 * Runs one tool call in a fresh V8 context of a warm isolate (isolated-vm, see isolate-pool.ts).
 * Meant to run inside the sandbox host process, never in the worker: a V8 failure here may end
 * the process.
 *
 * Security invariants:
 * - No host object reference enters the isolate. What goes in is strings, numbers, a deep copy of
 *   the input, and `ivm.Callback` functions whose arguments and results are copied both ways.
 *   The host holds References *into* the context (the prelude's `run` and `settle`); the one
 *   reverse case, sql's References to host functions (sqlReferences), stays in the prelude's
 *   closure, so tool code can reach no host object, prototype or constructor.
 * - Every call gets a new context, used by no other call and released at the end, in an isolate
 *   no other call is using: nothing a tool does (globals, prototype pollution, pending promises)
 *   is visible to any other call. An isolate that timed out or ran out of memory is disposed.
 * - `warden` holds only the capabilities the request grants; there is no `require`, `process`,
 *   timer, file or network access otherwise (isolated-vm contexts have none).
 * - Nothing coming out of the isolate is trusted: the host receives one string, checks its size,
 *   parses it, and maps failures to Warden error codes. A capability error code is reported only
 *   if the host itself raised that error during this call, so tool code cannot forge one.
 */
import ivm from 'isolated-vm';
import { CapabilityError, isErrorCode, WardenError, type ErrorCode } from '../errors';
import { markCallStarted } from '../recovery/call-starts';
import { failedOutcome, toCapabilityError, type CapabilityOutcome } from './capabilities/capability-error';
import { createFsCapability, realRootOf, resolveInsideWorkspace } from './capabilities/fs-capability';
import { createHttpCapability } from './capabilities/http-capability';
import { checkStatementArgs, type SqlGate, type SqlMeasurement } from './capabilities/sql-capability';
import { sharedSqlProcessPool } from './capabilities/sql-process-pool';
import type { IsolateLease, IsolatePool } from './isolate-pool';
import { createPolicyGate, type PolicyGate } from './policy-gate';
import type { CapabilityName } from '../tools/tool-descriptor';
import type { ToolEffect } from '../policies/engine/policy-request';
import type { CapabilityGrant, SandboxRunRequest, SandboxRunResponse } from './sandbox-messages';
import { cutText } from '../cut-text';
import { libraryTimeoutMs, longTimeoutSignal, setLongTimeout } from '../long-timer';
import { wellFormedJson } from '../custody/well-formed-json';
import { wellFormed } from '../custody/span-record';
import { terminalWriter } from '../terminal-text';

/** Longest error message reported for one call. */
const MAX_ERROR_MESSAGE_CHARS = 2000;
/** Deepest nesting of a tool result. */
const MAX_RESULT_DEPTH = 256;

/** A call's result before it is put into a response message. */
type CallOutcome = { ok: true; output: unknown } | { ok: false; code: ErrorCode; message: string; retryable?: boolean };

/**
 * Runs `request.source` as `async function (input, warden)` in a new context of an isolate from
 * `pool` with the request's limits (`memoryMb` picks the isolate's heap limit) and capabilities.
 * Never throws: every failure is a response with an error code. When `cancel` aborts (the
 * worker's activity was cancelled), the call's isolate is disposed, its capability requests in
 * flight are aborted (an http.fetch's socket destroyed) and no capability call starts after it;
 * the response, ERR_TOOL_CANCELLED, is sent only then. `stopOrdered` is called when the call's
 * isolate is told to stop (its timeout passed, it was cancelled, or it ran out of memory): the
 * host reports how long ago to a client checking it is alive (sandbox-client.ts, "liveness").
 */
export async function runInIsolate(request: SandboxRunRequest, pool: IsolatePool, cancel?: AbortSignal, reached?: (capability: CapabilityName) => void, stopOrdered?: () => void): Promise<SandboxRunResponse> {
  const startedAt = performance.now();
  let gate: PolicyGate | undefined;
  try {
    gate = request.policy === undefined ? undefined : createPolicyGate(request.policy, request.source, request.capabilities);
  } catch (error) {
    return { type: 'result', id: request.id, ok: false, error: { code: 'ERR_POLICY_INVALID', message: truncate(`the policy gate cannot be set up: ${messageOf(error)}`) }, durationMs: 0 };
  }
  const mended = { count: 0 };
  const outcome = await runToOutcome(request, pool, gate, mended, cancel, reached, stopOrdered);
  const durationMs = Math.round((performance.now() - startedAt) * 1000) / 1000;
  const policy = { ...(gate === undefined ? {} : { policy: gate.report() }), ...(mended.count === 0 ? {} : { capabilityArgsMended: mended.count }) };
  return outcome.ok
    ? { type: 'result', id: request.id, ok: true, output: outcome.output, durationMs, ...policy }
    : { type: 'result', id: request.id, ok: false, error: { code: outcome.code, message: truncate(outcome.message), ...(outcome.retryable === true ? { retryable: true } : {}) }, durationMs, ...policy };
}

/** What went wrong with the isolate itself, noticed on any path into it. */
interface IsolateTrouble {
  timedOut: boolean;
  outOfMemory: boolean;
  /** The worker cancelled the call (its activity was cancelled). */
  cancelled: boolean;
}

/**
 * The reason every call's `callEnded` signal aborts with: nothing reads it (the capabilities look
 * at `aborted`), and `abort()` without one builds a DOMException with its stack each call
 * (about 10 µs; issue 17).
 */
const CALL_ENDED = new Error('the tool call has ended');

const CANCELLED: CallOutcome = { ok: false, code: 'ERR_TOOL_CANCELLED', message: 'the tool call was cancelled: its isolate was disposed and its capability requests in flight aborted' };

async function runToOutcome(request: SandboxRunRequest, pool: IsolatePool, gate: PolicyGate | undefined, mended: { count: number }, cancel: AbortSignal | undefined, reached: ((capability: CapabilityName) => void) | undefined, stopOrdered: (() => void) | undefined): Promise<CallOutcome> {
  if (cancel?.aborted === true) return CANCELLED;
  const { timeoutMs, memoryMb, maxOutputBytes } = request.limits;
  let input: ivm.Copy<unknown>;
  try {
    input = new ivm.ExternalCopy(request.input).copyInto({ release: true });
  } catch {
    return { ok: false, code: 'ERR_TOOL_INPUT_INVALID', message: 'the tool input cannot be copied into the sandbox' };
  }

  const deadline = performance.now() + timeoutMs;
  let lease: IsolateLease;
  try {
    lease = await pool.lease(memoryMb, request.id);
  } catch (error) {
    return { ok: false, code: 'ERR_SANDBOX_CRASHED', message: `cannot create an isolate: ${messageOf(error)}` };
  }
  // Cancelled while an isolate was being found: the isolate ran nothing and goes back as it was.
  if (aborted(cancel)) {
    pool.giveBack(lease, false);
    return CANCELLED;
  }
  if (request.startRecord !== undefined) {
    const refused = await recordStart(request.startRecord, cancel, deadline, timeoutMs);
    // Refused, stopped while the record was written, or cancelled right after: the isolate ran nothing.
    if (refused !== undefined || aborted(cancel)) {
      pool.giveBack(lease, false);
      return refused ?? CANCELLED;
    }
  }
  const { isolate, run, settle } = lease;
  const trouble: IsolateTrouble = { timedOut: false, outOfMemory: false, cancelled: false };
  // Set only when the call ended by the prelude's own answer: any other ending (a time-out, the
  // memory limit, isolated-vm failing) leaves the isolate in a state it is not trusted in again.
  let answered = false;
  const issuedCodes = new Set<ErrorCode>();
  const sqlInFlight = new Set<Promise<unknown>>();
  const callEnded = new AbortController();
  const stop = (reason: keyof IsolateTrouble) => {
    trouble[reason] = true;
    stopOrdered?.();
    callEnded.abort(CALL_ENDED);
    if (!isolate.isDisposed) isolate.dispose();
  };
  // Wall clock for everything, including time spent awaiting host capabilities; isolated-vm's
  // own `timeout` below only covers synchronous runs.
  // The timeout may be a task's (up to 30 days): a long timer, as a bare one fires at once past 2^31 - 1 ms.
  const wallClock = setLongTimeout(() => stop('timedOut'), Math.max(1, Math.ceil(deadline - performance.now())));
  // A cancelled call stops as a timed-out one does: the isolate goes, the capabilities' signal aborts.
  const onCancel = () => stop('cancelled');
  cancel?.addEventListener('abort', onCancel, { once: true });

  try {
    const deliver = (ticket: unknown, outcome: CapabilityOutcome<unknown>) => {
      if (callEnded.signal.aborted || typeof ticket !== 'number') return;
      // isolated-vm takes a 32-bit timeout: a synchronous run past 24.855 days is stopped there (the wall clock above takes the rest).
      const remaining = libraryTimeoutMs(Math.max(1, Math.ceil(deadline - performance.now())));
      settle.apply(undefined, [ticket, outcome], { arguments: { copy: true }, timeout: remaining }).catch((error: unknown) => {
        // After the call ended the isolate may already serve another call: a late failure here
        // (the context was released) must not dispose it.
        if (!callEnded.signal.aborted) stop(isMemoryFailure(error) ? 'outOfMemory' : 'timedOut');
      });
    };
    const told = new Set<CapabilityName>();
    const reach = (capability: CapabilityName) => {
      if (told.has(capability)) return;
      // Told first: a notice that could not be written throws, and the use does not go ahead.
      reached?.(capability);
      told.add(capability);
    };
    const callbacks = capabilityCallbacks(request.capabilities, { issuedCodes, signal: callEnded.signal, deliver, mended, sqlInFlight, reach, ...(gate === undefined ? {} : { gate }) });
    const envelope: unknown = await run.apply(undefined, [...callbacks, request.source, input, maxOutputBytes, MAX_RESULT_DEPTH, request.toolName], {
      timeout: libraryTimeoutMs(Math.max(1, Math.ceil(deadline - performance.now()))),
      result: { promise: true, copy: true },
    });
    if (trouble.timedOut || trouble.outOfMemory || trouble.cancelled) return troubleOutcome(trouble, timeoutMs, memoryMb);
    answered = true;
    return decodeEnvelope(envelope, issuedCodes, maxOutputBytes);
  } catch (error) {
    if (isMemoryFailure(error)) trouble.outOfMemory = true;
    if (isTimeoutFailure(error) && !trouble.cancelled) trouble.timedOut = true;
    if (trouble.timedOut || trouble.outOfMemory || trouble.cancelled) return troubleOutcome(trouble, timeoutMs, memoryMb);
    if (isolate.isDisposed) return { ok: false, code: 'ERR_SANDBOX_CRASHED', message: 'the isolate was disposed unexpectedly' };
    return { ok: false, code: 'ERR_TOOL_THREW', message: wellFormed(messageOf(error)) };
  } finally {
    wallClock.clear();
    cancel?.removeEventListener('abort', onCancel);
    callEnded.abort(CALL_ENDED);
    pool.giveBack(lease, !answered);
    // A statement of a stopped call has its process killed: answered only once it has exited.
    await Promise.allSettled([...sqlInFlight]);
  }
}

/**
 * Records durably that the call's tool starts now (recovery/call-starts.ts), within the call's own
 * bounds: the write shares the host with every task's calls, so a recovery folder that stalls (a
 * hung network mount) must end this call, by its deadline or its cancel, never get the host killed.
 * Undefined when the record is made; otherwise the failure that keeps the tool from starting, and no
 * record is made after it (the write's point of no return is aborted with it):
 * ERR_TOOL_CANCELLED when the call was cancelled or its compensation already fenced it off as
 * never started; ERR_SANDBOX_TIMEOUT at the call's deadline; ERR_SHARED_STORAGE, retryable, when
 * the record cannot be written (the tool did not run; another attempt may); another Warden error
 * with its own code and retryability.
 */
async function recordStart(record: { file: string; callId: string }, cancel: AbortSignal | undefined, deadline: number, timeoutMs: number): Promise<CallOutcome | undefined> {
  const overrun = longTimeoutSignal(Math.max(1, Math.ceil(deadline - performance.now())));
  const stop = cancel === undefined ? overrun : AbortSignal.any([cancel, overrun]);
  const stopped = new Promise<undefined>((resolve) => {
    if (stop.aborted) resolve(undefined);
    else stop.addEventListener('abort', () => resolve(undefined), { once: true });
  });
  const written = markCallStarted(record.file, record.callId, stop).then(
    () => undefined,
    (error: unknown): CallOutcome => {
      if (error instanceof WardenError && isErrorCode(error.code)) return { ok: false, code: error.code, message: error.message, ...(error.retryable ? { retryable: true } : {}) };
      return { ok: false, code: 'ERR_SHARED_STORAGE', message: `the call's start record could not be written, so its tool did not start: ${messageOf(error)}`, retryable: true };
    },
  );
  const outcome = await Promise.race([written, stopped]);
  if (!stop.aborted) return outcome;
  return aborted(cancel) ? CANCELLED : { ok: false, code: 'ERR_SANDBOX_TIMEOUT', message: `the call's start record was not written within its timeout of ${timeoutMs} ms; the tool did not start` };
}

function troubleOutcome(trouble: IsolateTrouble, timeoutMs: number, memoryMb: number): CallOutcome {
  if (trouble.cancelled) return CANCELLED;
  return trouble.outOfMemory
    ? { ok: false, code: 'ERR_SANDBOX_MEMORY', message: `the tool exceeded its memory limit of ${memoryMb} MB` }
    : { ok: false, code: 'ERR_SANDBOX_TIMEOUT', message: `the tool did not finish within ${timeoutMs} ms` };
}

/** Read through a call: an `await` may have aborted the signal since it was last looked at. */
function aborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function isMemoryFailure(error: unknown): boolean {
  return /memory limit/i.test(messageOf(error));
}

function isTimeoutFailure(error: unknown): boolean {
  return /Script execution timed out/.test(messageOf(error));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function truncate(text: string): string {
  return text.length > MAX_ERROR_MESSAGE_CHARS ? `${cutText(text, MAX_ERROR_MESSAGE_CHARS)}…` : text;
}

/** isolated-vm's advice when V8 loses control of an isolate: end the process (the client restarts it). */
export function abortHostProcess(message: string): void {
  // The sandbox host's stderr is the CLI's (inherited): on a terminal, controls are shown escaped.
  terminalWriter(process.stderr)(`sandbox host: catastrophic isolate failure: ${message}\n`);
  process.abort();
}

/**
 * Turns the string the bootstrap's `run` resolved to into an outcome. The string is untrusted
 * (tool code can tamper with the isolate's intrinsics), so every field is re-checked here.
 */
function decodeEnvelope(envelope: unknown, issuedCodes: ReadonlySet<ErrorCode>, maxOutputBytes: number): CallOutcome {
  if (typeof envelope !== 'string') return { ok: false, code: 'ERR_TOOL_OUTPUT_NOT_JSON', message: 'the tool result could not be read' };
  const separator = envelope.indexOf(':');
  const tag = envelope.slice(0, separator);
  // A failure's text (a tool's or a verifier's message, name, stack; V8's own messages quote
  // single UTF-16 units) is made well-formed here, the one place it leaves the isolate; an `ok`
  // payload is JSON, whose escapes are mended by the caller's entry (wellFormedJson).
  const raw = envelope.slice(separator + 1);
  const payload = tag === 'ok' ? raw : wellFormed(raw);
  const tooLarge: CallOutcome = { ok: false, code: 'ERR_TOOL_OUTPUT_TOO_LARGE', message: `the tool result is larger than ${maxOutputBytes} bytes` };
  switch (tag) {
    case 'ok': {
      if (Buffer.byteLength(payload, 'utf8') > maxOutputBytes) return tooLarge;
      try {
        return { ok: true, output: JSON.parse(payload) as unknown };
      } catch {
        return { ok: false, code: 'ERR_TOOL_OUTPUT_NOT_JSON', message: 'the tool result is not valid JSON' };
      }
    }
    case 'toolarge':
      return tooLarge;
    case 'notjson':
      return { ok: false, code: 'ERR_TOOL_OUTPUT_NOT_JSON', message: `the tool must return a JSON value: ${payload}` };
    case 'compile':
      return { ok: false, code: 'ERR_SANDBOX_COMPILE', message: `the tool source does not compile: ${payload}` };
    case 'threw':
      for (const code of issuedCodes) {
        if (payload.startsWith(`${code}: `)) return { ok: false, code, message: payload.slice(code.length + 2) };
      }
      return { ok: false, code: 'ERR_TOOL_THREW', message: payload };
    default:
      return { ok: false, code: 'ERR_TOOL_OUTPUT_NOT_JSON', message: 'the tool result could not be read' };
  }
}

interface CallbackBridge {
  /** Codes of every capability error raised during this call. */
  issuedCodes: Set<ErrorCode>;
  /** Aborted when the call ends: in-flight host work stops. */
  signal: AbortSignal;
  /** Hands the outcome of an asynchronous capability call back to the isolate. */
  deliver: (ticket: unknown, outcome: CapabilityOutcome<unknown>) => void;
  /** Decides each capability call before it applies (absent: no policy, as for direct host use). */
  gate?: PolicyGate;
  /** How many strings of capability-call arguments were made well-formed at entry, this call. */
  mended: { count: number };
  /** Tells the client the call reached `capability`, before that use goes ahead (once per capability). */
  reach: (capability: CapabilityName) => void;
  /** SQL statements of this call not yet settled (a stopped one settles once its process has exited). */
  sqlInFlight: Set<Promise<unknown>>;
}

/**
 * A capability call's arguments as they cross from the isolate into the host, made well-formed
 * (each lone surrogate U+FFFD, custody/well-formed-json.ts): the gate decides and digests exactly
 * what is then executed, and canonical JSON never refuses them on the path that records a refusal.
 */
function wellFormedArgs<A extends unknown[]>(args: A, mended: { count: number }): A {
  const good = wellFormedJson(args);
  mended.count += good.mended;
  return good.value;
}

/**
 * The capability callbacks in the order the prelude's `run` expects them (fs.read, fs.write, fs.list,
 * http.fetch, sql.query, sql.exec); `undefined` for anything not granted, so it is never installed.
 */
function capabilityCallbacks(grant: CapabilityGrant, bridge: CallbackBridge): (ivm.Callback | ivm.Reference | undefined)[] {
  const sync = <A extends unknown[]>(operation: (...args: A) => unknown, fallback: ErrorCode) =>
    new ivm.Callback((...raw: A): CapabilityOutcome<unknown> => {
      try {
        const args = wellFormedArgs(raw, bridge.mended);
        return { ok: true, value: operation(...args) };
      } catch (error) {
        return recordFailure(error, fallback, bridge.issuedCodes);
      }
    });

  const { gate } = bridge;
  const fs = grant.fs === undefined ? undefined : createFsCapability(grant.fs);
  const sql = grant.sql === undefined ? undefined : sqlReferences(grant.sql, bridge);
  const http = grant.http === undefined ? undefined : createHttpCapability(grant.http, { signal: bridge.signal });
  // The gate sees the call as the built-in of that capability would make it; a path is judged as
  // the file it really leads to (links inside the workspace followed), as for the built-ins.
  const decide = (capability: CapabilityName, args: Record<string, unknown>) => {
    if (gate === undefined) return;
    const resolved = capability.startsWith('fs.') && grant.fs !== undefined ? resolvedPath(grant.fs.root, args.path ?? '.') : undefined;
    const access = capability === 'fs.write' ? 'write' : capability === 'fs.list' ? 'list' : 'read';
    gate.check(capability, args, resolved === undefined ? undefined : { paths: [{ path: resolved, access, pointer: '/path' }] });
  };

  // Asynchronous capabilities: isolated-vm cannot hand a host promise to the isolate, so the
  // callback only starts the work (returning at once) and `deliver` settles the isolate-side
  // promise with a copied outcome when it is done.
  const httpFetch =
    http === undefined
      ? undefined
      : new ivm.Callback((ticket: unknown, rawUrl: unknown, rawInit: unknown) => {
          let url: unknown;
          let init: unknown;
          try {
            bridge.reach('http.fetch');
            [url, init] = wellFormedArgs([rawUrl, rawInit], bridge.mended);
            const options = typeof init === 'object' && init !== null ? (init as Record<string, unknown>) : {};
            decide('http.fetch', { url, ...(typeof options.method === 'string' ? { method: options.method } : {}), ...(typeof options.body === 'string' ? { body: options.body } : {}) });
          } catch (error) {
            bridge.deliver(ticket, recordFailure(error, 'ERR_POLICY_DENIED', bridge.issuedCodes));
            return;
          }
          http.fetch(url, init).then(
            (value) => bridge.deliver(ticket, { ok: true, value }),
            (error: unknown) => bridge.deliver(ticket, recordFailure(error, 'ERR_NETWORK_FAILED', bridge.issuedCodes)),
          );
        });

  return [
    fs !== undefined && grant.fs?.read
      ? sync((path: unknown) => {
          bridge.reach('fs.read');
          decide('fs.read', { path });
          return fs.read(path);
        }, 'ERR_FS_FAILED')
      : undefined,
    fs !== undefined && grant.fs?.write
      ? sync((path: unknown, content: unknown) => {
          bridge.reach('fs.write');
          decide('fs.write', { path, content });
          return fs.write(path, content);
        }, 'ERR_FS_FAILED')
      : undefined,
    fs !== undefined && grant.fs?.list
      ? sync((path: unknown) => {
          bridge.reach('fs.list');
          decide('fs.list', path === undefined || path === null ? {} : { path });
          return fs.list(path ?? '.');
        }, 'ERR_FS_FAILED')
      : undefined,
    httpFetch,
    sql !== undefined && grant.sql?.query ? sql.query : undefined,
    sql !== undefined && grant.sql?.exec ? sql.exec : undefined,
  ];
}

/**
 * `sql.query` and `sql.exec` as References to host functions that the prelude calls with
 * `applySyncPromise`: the tool sees a synchronous call (its isolate's thread waits), while the
 * statement runs in a SQL process (capabilities/sql-process-pool.ts) and the host's main thread
 * stays free to stop this call, or answer others, meanwhile. The References are the prelude's
 * alone: it captures them before tool code runs, and never hands them, or an error thrown by
 * them, to tool code (isolate-prelude.ts). Each resolves to a copied CapabilityOutcome.
 */
function sqlReferences(grant: NonNullable<CapabilityGrant['sql']>, bridge: CallbackBridge): { query: ivm.Reference; exec: ivm.Reference } {
  const gate = bridge.gate === undefined ? undefined : sqlGate(bridge.gate);
  const processes = sharedSqlProcessPool();
  void processes.prewarm();
  let execCount = 0;
  // What applySyncPromise hands the isolate must be transferable: the outcome goes as a copy.
  const copied = (outcome: CapabilityOutcome<unknown>) => new ivm.ExternalCopy(outcome).copyInto({ release: true });
  const statement = (op: 'query' | 'exec') => async (...raw: unknown[]): Promise<ivm.Copy<CapabilityOutcome<unknown>>> => copied(await outcomeOf(op, raw));
  const outcomeOf = async (op: 'query' | 'exec', raw: unknown[]): Promise<CapabilityOutcome<unknown>> => {
    try {
      bridge.reach(op === 'query' ? 'sql.query' : 'sql.exec');
      if (bridge.signal.aborted) throw new CapabilityError('ERR_TOOL_CANCELLED', 'the tool call has ended');
      const [database, sql, params] = wellFormedArgs(raw, bridge.mended);
      const args = params ?? [];
      // Checked here, as the tool passed them: the transport to the SQL process is JSON.
      checkStatementArgs(grant, op, database, sql, args);
      let execNumber: number | undefined;
      if (op === 'exec') {
        execCount += 1;
        execNumber = execCount;
      }
      const running = processes.run(grant, { op, database, sql, params: args, ...(execNumber === undefined ? {} : { execNumber }) }, gate, bridge.signal);
      bridge.sqlInFlight.add(running);
      try {
        return { ok: true, value: await running };
      } finally {
        bridge.sqlInFlight.delete(running);
      }
    } catch (error) {
      return recordFailure(error, 'ERR_SQL_FAILED', bridge.issuedCodes);
    }
  };
  return { query: new ivm.Reference(statement('query')), exec: new ivm.Reference(statement('exec')) };
}

/** Where a workspace path really leads (links inside the workspace followed); undefined when it does not resolve (the capability then refuses the call). */
function resolvedPath(root: string, path: unknown): string | undefined {
  try {
    return resolveInsideWorkspace(realRootOf(root), path).display;
  } catch {
    return undefined;
  }
}

/** The SQL broker's questions, put to the gate as sql.query / sql.exec calls with what was measured. */
function sqlGate(gate: PolicyGate): SqlGate {
  const args = (m: SqlMeasurement) => ({ database: m.database, sql: m.sql, params: [...m.params] });
  return {
    query: (m) => gate.check('sql.query', args(m), { tablesRead: m.tablesRead.map((t) => `${m.database}.${t}`), columnsFromTables: m.columnsFromTables === true }),
    exec: (m) => gate.check('sql.exec', args(m), sqlEffectOf(m)),
  };
}

/** The measured effect of an executed statement: rows by operation and by table, cascades and triggers included. */
export function sqlEffectOf(m: SqlMeasurement): ToolEffect {
  const changes = m.changes ?? [];
  const byOp = { delete: 0, insert: 0, update: 0 };
  for (const c of changes) byOp[c.op] += c.rows;
  const ops = (['delete', 'insert', 'update'] as const).filter((op) => byOp[op] > 0);
  return {
    rowsChanged: byOp.delete + byOp.insert + byOp.update,
    rowsByOperation: byOp,
    operation: ops.length === 1 ? ops[0] : ops.length === 0 ? 'none' : 'mixed',
    tables: changes.map((c) => ({ table: c.table, database: m.database, op: c.op, rows: c.rows })),
    tablesRead: m.tablesRead.map((t) => `${m.database}.${t}`),
  };
}

function recordFailure(error: unknown, fallback: ErrorCode, issuedCodes: Set<ErrorCode>): CapabilityOutcome<never> {
  const failure = toCapabilityError(error, fallback);
  issuedCodes.add(failure.code);
  return failedOutcome(failure);
}
