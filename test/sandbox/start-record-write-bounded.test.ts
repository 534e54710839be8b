/**
 * Regression test, was the open finding `stalled-start-record-kills-shared-host` (s16, atk16). Fixed (s16): the host bounds the record write by the call's deadline and cancel (`recordStart` in sandbox/run-in-isolate.ts) and answers ERR_SANDBOX_TIMEOUT / ERR_TOOL_CANCELLED without running the tool, and with no record linked after it; the client has no reason to kill the host.
 *
 * The finding as reported:
 * Severity: low (needs the recovery folder's file system to stall; then calls of other tasks,
 * including ones whose tools write no start record, fail ERR_SANDBOX_CRASHED after they reached
 * the network).
 *
 * Attack: a call's start record is now written by the shared sandbox host (`recordStart` in
 * sandbox/run-in-isolate.ts), in the recovery folder, usually WARDEN_SHARED_DIR on a network file
 * system. That write is awaited with nothing bounding it: the call's wall clock is armed only
 * after it, and a cancel is looked at only once it returned. When the folder stalls (an NFS hard
 * mount while its server is away, a long fsync under writeback pressure), the call neither times
 * out nor stops in the host, so the client's own bounds take the whole host down: at the call's
 * deadline (`#onDeadline`, timeout + grace) or when a cancel is not obeyed within the cancel
 * grace (`#onCancelGrace`), the host is SIGKILLed and every other call on it is answered as a lost
 * host's. Here another task's payment that the server received is answered ERR_SANDBOX_CRASHED,
 * not retryable. A FIFO at the record's path stands in for the stalled folder (opening it blocks
 * until a writer comes, as an open or fsync on a hung mount does).
 *
 * Why it works: before this branch the activity wrote the record in the worker, before the call
 * was sent; a stalled write held that one activity (its own start-to-close / heartbeat timeout
 * ended it) and no sandbox host saw anything. Moving the write into the host moved a wait on
 * shared storage into the process every task's calls share, unbounded by the per-call bounds that
 * the host enforces for everything else.
 *
 * Suggested fix: bound the record write by the call's own deadline and cancel signal in the host
 * (race `recordStart` against the wall clock and `cancel`, answer ERR_SANDBOX_TIMEOUT or
 * ERR_TOOL_CANCELLED and give the isolate back without running the tool; a record that lands
 * later only says "may have run", the documented safe reading), so the client never has a reason
 * to kill the host for it.
 *
 * Real parts: a real sandbox host (SandboxClient), real isolates, a loopback HTTP server, a real
 * FIFO in a temporary folder.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { SandboxRunResponse } from '../../sandbox/sandbox-messages';
import { until } from '../support/run-tool-watch';
import { codeOf, makeTempDir, startHoldingServer, toolCall, type HoldingServer } from './sandbox-test-kit';

const FAR = 600_000;

let server: HoldingServer;
const clients: SandboxClient[] = [];

beforeAll(async () => {
  server = await startHoldingServer();
}, 120_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await server?.close();
});

interface Row {
  name: string;
  /** The stalled call's timeout (ms) and how it ends. */
  timeoutMs: number;
  cancel: boolean;
  /** What the stalled call is answered. */
  stalled: string;
}

const ROWS: Row[] = [
  // The stalled call reaches its deadline: the host answers it (the old code: the client killed the host at timeout + grace).
  { name: 'the stalled call reaches its deadline', timeoutMs: 1000, cancel: false, stalled: 'ERR_SANDBOX_TIMEOUT' },
  // The stalled call is cancelled (its task was): the host does not stop it, the client kills the host.
  { name: 'the stalled call is cancelled', timeoutMs: FAR, cancel: true, stalled: 'ERR_TOOL_CANCELLED' },
];

it.each(ROWS.map((row) => [row.name, row] as const))("%s: another task's payment on the host still finishes", async (_name, row) => {
  // Graces far past what the host needs on a loaded machine: a kill here must mean the host did not
  // answer by itself (the old code's fault, still shown, later), not that the machine was slow.
  const client = await SandboxClient.start({ deadlineGraceMs: 30_000, cancelGraceMs: 30_000 });
  clients.push(client);
  const folder = makeTempDir('stalled-start-record');
  // The record's path on a folder that does not answer.
  const record = path.join(folder, 'call-starts', 'task-a', 'record');
  execFileSync('mkdir', ['-p', path.dirname(record)]);
  execFileSync('mkfifo', [record]);

  // The victim: another task's payment, received by the server, its answer still to come.
  const { held } = server;
  const before = held.length;
  const url = `http://127.0.0.1:${server.port}/pay`;
  const victim: Promise<SandboxRunResponse> = client.run(
    toolCall("return (await warden.http.fetch(input, { method: 'POST', body: 'pay 100' })).status;", url, { http: { allowedHosts: [`127.0.0.1:${server.port}`] } }, { timeoutMs: FAR }),
  );
  await until(() => held.length > before, "the victim's payment reached the server", { "the victim's payment": victim });

  // A call of a tool with a compensating tool, whose start record is to be written on the stalled folder.
  const controller = new AbortController();
  const stalled = client.run({ ...toolCall('return 1;', null, {}, { timeoutMs: row.timeoutMs }), startRecord: { file: record, callId: 'task-a:0' } }, { signal: controller.signal });
  if (row.cancel) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort();
  }
  const stalledAnswer = await stalled;
  // The payment server answers the victim's payment a moment later.
  await new Promise((resolve) => setTimeout(resolve, 500));
  held[before]!.end('ok');
  const answer = await victim;
  expect({ stalled: codeOf(stalledAnswer), victim: codeOf(answer), victimMessage: answer.ok ? undefined : answer.error.message.slice(0, 120), hostKills: client.stats.deadlineKills + client.stats.cancelKills }).toEqual({
    stalled: row.stalled,
    victim: 'ok: 200',
    victimMessage: undefined,
    hostKills: 0,
  });
}, 120_000);
