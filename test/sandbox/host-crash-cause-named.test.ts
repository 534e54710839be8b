/**
 * A call whose isolate V8 loses (a heap exhausted outside isolated-vm's limit checks: V8 reports a
 * catastrophic out-of-memory and the host must abort) is named by the host before it aborts
 * (SandboxCrashedNotice on the notice pipe, from the isolate pool's `onCatastrophicError`, which
 * knows the call that leased the isolate). The client answers that call ERR_SANDBOX_CRASHED, not
 * retryable: run again it would end the replacement host too. Another call lost with the host that
 * reached no capability is still answered retryable. Was an open finding (s15, atk15,
 * `host-crash-retried-as-not-run.test.ts`): the cause was answered as a bystander, retryable, and
 * its activity ran it three times, crashing the shared host each time
 * (test/activities/host-crash-cause-not-retried.test.ts runs that task).
 *
 * Which allocation V8 fails catastrophically varies from run to run: the patterns are tried in
 * turn until one ends the host, and the answers of that round are checked.
 * Real parts: a real sandbox host process (SandboxClient), real isolates.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { toolCall } from './sandbox-test-kit';

/** Far out: a host that did not answer by itself would make the test hang, not pass. */
const FAR = 600_000;

const CRASHING = [
  'const m = new Map(); for (let i = 0; ; i += 1) m.set(i, i);',
  'const a = []; a.length = 2 ** 32 - 1; a.fill(0); return 1;',
  'const a = new Array(2 ** 26).fill(0); return a.concat(a, a, a, a).length;',
];

let client: SandboxClient;
beforeAll(async () => {
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
}, 120_000);
afterAll(async () => client?.close());

const errorOf = (response: SandboxRunResponse) => (response.ok ? undefined : response.error);

it('names the call that ended the host, not run again; a bystander that reached nothing may be run again', async () => {
  const rounds: { cause: ReturnType<typeof errorOf>; bystander: ReturnType<typeof errorOf> }[] = [];
  for (const source of [...CRASHING, ...CRASHING]) {
    const exits = client.stats.hostExits;
    // Busy in its own isolate, no capability reached: lost with the host, it did nothing.
    const bystander = client.run(toolCall('let n = 0; for (;;) n += 1;', null, {}, { timeoutMs: FAR }));
    const cause = await client.run(toolCall(source, null, {}, { timeoutMs: 60_000, memoryMb: 64 }));
    if (client.stats.hostExits === exits) {
      // Contained this time (ERR_SANDBOX_MEMORY): the host lives on; stop the bystander and try the next.
      await client.close();
      client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
      await bystander;
      continue;
    }
    rounds.push({ cause: errorOf(cause), bystander: errorOf(await bystander) });
    break;
  }
  expect(rounds, 'some pattern ended the host').toHaveLength(1);
  const [{ cause, bystander }] = rounds as [(typeof rounds)[0]];
  expect(cause).toMatchObject({ code: 'ERR_SANDBOX_CRASHED' });
  expect(cause?.retryable).not.toBe(true);
  expect(cause?.message).toContain('it is not run again');
  expect(bystander).toMatchObject({ code: 'ERR_SANDBOX_CRASHED', retryable: true });
}, 600_000);
