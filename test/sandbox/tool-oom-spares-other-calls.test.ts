/**
 * A tool that exhausts its isolate's heap fails alone: another task's call in flight on the same
 * sandbox host goes on and is answered. Was an open finding (s15, atk15, medium,
 * `tool-oom-aborts-shared-sandbox-host.test.ts`): a tool that grows a Map, fills an array of
 * 2^32 - 1 or concatenates a large array at the default 64 MiB made V8 fail its isolate with a
 * catastrophic out-of-memory (one backing-store growth step that does not fit under the isolate's
 * heap limit is fatal however far below `memoryLimit` the heap is: measured here at 64, 128, 256
 * and 512 MiB, each crashed with the heap at a third to a half of its limit), isolated-vm called
 * `onCatastrophicError` and the host aborted at once, taking every other task's calls with it: a
 * payment POST the server had received was answered ERR_SANDBOX_CRASHED.
 *
 * Now the host follows isolated-vm's advice (stop serving, finish outstanding work, then abort;
 * `retireAfterCatastrophe` in sandbox/sandbox-host.ts): the lost isolate's call is answered at once,
 * ERR_SANDBOX_MEMORY, not run again; the client sends that host no new call and starts its
 * replacement; the payment finishes in its own isolate and is answered; then the host ends.
 * Which allocation V8 fails catastrophically (rather than stopping at the limit, also
 * ERR_SANDBOX_MEMORY) varies from run to run, so each pattern runs twice.
 *
 * Real parts: a real sandbox host process (SandboxClient), real isolates, a loopback HTTP server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { until } from '../support/run-tool-watch';
import { codeOf, outputOf, toolCall } from './sandbox-test-kit';

/** Far out: a host that did not answer by itself would make the test hang, not pass. */
const FAR = 600_000;

let client: SandboxClient;
let web: Server;
const held: { url: string; res: ServerResponse }[] = [];

beforeAll(async () => {
  web = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on('end', () => held.push({ url: req.url ?? '', res }));
  });
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
}, 120_000);

afterAll(async () => {
  await client?.close();
  web?.closeAllConnections();
  await new Promise((resolve) => web?.close(resolve));
});

/** Each allocation pattern that crashed the host on the old code; which one V8 fails catastrophically varies from run to run, so each runs twice. */
const CRASHING = [
  { name: 'a Map grown without end', source: 'const m = new Map(); for (let i = 0; ; i += 1) m.set(i, i);' },
  { name: 'an array of 2^32 - 1 filled', source: 'const a = []; a.length = 2 ** 32 - 1; a.fill(0); return 1;' },
  { name: 'a large array concatenated', source: 'const a = new Array(2 ** 26).fill(0); return a.concat(a, a, a, a).length;' },
];
// Control: contained inside the isolate (the tool sees a RangeError), the host never retires.
const CONTROL = { name: 'a string doubled without end (control)', source: "let s = 'x'; for (;;) s += s;" };

/**
 * Runs `source` at the default memory limit while another task's payment is in flight on the
 * host; what each call got, and whether the host after it serves calls (its replacement, once a
 * retiring host has ended).
 */
async function hogBesidePayment(source: string): Promise<{ hog: string; payment: string; atMostOneHostEnded: boolean; next: unknown }> {
  const host = `127.0.0.1:${(web.address() as AddressInfo).port}`;
  const grant: CapabilityGrant = { http: { allowedHosts: [host] } };
  const before = held.length;
  const exits = client.stats.hostExits;
  // Another task's payment: the server has received it and answers once the tool is done.
  const paying = client.run(toolCall("return (await warden.http.fetch(input.url, { method: 'POST', body: 'pay 100 to bob' })).status;", { url: `http://${host}/pay` }, grant, { timeoutMs: FAR }));
  await until(() => held.length > before, 'the payment reached the server', { 'the payment': paying });
  const hog = await client.run(toolCall(source, null, {}, { timeoutMs: 60_000, memoryMb: 64 }));
  held[before]!.res.end('ok');
  const paid = await paying;
  // (A client without retiring hosts reads undefined: nothing to wait for.)
  await until(() => !(client.stats.retiringHosts > 0), 'a retiring host ended');
  const next = await client.run(toolCall('return input + 1;', 41));
  return { hog: codeOf(hog), payment: codeOf(paid), atMostOneHostEnded: client.stats.hostExits - exits <= 1, next: outputOf(next) };
}

it("a tool's memory use is its own failure, and another task's call on the host goes on", async () => {
  const seen: Record<string, Awaited<ReturnType<typeof hogBesidePayment>>> = {};
  for (const { name, source } of CRASHING) for (const run of [1, 2]) seen[`${name} #${run}`] = await hogBesidePayment(source);
  // A host one of whose isolates V8 gave up retires (one host ended), one that contained the tool does not: either way no other call is lost.
  const contained = { hog: 'ERR_SANDBOX_MEMORY', payment: 'ok: 200', atMostOneHostEnded: true, next: 42 };
  expect(seen).toEqual(Object.fromEntries(Object.keys(seen).map((key) => [key, contained])));
}, 300_000);

it(`control: ${CONTROL.name}`, async () => {
  expect(await hogBesidePayment(CONTROL.source)).toEqual({ hog: 'ERR_TOOL_THREW', payment: 'ok: 200', atMostOneHostEnded: true, next: 42 });
}, 180_000);
