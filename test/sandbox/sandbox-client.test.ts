import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { codeOf, outputOf, toolCall } from './sandbox-test-kit';

let client: SandboxClient;

beforeAll(async () => {
  client = await SandboxClient.start();
});

afterAll(async () => {
  await client.close();
});

describe('running tools', () => {
  it('returns JSON values', async () => {
    expect(outputOf(await client.run(toolCall('return 42;')))).toBe(42);
    expect(outputOf(await client.run(toolCall('return "text";')))).toBe('text');
    expect(outputOf(await client.run(toolCall('return null;')))).toBeNull();
    expect(outputOf(await client.run(toolCall('return { a: [1, true, "x", null, { b: -1.5 }] };')))).toEqual({ a: [1, true, 'x', null, { b: -1.5 }] });
  });

  it('passes the input in as a copy', async () => {
    const input = { words: ['alpha', 'beta'], n: 2 };
    const response = await client.run(toolCall('input.words.push("gamma"); return { count: input.words.length * input.n };', input));
    expect(outputOf(response)).toEqual({ count: 6 });
    expect(input.words).toEqual(['alpha', 'beta']);
  });

  it('treats a missing input as null', async () => {
    expect(outputOf(await client.run(toolCall('return input;', undefined)))).toBeNull();
  });

  it('awaits async tools', async () => {
    const source = 'const wait = (v) => new Promise((resolve) => Promise.resolve().then(() => resolve(v))); const a = await wait(20); return a + await wait(22);';
    expect(outputOf(await client.run(toolCall(source)))).toBe(42);
  });

  it('reports how long the call took', async () => {
    const response = await client.run(toolCall('return 1;'));
    expect(response.durationMs).toBeGreaterThan(0);
  });

  it('runs calls concurrently, each with its own input', async () => {
    const responses = await Promise.all(Array.from({ length: 8 }, (_, n) => client.run(toolCall('return input.n * 2;', { n }))));
    expect(responses.map(outputOf)).toEqual([0, 2, 4, 6, 8, 10, 12, 14]);
  });
});

describe('failures have stable codes', () => {
  it('a throw is ERR_TOOL_THREW with the message', async () => {
    const response = await client.run(toolCall('throw new Error("disk on fire");'));
    expect(response.ok ? null : response.error).toEqual({ code: 'ERR_TOOL_THREW', message: 'disk on fire' });
  });

  it('a thrown non-Error is stringified', async () => {
    const response = await client.run(toolCall('throw { toString() { return "odd thing"; } };'));
    expect(response.ok ? null : response.error).toEqual({ code: 'ERR_TOOL_THREW', message: 'odd thing' });
  });

  it('a thrown value that cannot be stringified still gives ERR_TOOL_THREW', async () => {
    const response = await client.run(toolCall('throw Object.create(null);'));
    expect(codeOf(response)).toBe('ERR_TOOL_THREW');
  });

  it('a long thrown message is truncated', async () => {
    const response = await client.run(toolCall('throw new Error("x".repeat(100000));'));
    expect(codeOf(response)).toBe('ERR_TOOL_THREW');
    expect(response.ok ? 0 : response.error.message.length).toBeLessThanOrEqual(2001);
  });

  it('a long thrown message is cut at a whole character, never inside a surrogate pair (cut-text.ts)', async () => {
    // The emoji's two units are 1,999 and 2,000: a cut at 2,000 by index would keep its high half alone.
    const response = await client.run(toolCall('throw new Error("x".repeat(1999) + "\\u{1F600}" + "y".repeat(10));'));
    const message = response.ok ? '' : response.error.message;
    expect(message).toBe(`${'x'.repeat(1999)}…`);
    expect((message as string & { isWellFormed(): boolean }).isWellFormed()).toBe(true);
  });

  it('a syntax error is ERR_SANDBOX_COMPILE', async () => {
    expect(codeOf(await client.run(toolCall('return {;')))).toBe('ERR_SANDBOX_COMPILE');
  });

  it('source that tries to close the wrapper function is ERR_SANDBOX_COMPILE', async () => {
    expect(codeOf(await client.run(toolCall('}); (async function () {')))).toBe('ERR_SANDBOX_COMPILE');
  });

  it.each([
    ['a function', 'return () => 1;'],
    ['undefined', 'return undefined;'],
    ['no return at all', 'const x = 1;'],
    ['a BigInt', 'return 10n;'],
    ['a symbol', 'return Symbol("s");'],
    ['a cyclic object', 'const o = { a: 1 }; o.self = o; return o;'],
    ['a cyclic array', 'const a = [1]; a.push(a); return a;'],
    ['NaN', 'return NaN;'],
    ['Infinity nested', 'return { x: [1, Infinity] };'],
    ['a Date', 'return new Date(0);'],
    ['a Map', 'return new Map();'],
    ['a class instance', 'class Point { constructor() { this.x = 1; } } return new Point();'],
    ['an array with a hole', 'return [1, , 3];'],
    ['a nested function', 'return { ok: true, later: function () {} };'],
    ['a getter', 'return { get secret() { return 1; } };'],
    ['a typed array', 'return new Uint8Array(2);'],
  ])('returning %s is ERR_TOOL_OUTPUT_NOT_JSON', async (_what, source) => {
    expect(codeOf(await client.run(toolCall(source)))).toBe('ERR_TOOL_OUTPUT_NOT_JSON');
  });

  it('shared (non-cyclic) references are fine', async () => {
    const response = await client.run(toolCall('const shared = { v: 1 }; return [shared, shared];'));
    expect(outputOf(response)).toEqual([{ v: 1 }, { v: 1 }]);
  });

  it('a null-prototype object is a plain object', async () => {
    const response = await client.run(toolCall('const o = Object.create(null); o.k = "v"; return o;'));
    expect(outputOf(response)).toEqual({ k: 'v' });
  });

  it('a result over maxOutputBytes is ERR_TOOL_OUTPUT_TOO_LARGE', async () => {
    const response = await client.run(toolCall('return "x".repeat(2000);', null, {}, { maxOutputBytes: 1000 }));
    expect(codeOf(response)).toBe('ERR_TOOL_OUTPUT_TOO_LARGE');
    const justFits = await client.run(toolCall('return "x".repeat(998);', null, {}, { maxOutputBytes: 1000 }));
    expect(outputOf(justFits)).toHaveLength(998);
  });

  it('the size limit counts UTF-8 bytes, not characters', async () => {
    // 400 characters of 3 bytes each: 1202 bytes of JSON, under 1000 characters.
    const response = await client.run(toolCall('return "€".repeat(400);', null, {}, { maxOutputBytes: 1000 }));
    expect(codeOf(response)).toBe('ERR_TOOL_OUTPUT_TOO_LARGE');
  });
});

describe('limits', () => {
  it('an infinite loop is ERR_SANDBOX_TIMEOUT and the same client then serves calls', async () => {
    const response = await client.run(toolCall('while (true) {}', null, {}, { timeoutMs: 300 }));
    // How soon it is answered is the machine's load, not the contract (a stopwatch bound here was a flake).
    expect(codeOf(response)).toBe('ERR_SANDBOX_TIMEOUT');
    expect(outputOf(await client.run(toolCall('return "still serving";')))).toBe('still serving');
  });

  it('an infinite loop after an await is ERR_SANDBOX_TIMEOUT', async () => {
    const response = await client.run(toolCall('await null; while (true) {}', null, {}, { timeoutMs: 300 }));
    expect(codeOf(response)).toBe('ERR_SANDBOX_TIMEOUT');
  });

  it('a promise that never settles is ERR_SANDBOX_TIMEOUT', async () => {
    const response = await client.run(toolCall('await new Promise(() => {});', null, {}, { timeoutMs: 300 }));
    expect(codeOf(response)).toBe('ERR_SANDBOX_TIMEOUT');
  });

  it('a loop does not hold up other calls', async () => {
    // Ordered by events, not by a stopwatch: the quick call answers while the loop still runs.
    const loop = client.run(toolCall('while (true) {}', null, {}, { timeoutMs: 10_000 }));
    let loopEnded = false;
    void loop.then(() => (loopEnded = true));
    expect(outputOf(await client.run(toolCall('return "quick";')))).toBe('quick');
    expect(loopEnded).toBe(false);
    expect(codeOf(await loop)).toBe('ERR_SANDBOX_TIMEOUT');
  }, 120_000);

  it('a memory bomb is ERR_SANDBOX_MEMORY (or a crashed host) and the next call works', async () => {
    const bomb = 'const hoard = []; while (true) hoard.push("x".repeat(1024) + hoard.length);';
    // A time limit far past what filling 16 MB takes even on a loaded machine: memory runs out first.
    const response = await client.run(toolCall(bomb, null, {}, { memoryMb: 16, timeoutMs: 60_000 }));
    expect(['ERR_SANDBOX_MEMORY', 'ERR_SANDBOX_CRASHED']).toContain(codeOf(response));
    expect(outputOf(await client.run(toolCall('return [1, 2, 3].length;')))).toBe(3);
  }, 120_000);

  it('a huge allocation fails inside the isolate', async () => {
    const response = await client.run(toolCall('return new ArrayBuffer(2 ** 31).byteLength;', null, {}, { memoryMb: 16 }));
    expect(['ERR_TOOL_THREW', 'ERR_SANDBOX_MEMORY']).toContain(codeOf(response));
    expect(outputOf(await client.run(toolCall('return "ok";')))).toBe('ok');
  });
});

describe('host process failures', () => {
  it('a host killed mid-call answers ERR_SANDBOX_CRASHED and the next call starts a new host', async () => {
    const before = client.pid;
    const exitsBefore = client.stats.hostExits;
    expect(before).toBeTypeOf('number');
    const hanging = client.run(toolCall('await new Promise(() => {});', null, {}, { timeoutMs: 20_000 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    process.kill(before!, 'SIGKILL');
    const response = await hanging;
    expect(codeOf(response)).toBe('ERR_SANDBOX_CRASHED');
    expect(outputOf(await client.run(toolCall('return "back";')))).toBe('back');
    expect(client.pid).not.toBe(before);
    expect(client.stats.hostExits).toBe(exitsBefore + 1);
  });

  it('a host that dies is replaced at once, before any further call (warm for the next one)', async () => {
    const before = client.pid!;
    const starts = client.stats.hostStarts;
    process.kill(before, 'SIGKILL');
    await vi.waitFor(() => {
      expect(client.stats.hostStarts).toBe(starts + 1);
      expect(client.pid).toBeTypeOf('number');
    }, { timeout: 30_000, interval: 20 });
    const replacement = client.pid;
    expect(replacement).not.toBe(before);
    expect(outputOf(await client.run(toolCall('return "warm";')))).toBe('warm');
    expect(client.pid).toBe(replacement);
  });

  it('a wedged host is killed by the worker-side deadline: ERR_SANDBOX_TIMEOUT, then a new host', async () => {
    const wedgeable = await SandboxClient.start({ deadlineGraceMs: 300 });
    try {
      const before = wedgeable.pid;
      // SIGSTOP freezes the host: its own timers cannot fire, only the worker's deadline can.
      const call = wedgeable.run(toolCall('return 1;', null, {}, { timeoutMs: 200 }));
      process.kill(before!, 'SIGSTOP');
      const response = await call;
      expect(codeOf(response)).toBe('ERR_SANDBOX_TIMEOUT');
      expect(response.ok ? '' : response.error.message).toContain('overran its timeout');
      expect(wedgeable.stats.deadlineKills).toBe(1);
      expect(outputOf(await wedgeable.run(toolCall('return "fresh";')))).toBe('fresh');
      expect(wedgeable.pid).not.toBe(before);
    } finally {
      await wedgeable.close();
    }
  });

  it('a host that never answers its start-up probe is named as such, not as a call that overran', async () => {
    // The host blocks before loading anything (a preload that waits 2 minutes): on a loaded machine
    // a host booting through tsx can take longer than the boot allowance, and the worker's error
    // used to blame a tool call.
    const dir = mkdtempSync(join(tmpdir(), 'warden-never-boots-'));
    const preload = join(dir, 'block.js');
    writeFileSync(preload, 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);\n');
    try {
      const starting = SandboxClient.start({ bootAllowanceMs: 0, deadlineGraceMs: 0, env: { PATH: process.env['PATH'], NODE_OPTIONS: `--require ${preload}` } });
      const error = (await starting.then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: string; message?: string } | undefined;
      expect(error?.code).toBe('ERR_SANDBOX_CRASHED');
      expect(error?.message).toContain('ERR_SANDBOX_TIMEOUT: the sandbox host did not answer its first call within 5000 ms of being started');
      expect(error?.message).not.toContain('overran');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the client API', () => {
  it('rejects a malformed call with a TypeError', async () => {
    const bad = { ...toolCall('return 1;'), limits: { timeoutMs: -1, memoryMb: 32, maxOutputBytes: 10 } };
    await expect(client.run(bad)).rejects.toBeInstanceOf(TypeError);
  });

  it('close answers pending calls and later runs reject', async () => {
    const closing = await SandboxClient.start();
    const pid = closing.pid!;
    const pending = closing.run(toolCall('await new Promise(() => {});', null, {}, { timeoutMs: 20_000 }));
    await closing.close();
    expect(codeOf(await pending)).toBe('ERR_SANDBOX_CRASHED');
    await expect(closing.run(toolCall('return 1;'))).rejects.toMatchObject({ code: 'ERR_SANDBOX_CRASHED' });
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('the host does not inherit worker secrets from the environment', async () => {
    process.env['WARDEN_TEST_SECRET'] = 'hunter2';
    const scrubbed = await SandboxClient.start();
    try {
      const environ = await import('node:fs').then((fs) => fs.readFileSync(`/proc/${scrubbed.pid}/environ`, 'utf8'));
      expect(environ).not.toContain('hunter2');
      expect(environ).toContain('PATH=');
    } finally {
      delete process.env['WARDEN_TEST_SECRET'];
      await scrubbed.close();
    }
  });
});
