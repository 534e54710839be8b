/**
 * `warden run` on a fleet whose workers keep blobs in the shared database (`WARDEN_DATABASE_URL`,
 * PostgreSQL table `warden_blobs`): a real `warden worker` process and a `warden run` client, each
 * with its own state folder, on one Temporal server and one database. A tool output over 16 KiB is
 * claim-checked into that table; the client must read it back from the same place. It used to
 * open the shared FOLDER only and print `ERR_BLOB_MISSING: blob … is not in <folder>/blobs` with
 * exit 1, although the task had completed. Here the client's shared folder is empty
 * (WARDEN_SHARED_DIR names a fresh folder): the run must print the whole 100 KB output and exit 0. The client opens blobs through
 * openDeploymentBlobStore, the factory `warden trace` uses too; it is checked on its own below,
 * including the message when a blob is really missing (it names where it looked).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDeploymentBlobStore } from '../../dataplane/open-deployment-blob-store';
import { containsClaimCheck } from '../../task/data-refs';
import type { TaskResult } from '../../task/task-run';
import { stopChildren } from '../support/child-output';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const exec = promisify(execFile);
const OUTPUT_CHARS = 100 * 1024;
let pg: TestDatabase;
const dirs: string[] = [];
const children: ChildProcess[] = [];
let workerLog = '';
const taskQueue = `warden-run-db-${randomUUID()}`;

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

function stateDirWithCache(prefix: string): string {
  const stateDir = tempDir(prefix);
  // Reuses the test run's workflow bundle cache instead of building its own.
  mkdirSync(join(TEST_STATE_DIR, 'cache'), { recursive: true });
  symlinkSync(join(TEST_STATE_DIR, 'cache'), join(stateDir, 'cache'));
  return stateDir;
}

/** A `warden worker` on `taskQueue` with the shared database; resolves once it polls. */
async function startWorker(): Promise<void> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'worker', '--task-queue', taskQueue], {
    env: wardenProcessEnv(stateDirWithCache('warden-run-db-worker-'), { WARDEN_DATABASE_URL: pg.url }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const collect = (chunk: Buffer) => {
      log += chunk.toString();
      workerLog = log;
      // Ready once both workers poll: the task queue's, and the data plane's (`<queue>@<id>`).
      if (log.includes('worker polling') && log.includes('data-plane worker polling')) resolve();
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.on('exit', (code) => reject(new Error(`worker exited ${code}:\n${log}`)));
  });
}

beforeAll(async () => {
  pg = await createTestDatabase();
  await startWorker();
}, 300_000);
afterAll(async () => {
  await stopChildren(children);
  await pg?.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function taskYaml(): string {
  return `user: alice@example.com
intent: Produce a large report.
agent:
  name: reporter
  model:
    driver: scripted
    script:
      - tool: big
        args: {}
      - final: done
tools:
  custom:
    - name: big
      description: 100 KB of output
      input: { type: object }
      source: |
        return 'y'.repeat(${OUTPUT_CHARS - 3}) + 'end';
grants:
  tools: [big]
limits:
  maxSteps: 5
  deadline: 5m
`;
}

async function wardenRun(env: NodeJS.ProcessEnv, file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'run', file, '--json', '--task-queue', taskQueue], { cwd: REPO_ROOT, env, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('warden run with WARDEN_DATABASE_URL', () => {
  it('prints a claim-checked 100 KB output from warden_blobs and exits 0, with an empty shared folder', async () => {
    const stateDir = stateDirWithCache('warden-run-db-client-');
    const shared = tempDir('warden-run-db-shared-');
    const taskDir = tempDir('warden-run-db-task-');
    const file = join(taskDir, 'big.yaml');
    writeFileSync(file, taskYaml());

    const { code, stdout, stderr } = await wardenRun(wardenProcessEnv(stateDir, { WARDEN_DATABASE_URL: pg.url, WARDEN_SHARED_DIR: shared }), file);
    expect(stderr).not.toContain('ERR_BLOB_MISSING');
    expect(code, stderr).toBe(0);
    const result = JSON.parse(stdout) as TaskResult;
    expect(result.status).toBe('completed');
    const output = JSON.stringify(result.steps[0]?.output);
    expect(output).toContain(`${'y'.repeat(64)}`);
    expect(output).toContain('end');
    expect(output.length).toBeGreaterThan(OUTPUT_CHARS);
    expect(containsClaimCheck(result.steps)).toBe(false);
    // The blob went to the database, not the folder (so the folder could not have served it).
    expect(readdirSync(shared).filter((name) => name === 'blobs')).toEqual([]);
    const rows = await pg.db.all<{ n: string | number }>('SELECT count(*) AS n FROM warden_blobs');
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
  }, 600_000);

  it("logs the data-plane worker's activities-only polling as one INFO line, not the SDK's WARN", () => {
    expect(workerLog).not.toContain('No workflows registered');
    expect(workerLog).toMatch(/\[INFO\] data-plane worker polling \S+@\S+ \(activities of the tasks this worker holds; no workflows by design\)/);
  });

  it.each([
    ['the shared database', true, /not in the state database .*warden_blobs.*WARDEN_DATABASE_URL/],
    ['the shared folder', false, /not in the shared folder .*blobs \(looked in the folder: WARDEN_SHARED_DIR/],
  ] as const)('reads blobs from %s, and a missing blob names where it looked', async (_where, useDatabase, missing) => {
    const stateDir = tempDir('warden-blobs-state-');
    const env: NodeJS.ProcessEnv = useDatabase ? { WARDEN_DATABASE_URL: pg.url } : { WARDEN_SHARED_DIR: tempDir('warden-blobs-shared-') };
    const writer = await openDeploymentBlobStore(env, stateDir);
    const reader = await openDeploymentBlobStore(env, tempDir('warden-blobs-other-state-'));
    try {
      const { sha256 } = await writer.blobs.put(`blob of ${_where}`);
      // Another client on the same deployment (another state folder) reads the same blob.
      expect((await reader.blobs.get(sha256)).toString()).toBe(`blob of ${_where}`);
      await expect(reader.blobs.get('f'.repeat(64))).rejects.toMatchObject({ code: 'ERR_BLOB_MISSING', message: expect.stringMatching(missing) });
    } finally {
      await writer.close();
      await reader.close();
    }
  }, 120_000);
});
