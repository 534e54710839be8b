/**
 * Regression (issue 17; was test/attacks/open/): under a namespace the server does not have
 * (`TEMPORAL_NAMESPACE=typo`), `warden run --worker` and `warden worker` printed a raw
 * `warden: TransportError: Namespace ... was not found ...` (no Warden code) and then never
 * exited: @temporalio/worker 1.24.0's `Worker.create` builds the workflow creator (a pool of
 * worker threads) before `nativeWorkerCtor.create`, and on that call's failure never destroys the
 * pool (node_modules/@temporalio/worker/lib/worker.js, `Worker.create`); its MessagePort kept the
 * process alive. `warden run --no-worker` failed at the start with the SDK's bare gRPC error.
 *
 * Now every worker connection asks the server for the namespace before any Worker.create
 * (`connectWorkerConnection` → `checkNamespace`, temporal/connect.ts) and `run`'s client does too,
 * failing `ERR_TEMPORAL_NAMESPACE_NOT_FOUND` naming the namespace and the server, exit 2 (a
 * configuration error, like a bad task file); and bin/warden.js ends the process a grace after its
 * command returned if a library left a handle open.
 *
 * Real parts: the `warden` CLI as a child process, the test Temporal server reached as a cluster
 * (TEMPORAL_ADDRESS) under a namespace it does not have.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { collectOutput, exitOf, stopChildren, waitForOutput } from '../support/child-output';
import { testTemporalConfig, wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

const dir = mkdtempSync(join(tmpdir(), 'warden-no-namespace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
cpSync(join(REPO_ROOT, 'examples', 'hello.yaml'), join(dir, 'hello.yaml'));
cpSync(join(REPO_ROOT, 'examples', 'workspace'), join(dir, 'workspace'), { recursive: true });

/** After the failure is printed, a process that only has to exit gets this long (generous for a loaded 2-core machine). */
const EXIT_GRACE_MS = 60_000;

it.each([
  // Its own worker: Worker.create was refused the namespace and leaked its workflow threads.
  ['run --worker', 'run', ['run', '--worker', 'hello.yaml']],
  // A client only: the start was refused with the SDK's bare gRPC error.
  ['run --no-worker', 'run', ['run', '--no-worker', 'hello.yaml']],
  ['worker', 'worker', ['worker', '--task-queue', 'warden-no-namespace']],
] as const)('warden %s under a namespace the server does not have fails typed, exit 2, and exits', async (_name, command, argv) => {
  const namespace = 'warden-no-such-namespace';
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), ...argv], {
    cwd: dir,
    env: wardenProcessEnv(join(dir, `state-${command}`), { TEMPORAL_NAMESPACE: namespace }),
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
  const { address } = testTemporalConfig();
  expect({ outcome, stderr: output.stderr }).toEqual({
    outcome: { code: 2, signal: null },
    stderr: expect.stringMatching(new RegExp(`^warden ${command}: ERR_TEMPORAL_NAMESPACE_NOT_FOUND: the Temporal server at ${address.replace(/[.]/g, '\\.')} has no namespace "${namespace}"`, 'm')),
  });
  // Nothing of the SDK's own wording reaches the user.
  expect(output.stderr).not.toMatch(/TransportError|ServiceError/);
}, 300_000);
