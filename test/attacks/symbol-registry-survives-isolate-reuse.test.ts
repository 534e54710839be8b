/**
 * Attack (session 17, atk17c): the global symbol registry (`Symbol.for`) belongs to the V8
 * isolate, not to a context. A tool's call that registers symbols with large keys leaves them
 * alive in its isolate after its context is released, and the host hands that isolate to the
 * next call, any task's (sandbox/README.md: "Nothing survives a call"; the heap check retires an
 * isolate only above half its limit, so up to half of it can be kept).
 *
 * What the later call sees: less memory. `new ArrayBuffer(n)` fails with a catchable RangeError
 * once heap in use + n passes the limit, so a call can measure, to the megabyte, what an earlier
 * call left registered (a covert channel between tasks that share the host: a task holding a
 * secret and no egress can pass it to one with egress), and a call that needs most of its
 * memory limit fails where it would pass on a fresh isolate.
 *
 * Fails on h/hostcpu and on main (not introduced by the host-CPU change).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { outputOf, toolCall } from '../sandbox/sandbox-test-kit';

const LIMITS = { memoryMb: 64, timeoutMs: 10_000 };

/** The largest ArrayBuffer (in MiB) the call can allocate: the memory left in its isolate. */
const MEASURE = `let lo = 0, hi = 128;
  while (hi - lo > 1) { const mid = (lo + hi) >> 1; try { new ArrayBuffer(mid * 1048576); lo = mid; } catch { hi = mid; } }
  return lo;`;

/** About 20 MiB of registered symbols; the same keys each time, so planting twice adds nothing. */
const PLANT = 'for (let i = 0; i < 20000; i += 1) Symbol.for("k" + i + "x".repeat(1000)); return "planted";';

/** An ordinary tool that needs 50 MiB of its 64 MiB. */
const NEEDS_MEMORY = 'const buffer = new ArrayBuffer(50 * 1048576); return buffer.byteLength;';

describe('symbols registered by one call do not reach a later call on the same isolate', () => {
  let client: SandboxClient;

  beforeAll(async () => {
    client = await SandboxClient.start();
  });

  afterAll(async () => {
    await client.close();
  });

  it('a later call has the memory of a fresh isolate, and a tool that needs it runs', async () => {
    const fresh = outputOf(await client.run(toolCall(MEASURE, null, {}, LIMITS))) as number;
    expect(fresh).toBeGreaterThan(50);

    // Task A's tool, a few times, so every warm isolate of this limit (the spare included) holds it.
    for (let i = 0; i < 4; i += 1) expect(outputOf(await client.run(toolCall(PLANT, null, {}, LIMITS)))).toBe('planted');
    await new Promise((resolve) => setTimeout(resolve, 60));

    // Task B's calls on the same host.
    const seen: number[] = [];
    const needs: string[] = [];
    for (let i = 0; i < 4; i += 1) {
      seen.push(outputOf(await client.run(toolCall(MEASURE, null, {}, LIMITS))) as number);
      const response = await client.run(toolCall(NEEDS_MEMORY, null, {}, LIMITS));
      needs.push(response.ok ? 'ok' : `${response.error.code}: ${response.error.message}`);
    }
    expect({ lowestMemory: Math.min(...seen), needs }).toEqual({ lowestMemory: expect.toSatisfy((mb: number) => mb >= fresh - 4) as unknown, needs: ['ok', 'ok', 'ok', 'ok'] });
  });

  it('within a call Symbol.for and Symbol.keyFor keep their meaning; a later call finds none of its keys', async () => {
    const semantics = `const a = Symbol.for('a');
      let symbolKey = 'no error';
      try { Symbol.for(Symbol('s')); } catch (error) { symbolKey = error.constructor.name; }
      let notSymbol = 'no error';
      try { Symbol.keyFor('a'); } catch (error) { notSymbol = error.constructor.name; }
      return { same: a === Symbol.for('a'), key: Symbol.keyFor(a), number: Symbol.keyFor(Symbol.for(1)), unregistered: Symbol.keyFor(Symbol('b')) === undefined, wellKnown: Symbol.keyFor(Symbol.iterator) === undefined, symbolKey, notSymbol };`;
    expect(outputOf(await client.run(toolCall(semantics, null, {}, LIMITS)))).toEqual({ same: true, key: 'a', number: '1', unregistered: true, wellKnown: true, symbolKey: 'TypeError', notSymbol: 'TypeError' });
    // A call leaves a registered symbol on a global of its context; later calls on the same isolate see neither.
    for (let i = 0; i < 4; i += 1) await client.run(toolCall("globalThis.left = Symbol.for('left behind'); return 1;", null, {}, LIMITS));
    const later = "return { global: typeof globalThis.left, sameAsBefore: Symbol.keyFor(Symbol.for('left behind')) === 'left behind' };";
    expect(outputOf(await client.run(toolCall(later, null, {}, LIMITS)))).toEqual({ global: 'undefined', sameAsBefore: true });
  });
});
