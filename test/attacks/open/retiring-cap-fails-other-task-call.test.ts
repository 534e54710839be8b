/**
 * Severity: medium (one task fails another task's call that already reached the network; a
 * payment the server accepted is answered ERR_SANDBOX_CRASHED, not retryable, "its effects may
 * have happened").
 *
 * Attack: the retiring-host cap (`maxRetiringHosts`, default 4, `#retire` in
 * sandbox/sandbox-client.ts) stops the oldest retiring host once a fifth one retires, and answers
 * its calls as a lost host's. A task whose tool can make V8 give an isolate up (a Map grown without
 * end at 64 MiB; the patterns of host-retirement.test.ts) crashes the shared host while the
 * victim's call (another task's payment, waiting on its server) runs there: that host retires and
 * the victim's call goes on, as it should (tool-oom-spares-other-calls.test.ts). Then the attacker
 * crashes four more hosts, each beside a call of its own that waits long (here an HTTP request its
 * own server holds; any call that waits to its timeout does). The fifth retiring host pushes the
 * victim's host over the cap: it is SIGKILLed and the victim's payment, which the server received
 * and will still answer, is answered ERR_SANDBOX_CRASHED, not retryable.
 *
 * Why it works: the cap picks which host to stop by age alone, and the oldest retiring host is by
 * construction the one the attacker retired first, the one holding the victim's call; the client
 * knows which call crashed each host (SandboxCrashedNotice) but does not use it. Before the cap
 * (main), the same five crashes left five retiring hosts and the victim's call finished: the cap
 * is a new way for one task to fail another's calls, bringing back the outcome of the fixed finding
 * `tool-oom-aborts-shared-sandbox-host` for the price of five crashes instead of one.
 *
 * Suggested fix: bound what the crashing calls' side costs, not the bystanders': past the cap, stop
 * a retiring host none of whose calls belongs to another task (the request could name its task key,
 * which `startRecord` already carries for some calls), or refuse new calls of the tool (source
 * digest) or task whose calls crashed hosts while the cap is full (ERR_SANDBOX_MEMORY, not
 * retryable), so the attacker's own calls are the ones that fail; never stop a host for a call that
 * did not crash one.
 *
 * Real parts: real sandbox host processes (SandboxClient with its default cap), real isolates and
 * V8 catastrophic out-of-memory failures, a loopback HTTP server standing in for the payment
 * server and the attacker's slow server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../../sandbox/sandbox-client';
import type { SandboxRunResponse } from '../../../sandbox/sandbox-messages';
import { until } from '../../support/run-tool-watch';
import { CATASTROPHIC_OOM_SOURCES as CRASHING, codeOf, startHoldingServer, toolCall, type HoldingServer } from '../../sandbox/sandbox-test-kit';

/** Far out: the victim's call must end by the server's answer, not by a timer. */
const FAR = 600_000;

let server: HoldingServer;
let client: SandboxClient;

beforeAll(async () => {
  server = await startHoldingServer();
  // The worker's client as `createWorker` makes it: the default cap.
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await server?.close();
});

const heldAt = (url: string): number => server.heldAt(url).length;

/** A call that POSTs to `path` and waits for the server's answer (it reached the network). */
function waitingCall(path: string): Promise<SandboxRunResponse> {
  const url = `http://127.0.0.1:${server.port}${path}`;
  const grant = { http: { allowedHosts: [`127.0.0.1:${server.port}`] } };
  return client.run(toolCall("return (await warden.http.fetch(input, { method: 'POST', body: 'pay 100' })).status;", url, grant, { timeoutMs: FAR }));
}

/** The attacker's crash of the client's current host: tries the patterns until the host retires. */
async function crashCurrentHost(): Promise<void> {
  for (const source of [...CRASHING, ...CRASHING, ...CRASHING]) {
    const retiring = client.stats.retiringHosts;
    const exits = client.stats.hostExits;
    const cause = await client.run(toolCall(source, null, {}, { timeoutMs: 60_000, memoryMb: 64 }));
    expect(codeOf(cause)).toBe('ERR_SANDBOX_MEMORY');
    if (client.stats.retiringHosts > retiring || client.stats.hostExits > exits) return;
  }
  throw new Error('no pattern made V8 give an isolate up in nine tries');
}

it("an attacker's crashes on four more hosts fail another task's payment in flight on the first retiring host", async () => {
  // The victim: another task's payment, received by the server, its answer still to come.
  const victim = waitingCall('/victim/pay');
  await until(() => heldAt('/victim/pay') === 1, "the victim's payment reached the server");
  // The attacker crashes the host the payment runs on: it retires, the payment goes on.
  await crashCurrentHost();
  // Four more hosts, each kept retiring by a call of the attacker's own that waits long.
  for (let i = 0; i < 4; i += 1) {
    const before = heldAt('/attacker/hold');
    void waitingCall('/attacker/hold');
    await until(() => heldAt('/attacker/hold') > before, "the attacker's holding call reached its server");
    await crashCurrentHost();
  }
  // The payment server answers the victim's payment.
  server.heldAt('/victim/pay')[0]!.end('ok');
  const answer = await victim;
  // Main: the victim's host retired and the payment was answered 200. This branch: the host was
  // stopped by the cap, and the payment the server accepted reads crashed, not retryable.
  expect({ victim: codeOf(answer), message: answer.ok ? undefined : answer.error.message.slice(0, 160) }).toEqual({ victim: 'ok: 200', message: undefined });
}, 600_000);
