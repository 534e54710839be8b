/**
 * A call whose isolate V8 loses (a heap exhausted outside isolated-vm's limit checks: V8 reports a
 * catastrophic out-of-memory) is named by the host at once (SandboxCrashedNotice on the notice
 * pipe, from the isolate pool's `onCatastrophicError`, which knows the call that leased the
 * isolate). The client answers that call as its own failure, ERR_SANDBOX_MEMORY, not retryable: run
 * again it would end the replacement host too. The host then retires: it takes no new call (the
 * client sends the next one to a replacement), finishes the calls running in its other isolates,
 * which are answered as if nothing happened, and ends (sandbox-host.ts, `retireAfterCatastrophe`).
 * Was an open finding (s15, atk15, `host-crash-retried-as-not-run.test.ts`): the cause was answered
 * as a bystander, retryable, and its activity ran it three times, crashing the shared host each
 * time (test/activities/host-crash-cause-not-retried.test.ts runs that task). Bystanders used to be
 * lost with the host (ERR_SANDBOX_CRASHED); they are spared since
 * test/sandbox/tool-oom-spares-other-calls.test.ts.
 *
 * Which allocation V8 fails catastrophically varies from run to run: the patterns are tried in
 * turn until one retires the host, and the answers of that round are checked.
 * Real parts: a real sandbox host process (SandboxClient), real isolates, a loopback HTTP server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { until } from '../support/run-tool-watch';
import { CATASTROPHIC_OOM_SOURCES as CRASHING, codeOf, startHoldingServer, toolCall, type HoldingServer } from './sandbox-test-kit';

/** Far out: a host that did not answer by itself would make the test hang, not pass. */
const FAR = 600_000;

let client: SandboxClient;
let server: HoldingServer;
beforeAll(async () => {
  server = await startHoldingServer();
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
}, 120_000);
afterAll(async () => {
  await client?.close();
  await server?.close();
});

const errorOf = (response: SandboxRunResponse) => (response.ok ? undefined : response.error);

it('names the call that lost its isolate, not run again; the host finishes its other calls, takes no new one, then ends', async () => {
  const url = `http://127.0.0.1:${server.port}/slow`;
  const grant = { http: { allowedHosts: [`127.0.0.1:${server.port}`] } };
  for (const source of [...CRASHING, ...CRASHING]) {
    const exits = client.stats.hostExits;
    const pid = client.pid;
    const before = server.held.length;
    // Busy in its own isolate until the server answers: it reached the network, so lost with the host it could not be run again.
    const bystander = client.run(toolCall('return (await warden.http.fetch(input)).status;', url, grant, { timeoutMs: FAR }));
    await until(() => server.held.length > before, 'the bystander reached the server', { 'the bystander': bystander });
    const cause = await client.run(toolCall(source, null, {}, { timeoutMs: 60_000, memoryMb: 64 }));
    if (client.stats.retiringHosts === 0) {
      // Contained this time (ERR_SANDBOX_MEMORY from isolated-vm's own check): try the next pattern.
      expect(codeOf(cause)).toBe('ERR_SANDBOX_MEMORY');
      server.held[before]!.end('ok');
      await bystander;
      continue;
    }
    // The host is retiring: a call sent now runs on its replacement, while the bystander still runs on it.
    const during = await client.run(toolCall('return input + 1;', 41));
    const duringPid = client.pid;
    const hostExitsWhileBystanderRan = client.stats.hostExits - exits;
    server.held[before]!.end('ok');
    const spared = await bystander;
    await until(() => client.stats.retiringHosts === 0, 'the retiring host ended');
    expect(errorOf(cause)).toMatchObject({ code: 'ERR_SANDBOX_MEMORY' });
    expect(errorOf(cause)?.retryable).not.toBe(true);
    expect(errorOf(cause)?.message).toContain('it is not run again');
    expect({ during: codeOf(during), movedHost: duringPid !== pid, hostExitsWhileBystanderRan, bystander: codeOf(spared), hostExitsAfter: client.stats.hostExits - exits }).toEqual({
      during: 'ok: 42',
      movedHost: true,
      hostExitsWhileBystanderRan: 0,
      bystander: 'ok: 200',
      hostExitsAfter: 1,
    });
    return;
  }
  expect.fail('no pattern made V8 give an isolate up in six tries');
}, 600_000);
