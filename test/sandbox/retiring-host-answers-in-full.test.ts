/**
 * A sandbox host retiring after V8 gave up on one of its isolates answers its last bystander in
 * full before it aborts. Was an open finding (s15, atk15c, medium, `retiring-host-drops-bystander-
 * answer.test.ts`): the host aborted in the same turn in which it queued its last bystander's
 * answer, so an answer larger than what the IPC socket takes at once was cut off and the
 * bystander, another task's payment the server already accepted, was answered ERR_SANDBOX_CRASHED.
 * Now the host counts the answers the IPC channel has not sent yet and aborts only when there are
 * none (`unsent` in `retireAfterCatastrophe`, sandbox/sandbox-host.ts).
 *
 * Why it was cut off: the host sends answers with `process.send` (asynchronous: libuv writes what the socket
 * takes now and queues the rest for a later turn of the event loop), and `serveOverIpc` calls
 * `retirement.abortIfDone()` right after `handleHostMessage` resolves, which calls
 * `process.abort()` before the queued rest of the answer is ever written (sandbox/sandbox-host.ts,
 * `retireAfterCatastrophe`). The client reads a truncated message, then the host's exit, and
 * answers the call as lost with its host (`lostWithHost`: reached http, not retryable).
 *
 * A bystander posts a payment (held by the loopback server), a hog grows a Map at 64 MiB until
 * V8 gives up on its isolate (the host retires; which allocation V8 fails catastrophically varies,
 * so the hog is tried until the host retires), then the payment is answered and the bystander
 * returns 900 kB (under its 1 MB output limit). Expected: the bystander's result, `ok`.
 *
 * Real parts: a real sandbox host process (SandboxClient), real isolates, a loopback HTTP server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { until } from '../support/run-tool-watch';
import { startHoldingServer, toolCall, type HoldingServer } from './sandbox-test-kit';

const FAR = 600_000;
const HOG = 'const m = new Map(); for (let i = 0; ; i += 1) m.set(i, i);';

let client: SandboxClient;
let web: HoldingServer;

beforeAll(async () => {
  // Each request is held: answered once the hog beside it has made the host retire.
  web = await startHoldingServer();
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
}, 120_000);

afterAll(async () => Promise.all([client?.close(), web?.close()]));

/** What a paying bystander returning `bytes` of output got when the hog beside it made its host retire; undefined if V8 contained the hog. */
async function bystanderBesideRetirement(bytes: number): Promise<string | undefined> {
  const host = `127.0.0.1:${web.port}`;
  const grant: CapabilityGrant = { http: { allowedHosts: [host] } };
  const before = web.held.length;
  const paying = client.run(
    toolCall(`const s = (await warden.http.fetch(input.url, { method: 'POST', body: 'pay 100 to bob' })).status; return s + ':' + 'x'.repeat(${bytes});`, { url: `http://${host}/pay` }, grant, { timeoutMs: FAR }),
  );
  await until(() => web.held.length > before, 'the payment reached the server', { 'the payment': paying });
  await client.run(toolCall(HOG, null, {}, { timeoutMs: 60_000, memoryMb: 64 }));
  // The crashed notice came before the hog's answer: a host that retires is counted by now.
  const retired = client.stats.retiringHosts > 0;
  web.held[before]!.end('ok');
  const paid = await paying;
  await until(() => !(client.stats.retiringHosts > 0), 'the retiring host ended');
  if (!retired) return undefined;
  return paid.ok ? `ok: ${String(paid.output).slice(0, 4)}` : `${paid.error.code}: ${paid.error.message.slice(0, 120)}`;
}

it.each([
  { what: 'a large answer (900 kB)', bytes: 900_000 },
  { what: 'control: a small answer', bytes: 10 },
])('a retiring host answers its last bystander in full: $what', async ({ bytes }) => {
  let seen: string | undefined;
  for (let i = 0; i < 6 && seen === undefined; i += 1) seen = await bystanderBesideRetirement(bytes);
  expect(seen, 'precondition: V8 gave up on the hog and the host retired').toBeDefined();
  expect(seen).toBe('ok: 200:');
}, 300_000);
