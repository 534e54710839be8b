/**
 * Open finding (s14, atk14; sqlproc), medium: a call lost with its sandbox host is answered
 * ERR_SANDBOX_CRASHED *retryable* ("the call had reached no capability, so nothing of it happened
 * and it may be run again") although its capability had taken effect, when the host's notice that
 * it reached the capability (SandboxReachedNotice) was still queued in the host when the host died.
 * Its activity then runs the call again: a payment, a file write or a SQL change made twice.
 *
 * The host tells the client each capability a call reaches "before that use goes ahead"
 * (`reach` in sandbox/run-in-isolate.ts, `send` in sandbox-host.ts), but only in the order of its
 * IPC writes: `process.send` queues the notice and the use goes ahead at once, without waiting
 * for the notice to leave the host. When the IPC socket is full (the worker's event loop is busy
 * while the host answers other calls with large outputs, up to 1 MB each), the notice waits in the
 * host's write queue behind those answers; the host is lost (a crash, or the client killing it for
 * another call's overrun or cancel), the queue with it, and `lostWithHost`
 * (sandbox/sandbox-client.ts) finds the call's `reached` set empty.
 *
 * A second way to the same answer: the client answers a lost host's calls on its `exit` event,
 * which Node may emit before the messages already in the IPC socket are read (`exit` is not
 * `close`); without the large answers below, a notice written well before the kill was still
 * unread at `exit` in 2 of 5 runs (the notice was in the socket, the test not reading meanwhile).
 *
 * Here, deterministically (4 of 4 runs): three calls answer ~900 KB each while the test (the worker's side)
 * does not read; a fourth call writes `paid.txt` through fs.write and then computes; once the file
 * exists the host is killed, and the fourth call is answered retryable. The same holds for
 * http.fetch and sql.exec (each `reach`es the same way).
 *
 * Fix: a use must not go ahead before its notice has left the host (await the send's callback:
 * the SQL Reference and http.fetch are asynchronous already; the synchronous fs callbacks need a
 * synchronous write, e.g. a dedicated pipe), and the client must answer a lost host's calls only
 * once it has read everything the host wrote (its IPC channel closed, `close`/`disconnect`, not
 * `exit`).
 *
 * Real parts: the sandbox host process, real IPC, a real file written by the fs capability.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../../sandbox/sandbox-messages';
import { codeOf, makeTempDir, toolCall } from '../../sandbox/sandbox-test-kit';

/** Far out: only the test's own kill ends the host. */
const FAR = 600_000;
let client: SandboxClient;
let folder: string;

beforeAll(async () => {
  folder = makeTempDir('reached-notice');
  client = await SandboxClient.start({ cancelGraceMs: FAR, deadlineGraceMs: FAR });
  // The host has booted and answered (its first SQL process ready).
  expect(codeOf(await client.run(toolCall('return 1;')))).toBe('ok: 1');
});

afterAll(async () => {
  await client?.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

/** Blocks this thread (the worker's side: no IPC is read meanwhile) until `done` or 60 s. */
function spinUntil(done: () => boolean): boolean {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if (done()) return true;
    Atomics.wait(pause, 0, 0, 5);
  }
  return done();
}

it('a call whose fs.write took effect is not answered retryable when its host is lost', async () => {
  const root = fs.mkdtempSync(path.join(folder, 'ws-'));
  const grant: CapabilityGrant = { fs: { root, read: false, write: true, list: false } };
  const big = [1, 2, 3].map(() => client.run(toolCall("return 'x'.repeat(900000);", null, {}, { timeoutMs: FAR })));
  // Computes a moment (the large answers go out first), pays, then keeps computing until the host is lost.
  const paying = client.run(toolCall("const s = Date.now(); while (Date.now() - s < 1000) {} warden.fs.write('paid.txt', 'pay 100 to bob'); for (;;) {}", null, grant, { timeoutMs: FAR }));
  const pid = client.pid!;
  const paid = path.join(root, 'paid.txt');
  expect(spinUntil(() => fs.existsSync(paid))).toBe(true);
  process.kill(pid, 'SIGKILL');
  const response = await paying;
  await Promise.all(big);
  expect(fs.readFileSync(paid, 'utf8')).toBe('pay 100 to bob');
  // The write happened: the answer must not say nothing happened.
  expect(response).toMatchObject({ ok: false, error: { code: 'ERR_SANDBOX_CRASHED' } });
  expect({ retryable: response.ok ? undefined : response.error.retryable, message: response.ok ? '' : response.error.message }).toEqual({
    retryable: undefined,
    message: expect.stringContaining('fs.write'),
  });
}, 180_000);
