/**
 * Runs one tool call in a fresh V8 isolate (isolated-vm). Meant to run inside the sandbox host
 * process, never in the worker: a V8 failure here may end the process.
 *
 * Security invariants:
 * - No host object reference enters the isolate. What goes in is strings, numbers, a deep copy of
 *   the input, and `ivm.Callback` functions whose arguments and results are copied both ways.
 *   The host holds References *into* the isolate (the bootstrap's `run` and `settle`), never the
 *   reverse, so tool code can reach no host object, prototype or constructor.
 * - Every call gets a new isolate and context, disposed at the end: nothing a tool does (globals,
 *   prototype pollution, pending promises) is visible to any other call.
 * - `warden` holds only the capabilities the request grants; there is no `require`, `process`,
 *   timer, file or network access otherwise (isolated-vm contexts have none).
 * - Nothing coming out of the isolate is trusted: the host receives one string, checks its size,
 *   parses it, and maps failures to Warden error codes. A capability error code is reported only
 *   if the host itself raised that error during this call, so tool code cannot forge one.
 */
import ivm from 'isolated-vm';
import type { ErrorCode } from '../errors';
import { failedOutcome, toCapabilityError, type CapabilityOutcome } from './capabilities/capability-error';
import { createFsCapability, realRootOf, resolveInsideWorkspace } from './capabilities/fs-capability';
import { createHttpCapability } from './capabilities/http-capability';
import { createSqlCapability, type SqlGate, type SqlMeasurement } from './capabilities/sql-capability';
import { createPolicyGate, type PolicyGate } from './policy-gate';
import type { CapabilityName } from '../tools/tool-descriptor';
import type { ToolEffect } from '../policies/engine/policy-request';
import type { CapabilityGrant, SandboxRunRequest, SandboxRunResponse } from './sandbox-messages';

/** Longest error message reported for one call. */
const MAX_ERROR_MESSAGE_CHARS = 2000;
/** Time allowed to set up `warden` before tool code runs. */
const BOOTSTRAP_TIMEOUT_MS = 1000;
/** Deepest nesting of a tool result. */
const MAX_RESULT_DEPTH = 256;

/** A call's result before it is put into a response message. */
type CallOutcome = { ok: true; output: unknown } | { ok: false; code: ErrorCode; message: string };

/**
 * Runs `request.source` as `async function (input, warden)` in a new isolate with the request's
 * limits and capabilities. Never throws: every failure is a response with an error code.
 */
export async function runInIsolate(request: SandboxRunRequest): Promise<SandboxRunResponse> {
  const startedAt = performance.now();
  let gate: PolicyGate | undefined;
  try {
    gate = request.policy === undefined ? undefined : createPolicyGate(request.policy, request.source);
  } catch (error) {
    return { type: 'result', id: request.id, ok: false, error: { code: 'ERR_POLICY_INVALID', message: truncate(`the policy gate cannot be set up: ${messageOf(error)}`) }, durationMs: 0 };
  }
  const outcome = await runToOutcome(request, gate);
  const durationMs = Math.round((performance.now() - startedAt) * 1000) / 1000;
  const policy = gate === undefined ? {} : { policy: gate.report() };
  return outcome.ok
    ? { type: 'result', id: request.id, ok: true, output: outcome.output, durationMs, ...policy }
    : { type: 'result', id: request.id, ok: false, error: { code: outcome.code, message: truncate(outcome.message) }, durationMs, ...policy };
}

/** What went wrong with the isolate itself, noticed on any path into it. */
interface IsolateTrouble {
  timedOut: boolean;
  outOfMemory: boolean;
}

async function runToOutcome(request: SandboxRunRequest, gate: PolicyGate | undefined): Promise<CallOutcome> {
  const { timeoutMs, memoryMb, maxOutputBytes } = request.limits;
  let input: ivm.Copy<unknown>;
  try {
    input = new ivm.ExternalCopy(request.input).copyInto({ release: true });
  } catch {
    return { ok: false, code: 'ERR_TOOL_INPUT_INVALID', message: 'the tool input cannot be copied into the sandbox' };
  }

  const isolate = new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError: abortHostProcess });
  const deadline = performance.now() + timeoutMs;
  const trouble: IsolateTrouble = { timedOut: false, outOfMemory: false };
  const issuedCodes = new Set<ErrorCode>();
  const callEnded = new AbortController();
  const stop = (reason: keyof IsolateTrouble) => {
    trouble[reason] = true;
    callEnded.abort();
    if (!isolate.isDisposed) isolate.dispose();
  };
  // Wall clock for everything, including time spent awaiting host capabilities; isolated-vm's
  // own `timeout` below only covers synchronous runs.
  const wallClock = setTimeout(() => stop('timedOut'), timeoutMs);

  try {
    const context = await isolate.createContext();
    let settle: ivm.Reference<(ticket: number, outcome: CapabilityOutcome<unknown>) => void> | undefined;
    const deliver = (ticket: unknown, outcome: CapabilityOutcome<unknown>) => {
      if (settle === undefined || callEnded.signal.aborted || typeof ticket !== 'number') return;
      const remaining = Math.max(1, Math.ceil(deadline - performance.now()));
      settle.apply(undefined, [ticket, outcome], { arguments: { copy: true }, timeout: remaining }).catch((error: unknown) => {
        stop(isMemoryFailure(error) ? 'outOfMemory' : 'timedOut');
      });
    };
    const callbacks = capabilityCallbacks(request.capabilities, { issuedCodes, signal: callEnded.signal, deliver, ...(gate === undefined ? {} : { gate }) });
    const bootstrap = await context.evalClosure(BOOTSTRAP_SOURCE, callbacks, {
      timeout: BOOTSTRAP_TIMEOUT_MS,
      result: { reference: true },
    });
    const run = await bootstrap.get('run', { reference: true });
    settle = await bootstrap.get('settle', { reference: true });
    const envelope: unknown = await run.apply(undefined, [request.source, input, maxOutputBytes, MAX_RESULT_DEPTH], {
      timeout: timeoutMs,
      result: { promise: true, copy: true },
    });
    if (trouble.timedOut || trouble.outOfMemory) return troubleOutcome(trouble, timeoutMs, memoryMb);
    return decodeEnvelope(envelope, issuedCodes, maxOutputBytes);
  } catch (error) {
    if (isMemoryFailure(error)) trouble.outOfMemory = true;
    if (isTimeoutFailure(error)) trouble.timedOut = true;
    if (trouble.timedOut || trouble.outOfMemory) return troubleOutcome(trouble, timeoutMs, memoryMb);
    if (isolate.isDisposed) return { ok: false, code: 'ERR_SANDBOX_CRASHED', message: 'the isolate was disposed unexpectedly' };
    return { ok: false, code: 'ERR_TOOL_THREW', message: messageOf(error) };
  } finally {
    clearTimeout(wallClock);
    callEnded.abort();
    if (!isolate.isDisposed) isolate.dispose();
  }
}

function troubleOutcome(trouble: IsolateTrouble, timeoutMs: number, memoryMb: number): CallOutcome {
  return trouble.outOfMemory
    ? { ok: false, code: 'ERR_SANDBOX_MEMORY', message: `the tool exceeded its memory limit of ${memoryMb} MB` }
    : { ok: false, code: 'ERR_SANDBOX_TIMEOUT', message: `the tool did not finish within ${timeoutMs} ms` };
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
  return text.length > MAX_ERROR_MESSAGE_CHARS ? `${text.slice(0, MAX_ERROR_MESSAGE_CHARS)}…` : text;
}

/** isolated-vm's advice when V8 loses control of an isolate: end the process (the client restarts it). */
function abortHostProcess(message: string): void {
  process.stderr.write(`sandbox host: catastrophic isolate failure: ${message}\n`);
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
  const payload = envelope.slice(separator + 1);
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
}

/**
 * The capability callbacks in the order the bootstrap expects them (fs.read, fs.write, fs.list,
 * http.fetch, sql.query, sql.exec); `undefined` for anything not granted, so it is never installed.
 */
function capabilityCallbacks(grant: CapabilityGrant, bridge: CallbackBridge): (ivm.Callback | undefined)[] {
  const sync = <A extends unknown[]>(operation: (...args: A) => unknown, fallback: ErrorCode) =>
    new ivm.Callback((...args: A): CapabilityOutcome<unknown> => {
      try {
        return { ok: true, value: operation(...args) };
      } catch (error) {
        return recordFailure(error, fallback, bridge.issuedCodes);
      }
    });

  const { gate } = bridge;
  const fs = grant.fs === undefined ? undefined : createFsCapability(grant.fs);
  const sql = grant.sql === undefined ? undefined : createSqlCapability(grant.sql, gate === undefined ? {} : { gate: sqlGate(gate) });
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
      : new ivm.Callback((ticket: unknown, url: unknown, init: unknown) => {
          try {
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
          decide('fs.read', { path });
          return fs.read(path);
        }, 'ERR_FS_FAILED')
      : undefined,
    fs !== undefined && grant.fs?.write
      ? sync((path: unknown, content: unknown) => {
          decide('fs.write', { path, content });
          return fs.write(path, content);
        }, 'ERR_FS_FAILED')
      : undefined,
    fs !== undefined && grant.fs?.list
      ? sync((path: unknown) => {
          decide('fs.list', path === undefined || path === null ? {} : { path });
          return fs.list(path ?? '.');
        }, 'ERR_FS_FAILED')
      : undefined,
    httpFetch,
    sql !== undefined && grant.sql?.query ? sync((db: unknown, text: unknown, params: unknown) => sql.query(db, text, params ?? []), 'ERR_SQL_FAILED') : undefined,
    sql !== undefined && grant.sql?.exec ? sync((db: unknown, text: unknown, params: unknown) => sql.exec(db, text, params ?? []), 'ERR_SQL_FAILED') : undefined,
  ];
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
    query: (m) => gate.check('sql.query', args(m), { tablesRead: m.tablesRead.map((t) => `${m.database}.${t}`) }),
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

/**
 * Evaluated first in every new context, before any tool code, as a closure over the capability
 * callbacks ($0..$5). It captures the intrinsics it needs while they are still pristine, builds
 * the frozen `warden` object, and returns `{ run, settle }` to the host (as References).
 *
 * `run(source, input, maxChars, maxDepth)` compiles `source` with the AsyncFunction constructor
 * (global scope: tool code cannot see this closure), awaits it, and resolves to one string:
 * `ok:<json>`, `threw:<message>`, `compile:<message>`, `notjson:<why>` or `toolarge:`.
 * The result is serialised by a strict walker: only null, booleans, finite numbers, strings,
 * plain arrays without holes and plain objects with data properties, no cycles.
 */
const BOOTSTRAP_SOURCE = String.raw`
'use strict';
const fsRead = $0, fsWrite = $1, fsList = $2, httpStart = $3, sqlQuery = $4, sqlExec = $5;
const ReflectApply = Reflect.apply;
const ReflectGetPrototypeOf = Reflect.getPrototypeOf;
const ObjectFreeze = Object.freeze;
const ObjectKeys = Object.keys;
const ObjectHasOwn = Object.hasOwn;
const ObjectDefineProperty = Object.defineProperty;
const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const ArrayIsArray = Array.isArray;
const JSONStringify = JSON.stringify;
const NumberIsFinite = Number.isFinite;
const StringCtor = String;
const StringPrototypeSlice = String.prototype.slice;
const ErrorCtor = Error;
const PromiseCtor = Promise;
const MapCtor = Map, MapGet = Map.prototype.get, MapSet = Map.prototype.set, MapDelete = Map.prototype.delete;
const SetCtor = Set, SetHas = Set.prototype.has, SetAdd = Set.prototype.add, SetDelete = Set.prototype.delete;
const AsyncFunction = (async function () {}).constructor;
const MAX_MESSAGE_CHARS = 2000;

function capabilityFailure(code, message) {
  const error = new ErrorCtor(code + ': ' + message);
  ObjectDefineProperty(error, 'code', { value: code, writable: true, enumerable: true, configurable: true });
  return error;
}

// An outcome is a fresh copy made by isolated-vm, so its fields are own data properties.
function unwrap(outcome) {
  if (outcome.ok === true) return outcome.value;
  throw capabilityFailure(StringCtor(outcome.code), StringCtor(outcome.message));
}

const pendingHostCalls = new MapCtor();
let nextTicket = 0;
function startHostCall(start, args) {
  nextTicket += 1;
  const ticket = nextTicket;
  return new PromiseCtor((resolve, reject) => {
    ReflectApply(MapSet, pendingHostCalls, [ticket, { resolve, reject }]);
    ReflectApply(start, undefined, [ticket, args[0], args[1]]);
  });
}
function settle(ticket, outcome) {
  const pending = ReflectApply(MapGet, pendingHostCalls, [ticket]);
  if (pending === undefined) return;
  ReflectApply(MapDelete, pendingHostCalls, [ticket]);
  let value;
  try {
    value = unwrap(outcome);
  } catch (error) {
    pending.reject(error);
    return;
  }
  pending.resolve(value);
}

const warden = {};
if (fsRead !== undefined || fsWrite !== undefined || fsList !== undefined) {
  const fs = {};
  if (fsRead !== undefined) fs.read = function read(path) { return unwrap(fsRead(path)); };
  if (fsWrite !== undefined) fs.write = function write(path, content) { return unwrap(fsWrite(path, content)); };
  if (fsList !== undefined) fs.list = function list(path) { return unwrap(fsList(path)); };
  warden.fs = ObjectFreeze(fs);
}
if (httpStart !== undefined) {
  warden.http = ObjectFreeze({ fetch: function fetch(url, init) { return startHostCall(httpStart, [url, init]); } });
}
if (sqlQuery !== undefined || sqlExec !== undefined) {
  const sql = {};
  if (sqlQuery !== undefined) sql.query = function query(database, text, params) { return unwrap(sqlQuery(database, text, params)); };
  if (sqlExec !== undefined) sql.exec = function exec(database, text, params) { return unwrap(sqlExec(database, text, params)); };
  warden.sql = ObjectFreeze(sql);
}
ObjectFreeze(warden);

function describeThrown(thrown) {
  let text;
  try {
    if (thrown !== null && (typeof thrown === 'object' || typeof thrown === 'function')) {
      const message = thrown.message;
      if (typeof message === 'string') {
        const name = thrown.name;
        text = typeof name === 'string' && name !== '' && name !== 'Error' ? name + ': ' + message : message;
      } else {
        text = StringCtor(thrown);
      }
    } else {
      text = StringCtor(thrown);
    }
  } catch (ignored) {
    text = 'a value that cannot be shown as text';
  }
  if (typeof text !== 'string') text = 'a value that cannot be shown as text';
  return text.length > MAX_MESSAGE_CHARS ? ReflectApply(StringPrototypeSlice, text, [0, MAX_MESSAGE_CHARS]) + '…' : text;
}

const NOT_JSON = ObjectFreeze({});
const TOO_LARGE = ObjectFreeze({});
let notJsonReason = '';
function notJson(reason) {
  notJsonReason = reason;
  throw NOT_JSON;
}

function kindOf(value) {
  try {
    const prototype = ReflectGetPrototypeOf(value);
    const constructor = prototype === null ? undefined : prototype.constructor;
    if (typeof constructor === 'function' && typeof constructor.name === 'string' && constructor.name !== '') return 'a ' + constructor.name;
  } catch (ignored) {}
  return 'not a plain object';
}

function toStrictJson(root, maxChars, maxDepth) {
  const ancestors = new SetCtor();
  let out = '';
  function emit(text) {
    out += text;
    if (out.length > maxChars) throw TOO_LARGE;
  }
  function dataValue(container, key, where) {
    const descriptor = ObjectGetOwnPropertyDescriptor(container, key);
    if (descriptor === undefined) notJson(where + ' is missing (a hole in an array)');
    if (ObjectHasOwn(descriptor, 'get') || ObjectHasOwn(descriptor, 'set')) notJson(where + ' is a getter/setter, not a value');
    return descriptor.value;
  }
  function write(value, where, depth) {
    switch (typeof value) {
      case 'string':
        emit(JSONStringify(value));
        return;
      case 'boolean':
        emit(value ? 'true' : 'false');
        return;
      case 'number':
        if (!NumberIsFinite(value)) notJson(where + ' is ' + StringCtor(value));
        emit(JSONStringify(value));
        return;
      case 'undefined':
        return notJson(where + ' is undefined');
      case 'function':
        return notJson(where + ' is a function');
      case 'symbol':
        return notJson(where + ' is a symbol');
      case 'bigint':
        return notJson(where + ' is a BigInt');
      case 'object':
        break;
      default:
        return notJson(where + ' has an unsupported type');
    }
    if (value === null) {
      emit('null');
      return;
    }
    if (depth >= maxDepth) notJson(where + ' is nested more than ' + maxDepth + ' levels deep');
    if (ReflectApply(SetHas, ancestors, [value])) notJson(where + ' refers back to itself (a cycle)');
    ReflectApply(SetAdd, ancestors, [value]);
    if (ArrayIsArray(value)) {
      if (ReflectGetPrototypeOf(value) !== ArrayPrototype) notJson(where + ' is not a plain array');
      const length = value.length;
      emit('[');
      for (let index = 0; index < length; index += 1) {
        if (index > 0) emit(',');
        const itemWhere = where + '[' + index + ']';
        write(dataValue(value, index, itemWhere), itemWhere, depth + 1);
      }
      emit(']');
    } else {
      const prototype = ReflectGetPrototypeOf(value);
      if (prototype !== ObjectPrototype && prototype !== null) notJson(where + ' is ' + kindOf(value) + ', not a plain object');
      const keys = ObjectKeys(value);
      emit('{');
      for (let index = 0; index < keys.length; index += 1) {
        const key = keys[index];
        if (index > 0) emit(',');
        emit(JSONStringify(key) + ':');
        const keyWhere = where + '.' + key;
        write(dataValue(value, key, keyWhere), keyWhere, depth + 1);
      }
      emit('}');
    }
    ReflectApply(SetDelete, ancestors, [value]);
  }
  write(root, 'the result', 0);
  return out;
}

function encodeResult(value, maxChars, maxDepth) {
  try {
    return 'ok:' + toStrictJson(value, maxChars, maxDepth);
  } catch (error) {
    if (error === TOO_LARGE) return 'toolarge:';
    if (error === NOT_JSON) return 'notjson:' + notJsonReason;
    return 'notjson:the result cannot be serialised (' + describeThrown(error) + ')';
  }
}

async function run(source, input, maxChars, maxDepth) {
  let tool;
  try {
    tool = new AsyncFunction('input', 'warden', source);
  } catch (error) {
    return 'compile:' + describeThrown(error);
  }
  let value;
  try {
    value = await ReflectApply(tool, undefined, [input, warden]);
  } catch (error) {
    return 'threw:' + describeThrown(error);
  }
  return encodeResult(value, maxChars, maxDepth);
}

return { run, settle };
`;
