/**
 * Finding (worker start-up, worker/create-warden-worker.ts; present before e3f56f4 and kept by it):
 * when `Worker.create` fails after the SDK built the workflow threads, e.g. a namespace the server
 * does not have (`TEMPORAL_NAMESPACE=typo`), `warden run --worker` prints a raw
 * `warden: TransportError: Namespace ... was not found ...` (no Warden code) and then never exits:
 * @temporalio/worker 1.24.0's `Worker.create` creates the workflow creator (a pool of worker
 * threads) before `nativeWorkerCtor.create`, and on that call's failure closes only a connection
 * it made itself, never the thread pool (node_modules/@temporalio/worker/lib/worker.js,
 * `Worker.create`). Warden's own clean-up (host closed, lease released, connection closed, runtime
 * released) all ran; `process.getActiveResourcesInfo()` still lists the pool's MessagePort. Seen
 * by hand on the old code (20d4dbe) and the new: exit only by the shell's `timeout`. A CI job or a
 * script with a mistyped namespace hangs until killed; `warden worker` does the same.
 *
 * Fix: ask the server for the namespace (DescribeNamespace) before any Worker.create and fail
 * `ERR_TEMPORAL_...` naming it (exit 2, like other configuration errors); and end a CLI command's
 * process once its promise settled (or report the SDK bug upstream and destroy what it leaked).
 *
 * Real parts: the `warden` CLI as a child process, the test Temporal server reached as a cluster
 * (TEMPORAL_ADDRESS) under a namespace it does not have.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { collectOutput, exitOf, stopChildren, waitForOutput } from '../../support/child-output';
import { wardenProcessEnv } from '../../support/temporal';
import { REPO_ROOT } from '../../support/warden-test-env';

const dir = mkdtempSync(join(tmpdir(), 'warden-no-namespace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** After the failure is printed, a process that only has to exit gets this long (generous for a loaded 2-core machine). */
const EXIT_GRACE_MS = 60_000;

it('warden run under a namespace the server does not have fails with a Warden error and exits', async () => {
  cpSync(join(REPO_ROOT, 'examples', 'hello.yaml'), join(dir, 'hello.yaml'));
  cpSync(join(REPO_ROOT, 'examples', 'workspace'), join(dir, 'workspace'), { recursive: true });
  const namespace = 'warden-no-such-namespace';
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'run', '--worker', join(dir, 'hello.yaml')], {
    cwd: dir,
    env: wardenProcessEnv(join(dir, 'state'), { TEMPORAL_NAMESPACE: namespace }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = collectOutput(child);
  const exited = exitOf(child);
  let outcome: { code: number | null; signal: NodeJS.Signals | null } | 'still running';
  try {
    await waitForOutput(child, output, 'stderr', namespace).catch(() => undefined);
    outcome = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), EXIT_GRACE_MS))]);
  } finally {
    await stopChildren([child]);
  }
  expect({ outcome, stderr: output.stderr.slice(0, 300) }).toEqual({ outcome: { code: expect.any(Number), signal: null }, stderr: expect.stringMatching(/^warden run: ERR_[A-Z_]+: .*warden-no-such-namespace/m) });
}, 300_000);
