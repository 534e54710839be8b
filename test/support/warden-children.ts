/**
 * `warden` commands as child processes of a test on the test Temporal server, with their own
 * state folder and a bare environment, and a wait until the server lists a process as a poller:
 * for the tests of ended workers (test/worker/ended-genuine-workers-not-named.test.ts,
 * test/worker/copied-ended-worker-identity-named.test.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { recentPollers } from '../../cli/temporal-client';
import { connectClient } from '../../temporal/connect';
import { testTemporalAddress, testTemporalConfig } from './temporal';
import { REPO_ROOT } from './warden-test-env';

export interface WardenChild {
  child: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Starts `warden <args>` in `cwd` on `stateDir`, its stderr collected; each child is pushed to `children` (the caller kills those left). */
export function spawnWarden(args: string[], stateDir: string, cwd: string, children: ChildProcess[]): WardenChild {
  const port = testTemporalAddress().address.split(':').pop()!;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), ...args], {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: port },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, stderr: () => stderr, exited };
}

/** Resolves once the server lists a workflow poller of process `pid` on `queue`. */
export async function untilPolling(queue: string, pid: number): Promise<void> {
  const { client, connection } = await connectClient(testTemporalConfig());
  try {
    for (;;) {
      if ((await recentPollers(client, queue)).some((identity) => identity.includes(`${pid}@`))) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await connection.close();
  }
}
