/**
 * Retiring sandbox hosts are capped (`maxRetiringHosts`, sandbox/sandbox-client.ts). A host that
 * lost an isolate to V8 retires: it takes no new call and ends once its other calls are answered
 * (host-crash-cause-named.test.ts). A tool that crashes its host again and again, beside calls that
 * wait long (an HTTP request the server holds, up to the task's tool timeout), left one process
 * per crash behind with no bound (s15, atk15c, an unproven risk). Past the cap, the oldest
 * retiring host is stopped and its calls answered as a lost host's: a call that reached the
 * network is ERR_SANDBOX_CRASHED and not retryable; the newer retiring host's call still finishes.
 *
 * Which allocation V8 fails catastrophically varies from run to run: each crash tries the
 * patterns in turn until one retires the host.
 * Real parts: real sandbox host processes (SandboxClient), real isolates, a loopback HTTP server.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { until } from '../support/run-tool-watch';
import { CATASTROPHIC_OOM_SOURCES as CRASHING, codeOf, startHoldingServer, toolCall, type HoldingServer } from './sandbox-test-kit';

/** Far out: a host that did not answer by itself would make the test hang, not pass. */
const FAR = 600_000;

let server: HoldingServer;
let held: HoldingServer['held'];
const clients: SandboxClient[] = [];
beforeAll(async () => {
  server = await startHoldingServer();
  held = server.held;
}, 120_000);
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.close();
});

/**
 * Sends a call that waits on the server (it reached the network), then crashes the client's
 * current host; resolves once that host is retiring, with the waiting call's answer to come.
 */
async function crashBesideWaitingCall(client: SandboxClient): Promise<{ waiting: Promise<SandboxRunResponse>; response: () => HoldingServer['held'][number] }> {
  const url = `http://127.0.0.1:${server.port}/slow`;
  const grant = { http: { allowedHosts: [`127.0.0.1:${server.port}`] } };
  for (const source of [...CRASHING, ...CRASHING, ...CRASHING]) {
    const retiring = client.stats.retiringHosts;
    const before = held.length;
    const waiting = client.run(toolCall('return (await warden.http.fetch(input)).status;', url, grant, { timeoutMs: FAR }));
    await until(() => held.length > before, 'the waiting call reached the server');
    const cause = await client.run(toolCall(source, null, {}, { timeoutMs: 60_000, memoryMb: 64 }));
    expect(codeOf(cause)).toBe('ERR_SANDBOX_MEMORY');
    if (client.stats.retiringHosts > retiring || client.stats.hostExits > 0) return { waiting, response: () => held[before]! };
    // Contained this time (isolated-vm's own check): the host is not retiring; try the next pattern.
    held[before]!.end('ok');
    await waiting;
  }
  throw new Error('no pattern made V8 give an isolate up in nine tries');
}

it.each([
  // The cap holds two: two crashes leave two retiring hosts, both calls finish.
  { name: 'a cap of 2: two crashes leave two retiring hosts', cap: 2, crashes: 2, stopped: 0 },
  // The cap holds one: the second crash stops the first retiring host.
  { name: 'a cap of 1: the second crash stops the first retiring host', cap: 1, crashes: 2, stopped: 1 },
  // No retiring host at all: each crash stops its host at once.
  { name: 'a cap of 0: a crash stops its host at once', cap: 0, crashes: 1, stopped: 1 },
])('$name', async ({ cap, crashes, stopped }) => {
  const client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR, maxRetiringHosts: cap });
  clients.push(client);
  const rounds: Awaited<ReturnType<typeof crashBesideWaitingCall>>[] = [];
  let mostRetiring = 0;
  for (let i = 0; i < crashes; i += 1) {
    rounds.push(await crashBesideWaitingCall(client));
    mostRetiring = Math.max(mostRetiring, client.stats.retiringHosts);
  }
  // Checked first: on a client without the cap the stopped hosts' calls would wait for the server.
  expect(mostRetiring).toBe(Math.min(cap, crashes));
  // The stopped hosts' calls are answered without the server answering them.
  const stoppedAnswers = await Promise.all(rounds.slice(0, stopped).map((r) => r.waiting));
  for (const round of rounds) if (!round.response().writableEnded) round.response().end('ok');
  const finished = await Promise.all(rounds.slice(stopped).map((r) => r.waiting));
  await until(() => client.stats.retiringHosts === 0, 'the retiring hosts ended');
  const next = await client.run(toolCall('return input + 1;', 41));
  expect({
    mostRetiring,
    stopped: stoppedAnswers.map((r) => ({ code: codeOf(r).split(':')[0], retryable: r.ok ? undefined : r.error.retryable === true, reachedNamed: !r.ok && /http/.test(r.error.message) })),
    finished: finished.map(codeOf),
    next: codeOf(next),
  }).toEqual({
    mostRetiring: Math.min(cap, crashes),
    stopped: stoppedAnswers.map(() => ({ code: 'ERR_SANDBOX_CRASHED', retryable: false, reachedNamed: true })),
    finished: finished.map(() => 'ok: 200'),
    next: 'ok: 42',
  });
}, 600_000);
