/**
 * Attack: a task whose workspace is the worker's own `/proc/<pid>` folder (`/proc/self` resolves
 * to it when the worker checks the task). Nothing there is a link out of the folder, so the fs
 * capability serves `environ`: the worker's whole environment, which in a deployment holds
 * `WARDEN_DATABASE_URL` (the shared state's password), model API keys and cloud credentials.
 *
 * Expected: Warden refuses a workspace (or database) under `/proc` (and other kernel file
 * systems) like its own state folder: ERR_RESOURCE_PROTECTED before anything runs.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let result: TaskResult;
/** One line of this process's environment block, as the kernel shows it. */
const marker = readFileSync('/proc/self/environ', 'utf8').split('\0').find((line) => line.startsWith('PATH='))!;

beforeAll(async () => {
  env = await startWardenTestEnv();
  result = await env.runTask({
    user: 'mallory@example.com',
    intent: 'read the settings',
    agent: { name: 'reader', model: { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'environ' } }, { final: 'done' }] } },
    tools: { builtin: ['fs.read'] },
    grants: { tools: ['fs.read'] },
    limits: { onDeny: 'continue' },
    // The worker runs in this process: /proc/self is its folder.
    resources: { workspace: '/proc/self' },
  });
});
afterAll(async () => env?.close());

describe("the worker's /proc folder as a workspace", () => {
  it('is refused before anything runs', () => {
    expect(result.reason ?? `status ${result.status}`).toMatch(/ERR_RESOURCE_PROTECTED/);
  });

  it("never hands the worker's environment to the agent", () => {
    // A boolean, so a failure does not print the environment.
    expect(JSON.stringify(result).includes(marker) ? 'the environment reached the result' : 'absent').toBe('absent');
  });
});
