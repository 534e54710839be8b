/**
 * Isolates are reused across calls (sandbox/isolate-pool.ts): these tests try to carry something
 * from one call into a later call on the same isolate and check that nothing arrives.
 *
 * The pool keeps one idle isolate, and each "plant" call is followed by a "probe" call after the
 * pool has settled, so the probe runs on the planting call's isolate whenever the pool judged it
 * safe to reuse (the stats show when it was retired instead). The same table also runs through a
 * real sandbox host (SandboxClient), where a plant must not cost the host or the probe anything.
 */
import * as http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IsolatePool } from '../../sandbox/isolate-pool';
import { runInIsolate } from '../../sandbox/run-in-isolate';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, SandboxLimits, SandboxRunRequest, SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { codeOf, DEFAULT_LIMITS, outputOf, startLoopbackServer, toolCall, type LoopbackServer } from './sandbox-test-kit';

let slowServer: LoopbackServer;
let httpGrant: CapabilityGrant;

beforeAll(async () => {
  // Answers after 150 ms: long after a call that started a fetch and returned has ended.
  slowServer = await startLoopbackServer((_req: http.IncomingMessage, res: http.ServerResponse) => {
    setTimeout(() => res.end('late'), 150);
  });
  httpGrant = { http: { allowedHosts: [`127.0.0.1:${slowServer.port}`] } };
});

afterAll(async () => {
  await slowServer.close();
});

let nextId = 0;
function request(source: string, capabilities: CapabilityGrant = {}, limits: Partial<SandboxLimits> = {}): SandboxRunRequest {
  nextId += 1;
  return { type: 'run', id: `reuse-${nextId}`, toolName: 'test.tool', source, input: null, limits: { ...DEFAULT_LIMITS, ...limits }, capabilities };
}

/** Burns CPU for `ms` milliseconds of wall time: what leftover code of an earlier call would do. */
const burn = (ms: number) => `{ const end = Date.now() + ${ms}; while (Date.now() < end) {} }`;

interface CarryAttempt {
  name: string;
  /** The first call: tries to leave something behind. */
  plant: string;
  plantGrant?: () => CapabilityGrant;
  plantLimits?: Partial<SandboxLimits>;
  /** What the first call must end with: an output, or an error code (several allowed). */
  planted: { output: unknown } | { codes: string[] };
  /** The later call: looks for what was left behind. */
  probe: string;
  probeLimits?: Partial<SandboxLimits>;
  /** What the probe must see: the values of a call on a new isolate. */
  clean: unknown;
}

const CARRY_ATTEMPTS: CarryAttempt[] = [
  {
    name: 'globals, var and function declarations',
    plant: 'globalThis.secret = "s3cret"; eval("var leakedVar = 1; function leakedFn() { return 2; }"); return typeof leakedFn;',
    planted: { output: 'function' },
    probe: 'return [typeof globalThis.secret, typeof leakedVar, typeof leakedFn, Object.keys(globalThis).length];',
    clean: ['undefined', 'undefined', 'undefined', 0],
  },
  {
    name: 'prototypes of built-ins',
    plant: `Object.prototype.polluted = 1; Array.prototype.push = function () { return "hijacked"; };
      String.prototype.trim = () => "hijacked"; Function.prototype.toString = () => "hijacked";
      Promise.prototype.then = function () { return "hijacked"; }; Math.max = () => -1; Error.stackTraceLimit = 0;
      Error.prepareStackTrace = () => "hijacked"; return "planted";`,
    planted: { output: 'planted' },
    probe: `const list = []; list.push(1);
      let stack; try { null.x; } catch (error) { stack = typeof error.stack === "string" && error.stack.includes("TypeError"); }
      return [typeof ({}).polluted, list.length, " a ".trim(), Math.max(1, 2), Error.stackTraceLimit, stack, typeof (async () => 1)().then];`,
    clean: ['undefined', 1, 'a', 2, 10, true, 'function'],
  },
  {
    name: 'the intrinsics the runtime prelude relies on',
    plant: `JSON.stringify = () => "hijacked"; Reflect.apply = () => "hijacked"; Object.freeze = (o) => o;
      Object.getPrototypeOf = () => Object.prototype; Array.isArray = () => true; Map.prototype.set = () => { throw new Error("hijacked"); };
      Object.keys = () => []; return "planted";`,
    planted: { output: 'planted' },
    probe: 'return { frozen: Object.isFrozen(warden), nested: [{ a: "x" }], keys: Object.keys({ k: 1 }) };',
    clean: { frozen: true, nested: [{ a: 'x' }], keys: ['k'] },
  },
  {
    name: 'capabilities of an earlier call',
    plant: 'return typeof warden.http.fetch;',
    plantGrant: () => httpGrant,
    planted: { output: 'function' },
    probe: 'return ["http" in warden, Object.keys(warden).length, (() => { try { warden.http.fetch("http://127.0.0.1:9/"); return "called"; } catch (error) { return error.message.slice(0, 48); } })()];',
    clean: [false, 0, 'warden.http.fetch is not available to tool "test'],
  },
  {
    name: 'a closure kept in a promise that never settles',
    plant: 'let release; globalThis.pending = new Promise((resolve) => { release = resolve; }).then(() => { while (true) {} }); globalThis.release = release; return "planted";',
    planted: { output: 'planted' },
    probe: 'return [typeof release, typeof pending];',
    clean: ['undefined', 'undefined'],
  },
  {
    name: 'a promise chain that never ends (microtasks)',
    plant: 'const spin = () => Promise.resolve().then(spin); spin(); return "planted";',
    plantLimits: { timeoutMs: 500 },
    planted: { codes: ['ERR_SANDBOX_TIMEOUT', 'ERR_SANDBOX_MEMORY'] },
    probe: 'return "on time";',
    clean: 'on time',
  },
  {
    name: 'an async loop left running after the result',
    plant: '(async () => { for (;;) await null; })(); return "planted";',
    plantLimits: { timeoutMs: 500 },
    planted: { codes: ['ERR_SANDBOX_TIMEOUT', 'ERR_SANDBOX_MEMORY'] },
    probe: 'return "on time";',
    clean: 'on time',
  },
  {
    name: 'a host callback (http.fetch) that answers after the call ended',
    plant: `warden.http.fetch("http://127.0.0.1:${'${PORT}'}/late").then(() => ${burn(5000)}); return "planted";`,
    plantGrant: () => httpGrant,
    planted: { output: 'planted' },
    // Still running when the late answer arrives.
    probe: `${burn(400)} return "on time";`,
    clean: 'on time',
  },
  {
    name: 'a timer built from Atomics.waitAsync',
    plant: `Atomics.waitAsync(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20).value.then(() => ${burn(5000)}); return "planted";`,
    planted: { codes: ['ERR_TOOL_THREW'] },
    probe: 'return typeof Atomics.waitAsync;',
    clean: 'undefined',
  },
  {
    name: 'a FinalizationRegistry callback run by a later garbage collection',
    plant: `new FinalizationRegistry(() => ${burn(5000)}).register({}, 1); return "planted";`,
    planted: { codes: ['ERR_TOOL_THREW'] },
    probe: 'const junk = []; for (let i = 0; i < 200000; i += 1) junk.push({ i }); return typeof FinalizationRegistry;',
    clean: 'undefined',
  },
  {
    name: 'asynchronous WebAssembly compilation finishing later',
    plant: `WebAssembly.instantiate(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])).then(() => ${burn(5000)}); return "planted";`,
    planted: { codes: ['ERR_TOOL_THREW'] },
    // WebAssembly is gone altogether since its memory escaped memoryMb (test/sandbox/memory-outside-limit.test.ts).
    probe: 'return typeof WebAssembly;',
    clean: 'undefined',
  },
  {
    name: 'a rejected dynamic import handled after the call',
    plant: `import("node:fs").catch(() => ${burn(5000)}); return "planted";`,
    plantLimits: { timeoutMs: 500 },
    // The rejection is delivered inside the call (which then times out) or not at all.
    planted: { codes: ['ERR_SANDBOX_TIMEOUT', 'ok: "planted"'] },
    probe: 'return "on time";',
    clean: 'on time',
  },
  {
    name: 'heap left full by an earlier call',
    plant: 'globalThis.hoard = []; for (let i = 0; i < 16000; i += 1) hoard.push("x".repeat(1000) + i); return hoard.length;',
    planted: { output: 16000 },
    probe: 'const mine = []; for (let i = 0; i < 16000; i += 1) mine.push("y".repeat(1000) + i); return [mine.length, typeof hoard];',
    clean: [16000, 'undefined'],
  },
  {
    name: 'a call that timed out',
    plant: 'globalThis.mark = 1; while (true) {}',
    plantLimits: { timeoutMs: 200 },
    planted: { codes: ['ERR_SANDBOX_TIMEOUT'] },
    probe: 'return typeof mark;',
    clean: 'undefined',
  },
  {
    name: 'a call that ran out of memory',
    plant: 'globalThis.hoard = []; while (true) hoard.push("x".repeat(1024) + hoard.length);',
    plantLimits: { timeoutMs: 10_000 },
    planted: { codes: ['ERR_SANDBOX_MEMORY'] },
    probe: 'const mine = []; for (let i = 0; i < 8000; i += 1) mine.push("y".repeat(1000) + i); return [mine.length, typeof hoard];',
    clean: [8000, 'undefined'],
  },
];

function withPort(source: string): string {
  return source.replace('${PORT}', String(slowServer.port));
}

function expectPlanted(attempt: CarryAttempt, response: SandboxRunResponse): void {
  if ('output' in attempt.planted) expect(outputOf(response)).toEqual(attempt.planted.output);
  else expect(attempt.planted.codes).toContain(codeOf(response));
}

describe('a reused isolate carries nothing from one call to the next', () => {
  let pool: IsolatePool;

  beforeAll(() => {
    // No spare isolate: every call after the first runs on the isolate of the call before it,
    // unless the pool retired that one.
    pool = new IsolatePool({ maxIdlePerLimit: 1, keepSpare: false });
  });

  afterAll(() => {
    pool.close();
  });

  for (const attempt of CARRY_ATTEMPTS) {
    it(attempt.name, async () => {
      await pool.drain();
      const before = pool.stats;
      expectPlanted(attempt, await runInIsolate(request(withPort(attempt.plant), attempt.plantGrant?.() ?? {}, attempt.plantLimits), pool));
      await pool.drain();
      const afterPlant = pool.stats;
      const probe = await runInIsolate(request(attempt.probe, {}, attempt.probeLimits), pool);
      expect(outputOf(probe)).toEqual(attempt.clean);
      // The probe either reused the planting call's isolate or got a new one because the pool
      // retired it; never an isolate the pool had not judged.
      const reusedIt = pool.stats.reused > afterPlant.reused;
      const retired = Object.values(afterPlant.retired).reduce((a, b) => a + b, 0) > Object.values(before.retired).reduce((a, b) => a + b, 0);
      expect(reusedIt || retired).toBe(true);
    });
  }

  it('harmless calls do reuse the isolate (control: the tests above exercise reuse)', async () => {
    await pool.drain();
    const created = pool.stats.created;
    for (let i = 0; i < 20; i += 1) {
      expect(outputOf(await runInIsolate(request(`return ${i};`), pool))).toBe(i);
      await pool.drain();
    }
    expect(pool.stats.created).toBe(created);
  });

  it('every attempt, shuffled, on one isolate: probes stay clean whatever ran before', async () => {
    const order = CARRY_ATTEMPTS.flatMap((attempt, i) => [attempt, CARRY_ATTEMPTS[(i * 5 + 3) % CARRY_ATTEMPTS.length] as CarryAttempt]);
    for (const attempt of order) {
      expectPlanted(attempt, await runInIsolate(request(withPort(attempt.plant), attempt.plantGrant?.() ?? {}, attempt.plantLimits), pool));
    }
    await pool.drain();
    for (const attempt of CARRY_ATTEMPTS) {
      expect(outputOf(await runInIsolate(request(attempt.probe, {}, attempt.probeLimits), pool))).toEqual(attempt.clean);
    }
  });

  it('a timed-out or out-of-memory isolate is never handed out again', async () => {
    await pool.drain();
    const troubled = pool.stats.retired.troubled;
    expect(codeOf(await runInIsolate(request('while (true) {}', {}, { timeoutMs: 100 }), pool))).toBe('ERR_SANDBOX_TIMEOUT');
    expect(codeOf(await runInIsolate(request('const a = []; while (true) a.push("x".repeat(1024) + a.length);', {}, { timeoutMs: 10_000 }), pool))).toBe(
      'ERR_SANDBOX_MEMORY',
    );
    await pool.drain();
    expect(pool.stats.retired.troubled).toBe(troubled + 2);
  });

  it('an isolate whose heap stays too full after a call is retired, not reused', async () => {
    const strict = new IsolatePool({ maxIdlePerLimit: 1, keepSpare: false, retireHeapFraction: 0.25 });
    try {
      // Keeps ~16 MB reachable until the call's context is released, in a 32 MB isolate.
      const hoard = 'globalThis.hoard = []; for (let i = 0; i < 16000; i += 1) hoard.push("x".repeat(1000) + i); return 1;';
      expect(outputOf(await runInIsolate(request(hoard), strict))).toBe(1);
      await strict.drain();
      expect(strict.stats.retired.heap).toBe(1);
      expect(strict.stats.idle).toBe(0);
    } finally {
      strict.close();
    }
  });

  it('an isolate is retired after maxCallsPerIsolate calls', async () => {
    const short = new IsolatePool({ maxIdlePerLimit: 1, keepSpare: false, maxCallsPerIsolate: 3 });
    try {
      for (let i = 0; i < 7; i += 1) {
        expect(outputOf(await runInIsolate(request('return 1;'), short))).toBe(1);
        await short.drain();
      }
      expect(short.stats.created).toBe(3);
      expect(short.stats.retired.calls).toBe(2);
    } finally {
      short.close();
    }
  });

  it('an isolate that cannot take a new context in time is disposed (fence)', async () => {
    const fenced = new IsolatePool({ maxIdlePerLimit: 1, keepSpare: false, fenceTimeoutMs: 0 });
    try {
      expect(outputOf(await runInIsolate(request('return 1;'), fenced))).toBe(1);
      await fenced.drain();
      expect(fenced.stats.retired.fence).toBe(1);
      expect(outputOf(await runInIsolate(request('return 2;'), fenced))).toBe(2);
      expect(fenced.stats.created).toBe(2);
    } finally {
      fenced.close();
    }
  });

  it('concurrent calls never share an isolate', async () => {
    const shared = new IsolatePool({ keepSpare: false });
    try {
      // Each call reads and writes a global across an await: sharing a context would mix them.
      const source = 'globalThis.n = input; await warden.http.fetch(`http://127.0.0.1:${PORT}/`); return globalThis.n;';
      const calls = Array.from({ length: 4 }, (_, n) => runInIsolate({ ...request(withPort(source), httpGrant), input: n }, shared));
      expect((await Promise.all(calls)).map(outputOf)).toEqual([0, 1, 2, 3]);
      expect(shared.stats.created).toBe(4);
    } finally {
      shared.close();
    }
  });

  it('a spare isolate is kept ready, so back-to-back calls do not wait for the one just used', async () => {
    const spare = new IsolatePool();
    try {
      expect(outputOf(await runInIsolate(request('return 1;'), spare))).toBe(1);
      await spare.drain();
      expect(spare.stats.idle).toBe(2);
      for (let i = 0; i < 10; i += 1) expect(outputOf(await runInIsolate(request(`return ${i};`), spare))).toBe(i);
      await spare.drain();
      expect(spare.stats.created).toBe(2);
    } finally {
      spare.close();
    }
  });

  it('idle isolates are capped per memory limit and in all', async () => {
    const capped = new IsolatePool({ keepSpare: false, maxIdlePerLimit: 2, maxIdle: 3 });
    try {
      // Four concurrent calls per limit, on three limits: twelve isolates in use at once.
      const calls = [16, 24, 32].flatMap((memoryMb) => Array.from({ length: 4 }, () => runInIsolate(request('await null; return 1;', {}, { memoryMb }), capped)));
      expect((await Promise.all(calls)).map(outputOf)).toEqual(Array(12).fill(1));
      await capped.drain();
      expect(capped.stats.idle).toBe(3);
      expect(capped.stats.retired.surplus).toBe(capped.stats.created - 3);
    } finally {
      capped.close();
    }
  });

  it('isolates are per memory limit: a call never runs under another call\'s limit', async () => {
    const limits = new IsolatePool();
    try {
      const heavy = 'const a = []; for (let i = 0; i < 80000; i += 1) a.push("x".repeat(1000) + i); return a.length;';
      expect(outputOf(await runInIsolate(request(heavy, {}, { memoryMb: 256, timeoutMs: 10_000 }), limits))).toBe(80000);
      await limits.drain();
      expect(codeOf(await runInIsolate(request(heavy, {}, { memoryMb: 16, timeoutMs: 10_000 }), limits))).toBe('ERR_SANDBOX_MEMORY');
    } finally {
      limits.close();
    }
  });
});

describe('through a sandbox host, a planted call costs neither the host nor the next call', () => {
  let client: SandboxClient;

  beforeAll(async () => {
    client = await SandboxClient.start();
  });

  afterAll(async () => {
    await client.close();
  });

  for (const attempt of CARRY_ATTEMPTS) {
    it(attempt.name, async () => {
      const exits = client.stats.hostExits;
      const plant = toolCall(withPort(attempt.plant), null, attempt.plantGrant?.() ?? {}, attempt.plantLimits ?? {});
      expectPlanted(attempt, await client.run(plant));
      // Give deferred work (timers, late callbacks, garbage collections) time to come due.
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(outputOf(await client.run(toolCall(attempt.probe, null, {}, attempt.probeLimits ?? {})))).toEqual(attempt.clean);
      expect(client.stats.hostExits).toBe(exits);
    });
  }
});
