/**
 * Retiring sandbox hosts are not capped: however many hosts one task's tool crashes, each retiring
 * host finishes its other calls, so another task's call in flight is answered by its own result.
 *
 * Was the open finding `retiring-cap-fails-other-task-call` (s16, atk16, medium) against a cap
 * tried this stop (`maxRetiringHosts`, 4): past it the client stopped the oldest retiring host,
 * and the oldest was by construction the one the attacker retired first, the one holding the
 * victim's payment, which the server had accepted and which then read ERR_SANDBOX_CRASHED, not
 * retryable. The cap was withdrawn: what a retiring host costs (a process until its longest call
 * ends, bounded by the client's deadline) is the crashing task's side of the bargain, and
 * stopping a host for a call that did not crash one is not. sandbox/README.md says so.
 *
 * The attack: the victim's payment waits on its server on the shared host; the attacker crashes
 * that host (it retires), then four more, each beside a call of its own that waits long.
 * Real parts: real sandbox host processes (SandboxClient with the worker's defaults), real
 * isolates and V8 catastrophic out-of-memory failures, a loopback HTTP server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { until } from '../support/run-tool-watch';
import { CATASTROPHIC_OOM_SOURCES as CRASHING, codeOf, startHoldingServer, toolCall, type HoldingServer } from './sandbox-test-kit';

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

it("an attacker's crashes on four more hosts leave another task's payment on the first retiring host to finish", async () => {
  // The victim: another task's payment, received by the server, its answer still to come.
  const victim = waitingCall('/victim/pay');
  await until(() => heldAt('/victim/pay') === 1, "the victim's payment reached the server", { "the victim's payment": victim });
  // The attacker crashes the host the payment runs on: it retires, the payment goes on.
  await crashCurrentHost();
  // Four more hosts, each kept retiring by a call of the attacker's own that waits long.
  for (let i = 0; i < 4; i += 1) {
    const before = heldAt('/attacker/hold');
    const holding = waitingCall('/attacker/hold');
    await until(() => heldAt('/attacker/hold') > before, "the attacker's holding call reached its server", { "the attacker's holding call": holding, "the victim's payment": victim });
    await crashCurrentHost();
  }
  // The payment server answers the victim's payment.
  server.heldAt('/victim/pay')[0]!.end('ok');
  const answer = await victim;
  // With the cap the victim's host was stopped and the payment the server accepted read crashed, not retryable.
  expect({ victim: codeOf(answer), message: answer.ok ? undefined : answer.error.message.slice(0, 160) }).toEqual({ victim: 'ok: 200', message: undefined });
}, 600_000);
