/**
 * Open finding (s15, atk15), medium: a tool that grows a Map (or fills or concatenates a large
 * array) inside its isolate's memory limit is not stopped as out of memory: V8 reports a
 * catastrophic out-of-memory error for the isolate, isolated-vm calls `onCatastrophicError`, and
 * the sandbox host calls `process.abort()` (`abortHostProcess`, sandbox/run-in-isolate.ts). The
 * host is the one every task of the worker shares: every other call in flight on it is lost with
 * it, and one that had reached a capability (a payment POST the server received) is answered
 * ERR_SANDBOX_CRASHED, not retryable, its task failed and rolled back for another task's tool.
 * A prompt-injected agent needs only hand a tool that indexes its input a large enough input; a
 * malicious tool needs one line: `const m = new Map(); for (let i = 0; ; i++) m.set(i, i);`.
 * Other allocations are contained as designed (a RangeError the tool sees): the control. Which
 * allocation V8 fails catastrophically rather than stopping at the limit varies from run to run, so
 * each pattern runs twice (one crash fails the test; in 3 runs here each pattern crashed at least
 * once, most rows both times). All rows run at `toolMemoryMb: 64`, the default (at 64 MiB an array of 2^27 filled element by element
 * crashed the host too; at 128 MiB it was contained, ERR_SANDBOX_MEMORY).
 *
 * Reproduce: `npx vitest run --config vitest.open-findings.config.mts test/attacks/open/tool-oom-aborts-shared-sandbox-host.test.ts`.
 * On this machine the host dies (SIGABRT) in 2-8 s for each crashing row.
 *
 * Suggested fix: contain the isolate's heap before V8 gives up on it: isolated-vm's limit is
 * checked at GC, and a single growth step (a Map's or an array's backing store doubling) can pass
 * the heap's hard limit before the soft limit is seen; run each isolate with V8 heap limits that
 * leave room for one doubling above `memoryLimit` (isolated-vm creates the isolate with its own
 * resource constraints), or give each task (or each call that can be made to crash it) a sandbox
 * host of its own, so a catastrophic failure takes only that task's call. Either way, the host's
 * `onCatastrophicError` knows the isolate, so the call that caused the crash can be told apart
 * (done: the cause is answered not retryable, test/sandbox/host-crash-cause-named.test.ts).
 *
 * Real parts: a real sandbox host process (SandboxClient), real isolates, a loopback HTTP server.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../../sandbox/sandbox-messages';
import { until } from '../../support/run-tool-watch';
import { codeOf, toolCall } from '../../sandbox/sandbox-test-kit';

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

/** Each allocation pattern that crashed the host here; which one V8 fails catastrophically varies from run to run, so each runs twice. */
const CRASHING = [
  { name: 'a Map grown without end', source: 'const m = new Map(); for (let i = 0; ; i += 1) m.set(i, i);' },
  { name: 'an array of 2^32 - 1 filled', source: 'const a = []; a.length = 2 ** 32 - 1; a.fill(0); return 1;' },
  { name: 'a large array concatenated', source: 'const a = new Array(2 ** 26).fill(0); return a.concat(a, a, a, a).length;' },
];
// Control: contained today (the tool sees a RangeError).
const CONTROL = { name: 'a string doubled without end (control)', source: "let s = 'x'; for (;;) s += s;" };

/** Runs `source` at the default memory limit while another task's payment is in flight on the host; what each call got. */
async function hogBesidePayment(source: string): Promise<{ hog: string; payment: string; hostExits: number }> {
  const host = `127.0.0.1:${(web.address() as AddressInfo).port}`;
  const grant: CapabilityGrant = { http: { allowedHosts: [host] } };
  const before = held.length;
  const exits = client.stats.hostExits;
  // Another task's payment: the server has received it and answers once the tool is done.
  const paying = client.run(toolCall("return (await warden.http.fetch(input.url, { method: 'POST', body: 'pay 100 to bob' })).status;", { url: `http://${host}/pay` }, grant, { timeoutMs: FAR }));
  await until(() => held.length > before, 'the payment reached the server');
  const hog = await client.run(toolCall(source, null, {}, { timeoutMs: 60_000, memoryMb: 64 }));
  held[before]!.res.end('ok');
  const paid = await paying;
  return { hog: codeOf(hog) === 'ERR_SANDBOX_CRASHED' ? 'ERR_SANDBOX_CRASHED' : 'contained', payment: codeOf(paid), hostExits: client.stats.hostExits - exits };
}

it("a tool's memory use is its own failure, and another task's call on the host goes on", async () => {
  const seen: Record<string, unknown> = {};
  for (const { name, source } of CRASHING) for (const run of [1, 2]) seen[`${name} #${run}`] = await hogBesidePayment(source);
  const contained = { hog: 'contained', payment: 'ok: 200', hostExits: 0 };
  expect(seen).toEqual(Object.fromEntries(Object.keys(seen).map((key) => [key, contained])));
}, 300_000);

it(`control: ${CONTROL.name}`, async () => {
  expect(await hogBesidePayment(CONTROL.source)).toEqual({ hog: 'contained', payment: 'ok: 200', hostExits: 0 });
}, 180_000);
