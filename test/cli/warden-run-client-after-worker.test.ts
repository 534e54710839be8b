/**
 * `warden run` with its own worker connects its Temporal client only once the worker has begun
 * creating its Temporal workers (issue 17): the client's connection is main-thread CPU that
 * otherwise ran while the worker parsed its bundle and spawned its workflow threads. The order is
 * read from the run's own phase notes (`WARDEN_TIMING=1`), not from times. Its Temporal workers
 * are then created and poll while the start request is in flight (they used to be created only
 * once the task existed). A worker that fails
 * before that point still lets the run end with the worker's error (the client is not left
 * waiting for a creation that never begins).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const BIN = join(REPO_ROOT, 'bin/warden.js');

function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const port = testTemporalAddress().address.split(':').pop()!;
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, WARDEN_TIMING: '1', ...extra };
  delete env.TEMPORAL_ADDRESS;
  return env;
}

async function warden(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env, maxBuffer: 16 * 1024 * 1024, timeout: 8 * 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The phase notes of a run's stderr, in order. */
const phases = (stderr: string) => stderr.split('\n').flatMap((line) => /^warden timing:\s+[\d.]+ ms {2}cpu\s+\d+ ms(?: \(main thread\s+\d+ ms\))? {2}(.*)$/.exec(line)?.[1] ?? []);

let taskFile: string;
beforeAll(async () => {
  taskFile = join(await mkdtemp(join(tmpdir(), 'warden-run-order-')), 'task.json');
  await writeFile(taskFile, JSON.stringify({ user: 'ann@example.com', intent: 'say done', agent: { name: 'quick', model: { driver: 'scripted', script: [{ final: 'done' }] } } }));
});

describe('warden run with its own worker', () => {
  it('connects its client after the worker began creating its Temporal workers, and completes', async () => {
    // --worker: a worker starts here whatever standalone workers other tests left running.
    const run = await warden(['run', taskFile, '--json', '--worker', '--task-queue', `warden-order-${randomUUID()}`], testEnv());
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ status: 'completed' });
    const seen = phases(run.stderr);
    const at = (phase: string) => seen.indexOf(phase);
    expect(at('worker: native connection ready'), seen.join(' | ')).toBeGreaterThanOrEqual(0);
    expect(at('run: client connecting'), seen.join(' | ')).toBeGreaterThan(at('worker: native connection ready'));
    expect(at('run: client connecting')).toBeLessThan(at('run: workflow started'));
    // Its Temporal workers are created (and poll) while the start request is in flight, not after
    // the task exists: the task's first workflow task finds a poller waiting.
    expect(at('run: worker created'), seen.join(' | ')).toBeGreaterThanOrEqual(0);
    expect(at('run: worker running'), seen.join(' | ')).toBeGreaterThan(at('run: worker created'));
    expect(at('run: worker running')).toBeLessThan(at('run: start requested'));
    expect(at('worker: Temporal workers created')).toBeGreaterThan(at('run: worker running'));
  }, 600_000);

  it('a worker failing before it creates anything still ends the run with its error', async () => {
    const run = await warden(['run', taskFile, '--json', '--worker', '--task-queue', `warden-order-${randomUUID()}`], testEnv({ WARDEN_WORKFLOW_STACK_TRACES: 'sometimes' }));
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('WARDEN_WORKFLOW_STACK_TRACES');
    expect(phases(run.stderr)).not.toContain('run: workflow started');
  }, 600_000);
});
