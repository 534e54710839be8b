/**
 * The runtime prelude of every sandbox context: the only Warden code that runs inside an isolate.
 *
 * It is compiled once per isolate (an `ivm.Script`) and run once in each new context, before any
 * tool code, so no call pays for parsing it. Running it:
 * - captures the intrinsics it needs while they are still pristine (tool code may replace any
 *   global afterwards without affecting the checks below);
 * - removes the entry points that let code run after its call returned outside the microtask
 *   queue (FinalizationRegistry callbacks, Atomics.waitAsync time-outs, asynchronous WebAssembly
 *   compilation), so nothing of a finished call can run during a later call in the same isolate;
 * - gives the context a symbol registry of its own (`Symbol.for`, `Symbol.keyFor`): the built-in one
 *   is the isolate's, so what one call registered would outlive it in every later call;
 * - evaluates to `{ run, settle }`, which the host holds as References.
 *
 * `run(fsRead, fsWrite, fsList, httpStart, sqlQuery, sqlExec, source, input, maxChars, maxDepth, toolName)`
 * takes the call's capability callbacks (`ivm.Callback`; for sql.* an `ivm.Reference` called
 * with applySyncPromise, see syncHostCall; `undefined` when not granted), builds
 * the frozen `warden` object from them (a capability not granted is not installed: reading it
 * gives a function that only throws a TypeError naming the capability, the tool `toolName` and how
 * to declare and grant it, instead of V8's "cannot read properties of undefined"; see
 * buildWarden), compiles `source` with the AsyncFunction constructor
 * (global scope: tool code cannot see this closure), awaits it, and resolves to one string:
 * `ok:<json>`, `threw:<message>`, `compile:<message>`, `notjson:<why>` or `toolarge:`. It runs at
 * most once per context. The result is serialised by a strict walker: only null, booleans, finite
 * numbers, strings, plain arrays without holes and plain objects with data properties, no cycles.
 *
 * `settle(ticket, outcome)` hands the outcome of an asynchronous capability call (http.fetch)
 * back to the promise the tool is awaiting.
 */
export const PRELUDE_SOURCE = String.raw`(function prelude() {
'use strict';
// Entry points through which code can be scheduled to run after its call has returned, as a
// platform task rather than a microtask: a finished call's code could otherwise run (and burn
// CPU or memory) during a later call that reuses this isolate. Removed before any tool code runs;
// tool code has no other path to them.
const DEFERRED_ENTRY_POINTS = [
  [globalThis, 'FinalizationRegistry'],
  [Atomics, 'waitAsync'],
  [WebAssembly, 'compile'],
  [WebAssembly, 'instantiate'],
  [WebAssembly, 'compileStreaming'],
  [WebAssembly, 'instantiateStreaming'],
];
// Memory V8 allocates outside isolated-vm's allocator, which the call's memoryMb never sees: a
// WebAssembly memory (1-2 GiB at memoryMb 32, kept by the shared host after the call: attack s22
// atk3) and the pages a resizable ArrayBuffer or growable SharedArrayBuffer commits as it grows.
// WebAssembly goes whole (no tool can make a memory then); fixed-length buffers stay, counted.
const MEMORY_OUTSIDE_THE_LIMIT = [
  [globalThis, 'WebAssembly'],
  [ArrayBuffer.prototype, 'resize'],
  ...(typeof SharedArrayBuffer === 'function' ? [[SharedArrayBuffer.prototype, 'grow']] : []),
];
const REMOVED = DEFERRED_ENTRY_POINTS.concat(MEMORY_OUTSIDE_THE_LIMIT);
for (let index = 0; index < REMOVED.length; index += 1) {
  const entry = REMOVED[index];
  if (!Reflect.deleteProperty(entry[0], entry[1])) throw new Error('cannot remove ' + entry[1]);
}

const ReflectApply = Reflect.apply;
const ReflectGetPrototypeOf = Reflect.getPrototypeOf;
const ObjectFreeze = Object.freeze;
const ObjectCreate = Object.create;
const TypeErrorCtor = TypeError;
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
const StringPrototypeCharCodeAt = String.prototype.charCodeAt;
const ErrorCtor = Error;
const PromiseCtor = Promise;
const MapCtor = Map, MapGet = Map.prototype.get, MapSet = Map.prototype.set, MapDelete = Map.prototype.delete;
const SetCtor = Set, SetHas = Set.prototype.has, SetAdd = Set.prototype.add, SetDelete = Set.prototype.delete;
const AsyncFunction = (async function () {}).constructor;
const ProxyCtor = Proxy;
const ReflectGet = Reflect.get;

// The global symbol registry (Symbol.for) belongs to the isolate, not to a context: symbols a call
// registered stayed alive, and reachable by key, in every later call's context on this isolate
// (memory a later call could measure to the megabyte: a channel between tasks). Each context gets
// a registry of its own instead, released with it; Symbol.for and Symbol.keyFor keep their meaning
// within the call. The isolate's own registry is then never written to.
{
  const byKey = new MapCtor(), keyOf = new MapCtor();
  const SymbolCtor = Symbol;
  const registry = {
    for(key) {
      if (typeof key === 'symbol') throw new TypeErrorCtor('Cannot convert a Symbol value to a string');
      const name = StringCtor(key);
      let symbol = ReflectApply(MapGet, byKey, [name]);
      if (symbol === undefined) {
        symbol = SymbolCtor(name);
        ReflectApply(MapSet, byKey, [name, symbol]);
        ReflectApply(MapSet, keyOf, [symbol, name]);
      }
      return symbol;
    },
    keyFor(symbol) {
      if (typeof symbol !== 'symbol') throw new TypeErrorCtor(StringCtor(symbol) + ' is not a symbol');
      return ReflectApply(MapGet, keyOf, [symbol]);
    },
  };
  for (const name of ['for', 'keyFor']) {
    if (!Reflect.defineProperty(Symbol, name, { value: registry[name], writable: true, enumerable: false, configurable: true })) throw new Error('cannot replace Symbol.' + name);
  }
}

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

// A host capability that runs elsewhere while this isolate's thread waits (sql.*): the host holds
// a Reference to an async function and the call waits for its promise (applySyncPromise), so the
// host's main thread is free meanwhile. The Reference reaches the host's objects, so tool code
// must never get hold of it: its method is read here, before any tool code runs, options are
// objects without prototype (nothing tool code puts on Object.prototype is read as an option),
// arguments are copied and the host hands its result over as a copy (ExternalCopy), and an error thrown by isolated-vm is replaced by a new one
// (its stack frames are never formatted for tool code).
function syncHostCall(reference) {
  const applySyncPromise = reference.applySyncPromise;
  const copy = ObjectCreate(null);
  copy.copy = true;
  const options = ObjectCreate(null);
  options.arguments = ObjectFreeze(copy);
  ObjectFreeze(options);
  return function hostCall(a, b, c) {
    let outcome;
    try {
      outcome = ReflectApply(applySyncPromise, reference, [undefined, [a, b, c], options]);
    } catch (error) {
      throw new TypeErrorCtor('the capability call failed: its arguments could not be copied to the host, or the call has ended');
    }
    return outcome;
  };
}

// Every capability a tool may be given, by namespace, and what else its grant needs: the text of
// the error a tool gets when it calls one it was not given (see absentCapabilities).
const CAPABILITY_MEMBERS = ObjectFreeze({
  __proto__: null,
  fs: ObjectFreeze(['read', 'write', 'list']),
  http: ObjectFreeze(['fetch']),
  sql: ObjectFreeze(['query', 'exec']),
});
const GRANT_NEEDS = ObjectFreeze({
  __proto__: null,
  fs: 'a workspace (resources.workspace)',
  http: 'the hosts it reaches (resources.hosts and grants.hosts)',
  sql: 'the databases it opens (resources.databases and grants.databases)',
});
const CAPABILITY_NAMESPACES = ObjectFreeze(['fs', 'http', 'sql']);

function notGranted(toolName, namespace, member) {
  const capability = namespace + '.' + member;
  return new TypeErrorCtor(
    'warden.' + capability + ' is not available to tool "' + toolName + '": it does not declare the ' + capability + ' capability. ' +
      'Declare it on the tool (tools.custom: capabilities: [' + capability + ']) and grant it like the built-in of that name ' +
      '(tools.builtin and grants.tools: [' + capability + '], with ' + GRANT_NEEDS[namespace] + ')',
  );
}

// A capability the call was not given is not installed: no own property of warden or of its
// namespace names it (Object.keys, "in" and Object.hasOwn say it is absent), and nothing in the
// call can reach the host through it. Reading it yields a function that only throws notGranted,
// so a tool that calls it learns which capability it lacks and how to get it, where it got V8's
// "Cannot read properties of undefined (reading 'read')". The proxies forward everything else to
// their frozen targets, so warden stays frozen and its granted members are what they were.
function absentCapabilities(target, toolName, namespace) {
  const members = CAPABILITY_MEMBERS[namespace];
  const stubs = ObjectCreate(null);
  for (let index = 0; index < members.length; index += 1) {
    const member = members[index];
    if (ObjectHasOwn(target, member)) continue;
    stubs[member] = ObjectFreeze(function () { throw notGranted(toolName, namespace, member); });
  }
  ObjectFreeze(stubs);
  return new ProxyCtor(target, ObjectFreeze({
    get(object, key, receiver) {
      if (typeof key === 'string' && !ObjectHasOwn(object, key) && ObjectHasOwn(stubs, key)) return stubs[key];
      return ReflectApply(ReflectGet, undefined, [object, key, receiver]);
    },
  }));
}

function buildWarden(fsRead, fsWrite, fsList, httpStart, sqlQuery, sqlExec, toolName) {
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
    if (sqlQuery !== undefined) {
      const call = syncHostCall(sqlQuery);
      sql.query = function query(database, text, params) { return unwrap(call(database, text, params)); };
    }
    if (sqlExec !== undefined) {
      const call = syncHostCall(sqlExec);
      sql.exec = function exec(database, text, params) { return unwrap(call(database, text, params)); };
    }
    warden.sql = ObjectFreeze(sql);
  }
  const name = typeof toolName === 'string' ? toolName : 'this tool';
  const namespaces = ObjectCreate(null);
  for (let index = 0; index < CAPABILITY_NAMESPACES.length; index += 1) {
    const namespace = CAPABILITY_NAMESPACES[index];
    if (ObjectHasOwn(warden, namespace)) warden[namespace] = absentCapabilities(warden[namespace], name, namespace);
    else namespaces[namespace] = absentCapabilities(ObjectFreeze({}), name, namespace);
  }
  ObjectFreeze(namespaces);
  return new ProxyCtor(ObjectFreeze(warden), ObjectFreeze({
    get(object, key, receiver) {
      if (typeof key === 'string' && !ObjectHasOwn(object, key) && ObjectHasOwn(namespaces, key)) return namespaces[key];
      return ReflectApply(ReflectGet, undefined, [object, key, receiver]);
    },
  }));
}

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
  if (text.length <= MAX_MESSAGE_CHARS) return text;
  // Never between the halves of a surrogate pair (cut-text.ts, which this code cannot import): a
  // lone surrogate is refused by canonical JSON (RFC 8785 §3.2.2.2) wherever the message lands.
  const last = ReflectApply(StringPrototypeCharCodeAt, text, [MAX_MESSAGE_CHARS - 1]);
  const next = ReflectApply(StringPrototypeCharCodeAt, text, [MAX_MESSAGE_CHARS]);
  const end = last >= 0xd800 && last <= 0xdbff && next >= 0xdc00 && next <= 0xdfff ? MAX_MESSAGE_CHARS - 1 : MAX_MESSAGE_CHARS;
  return ReflectApply(StringPrototypeSlice, text, [0, end]) + '…';
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

let called = false;
async function run(fsRead, fsWrite, fsList, httpStart, sqlQuery, sqlExec, source, input, maxChars, maxDepth, toolName) {
  // One call per context: a second call would share this context's state with the first.
  if (called) return 'threw:this sandbox context has already run a call';
  called = true;
  const warden = buildWarden(fsRead, fsWrite, fsList, httpStart, sqlQuery, sqlExec, toolName);
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
})();
`;
