/**
 * Regression test, was the open finding `cancelled-call-recorded-started` (s16, atk16). Fixed (s16): `markCallStarted` takes the call's signal and checks it right before the record is linked into place (recovery/call-starts.ts): a call cancelled before its record exists leaves none, and its compensation fences it off.
 *
 * The finding as reported:
 * Severity: low (the harm of the fixed `start-record-before-host-refusal`: a compensating tool runs
 * for an effect never made; here for a call that was cancelled before its record was written).
 *
 * Attack: the sandbox host writes a call's start record (`recordStart`, sandbox/run-in-isolate.ts)
 * without looking at the call's cancel signal while it does: a cancel that arrives while the write
 * waits does not stop it, the record is linked into place `started`, and only then does the host
 * see the cancel and answer ERR_TOOL_CANCELLED without running the tool. The call's compensation
 * (the task was cancelled: the call is in doubt) then finds `started` and runs `release` for a
 * `reserve` that never ran. The comment there calls a record written "the safe reading", but it is
 * written after the cancel arrived, and the fenced/never-started distinction is the whole point of
 * the record. The wait is easy to stretch: the host's file-system calls share libuv's four
 * threadpool threads, so four other calls whose records sit on a stalled folder (any task's, on a
 * hung mount; here FIFOs, whose open blocks until a writer comes) queue this call's write for as
 * long as the stall lasts, and a cancel then always lands inside it.
 *
 * Why it works: `markCallStarted` has no point of no return it checks: the link that makes the
 * record is done whatever happened to the call meanwhile. Not a regression: on main the activity's
 * own write ignored a cancel the same way (the call was then refused "cancelled before it was
 * sent" with `started` on disk); this branch moved the write but kept the gap, and its comment
 * ("a record written stays: may have run is the safe reading") accepts it.
 *
 * Suggested fix: pass the call's cancel signal to `markCallStarted` and check it right before the
 * `link` (and after each await before it): a call cancelled before its record exists leaves none,
 * so its compensation fences it `never`; after the link, the call goes on to the isolate, where the
 * cancel stops it as any started call.
 *
 * Real parts: a real sandbox host (SandboxClient) and isolates, real FIFOs and record files in a
 * temporary folder, a loopback HTTP server that would see the tool's request.
 */
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readCallStart } from '../../recovery/call-starts';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { codeOf, makeTempDir, startLoopbackServer, toolCall, type LoopbackServer } from '../sandbox/sandbox-test-kit';

const FAR = 600_000;
/** libuv's default threadpool size: the host's asynchronous file-system calls share these threads. */
const THREADPOOL = 4;

let server: LoopbackServer;
let client: SandboxClient;

beforeAll(async () => {
  server = await startLoopbackServer((_req, res) => res.end('reserved'));
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await server?.close();
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('a call cancelled while its start record waits leaves no record, and its tool never runs', async () => {
  const folder = makeTempDir('cancelled-start-record');
  // Other calls whose records sit on a stalled folder: each holds one threadpool thread.
  const fifos = Array.from({ length: THREADPOOL }, (_, i) => path.join(folder, 'stalled', `task-${i}`, 'record'));
  const stalled: Promise<SandboxRunResponse>[] = [];
  for (const [i, fifo] of fifos.entries()) {
    execFileSync('mkdir', ['-p', path.dirname(fifo)]);
    execFileSync('mkfifo', [fifo]);
    stalled.push(client.run({ ...toolCall('return 1;', null, {}, { timeoutMs: FAR }), startRecord: { file: fifo, callId: `task-${i}:0` } }));
  }
  await pause(1000);

  // The call: `reserve` with a compensating tool; its code would POST to the server.
  const record = path.join(folder, 'call-starts', 'task-victim', 'record');
  const controller = new AbortController();
  const url = `http://127.0.0.1:${server.port}/reserve`;
  const call = client.run(
    { ...toolCall("return (await warden.http.fetch(input, { method: 'POST', body: 'tea 1' })).status;", url, { http: { allowedHosts: [`127.0.0.1:${server.port}`] } }, { timeoutMs: FAR }), startRecord: { file: record, callId: 'task-victim:0' } },
    { signal: controller.signal },
  );
  await pause(500);
  // The task is cancelled while the call's record waits.
  controller.abort();
  await pause(500);
  // The stall ends (the folder answers again).
  for (const fifo of fifos) {
    const fd = fs.openSync(fifo, 'w');
    fs.writeSync(fd, `${JSON.stringify({ state: 'never', callId: 'x', at: new Date().toISOString() })}\n`);
    fs.closeSync(fd);
  }
  const answer = await call;
  await Promise.all(stalled);
  // The tool never ran (the server saw nothing) and the call was answered cancelled: its
  // compensation must find no start (it fences `never` and runs no `release`).
  expect({ answer: codeOf(answer), serverSaw: [...server.hits], record: await readCallStart(record) }).toEqual({ answer: 'ERR_TOOL_CANCELLED', serverSaw: [], record: undefined });
}, 120_000);
