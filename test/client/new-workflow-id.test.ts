/**
 * A workflow id a user chooses for a new task may not have the form of an id Warden derives from
 * another task's. A sub-agent's id is `<parent>/<sub-agent>-<step>`, and the commands that read a
 * task tree read an id back by that form: `warden run --workflow-id wr/reader` was accepted, and
 * `warden rollback wr/reader` then rolled back task `wr` (the lookup falls back to the nearest
 * ancestor's records) and the custody summary counted it under `wr`. The same holds for `#`, the
 * separator of a tree's MCP session key (`<root>#<run>`).
 *
 * Now one rule (client/workflow-id.ts `newWorkflowIdProblem`) refuses such an id at every entry
 * point that starts a task under a chosen id, before anything starts: `warden run --workflow-id`
 * (exit 2) and `startAgentTask`'s `workflowId` (the library API), each with ERR_WORKFLOW_ID_INVALID
 * naming the id and why; and the worker refuses a root under such an id that a client started
 * itself, before any grant exists. Commands that only read a task keep taking sub-agents' ids.
 *
 * Real parts: the test Temporal server and worker, a task that commits a file and spawns a
 * sub-agent, the real commands.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { main } from '../../cli/main';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { newWorkflowIdProblem, workflowIdProblem } from '../../client/workflow-id';
import { WardenError } from '../../errors';
import { parseTask } from '../../task/load-task-file';
import type { agentTask } from '../../workflows/agent-task';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** [id, why it is refused for a new task (a pattern of the message), or null when it is taken]. */
const NEW_IDS: [string, RegExp | null][] = [
  ['warden-scribe-0b6c7a43-1d0e-4a55-9a53-2f1c7cf0b6d1', null],
  ['wr', null],
  ['job:42', null], // keys that end in a fixed form (`<id>:<run>:<step>:<digest>`) are read from the right
  ['nightly.report_v2-final', null],
  ['Ünïcode ids are fine', null],
  ['wr/reader', /^the workflow id "wr\/reader" holds "\/" \(at character 3\), which Warden puts in a sub-agent's workflow id \(<parent>\/<sub-agent>-<step>\)/],
  ['wr/reader-1', /holds "\/" \(at character 3\)/],
  ['/leading', /holds "\/" \(at character 1\)/],
  ['trailing/', /holds "\/" \(at character 9\)/],
  ['wr#run', /^the workflow id "wr#run" holds "#" \(at character 3\), which Warden puts in the key of a task tree's MCP sessions \(<root>#<run>\)/],
  ['', /^the workflow id is empty$/],
  ['x'.repeat(1_001), /^the workflow id has 1001 characters/],
  ['a\nforged', /^the workflow id holds a control character \(U\+000A at character 2\)$/],
];

describe('the rule for a new task\'s workflow id (client/workflow-id.ts)', () => {
  it.each(NEW_IDS)('%j: %s', (id, refused) => {
    const problem = newWorkflowIdProblem(id);
    if (refused === null) expect(problem).toBeUndefined();
    else expect(problem).toMatch(refused);
  });

  it.each(NEW_IDS.filter(([id]) => /[/#]/.test(id)))('%j is still a workflow id a command that reads a task takes', (id) => {
    expect(workflowIdProblem(id)).toBeUndefined();
  });

  it('a refusal names every separator a new id may not hold', () => {
    expect(newWorkflowIdProblem('a/b')).toContain('holds none of "/", "#"');
  });
});

let env: WardenTestEnv;
let workspace: string;
/** A task that committed a file and spawned sub-agent `reviewer` at step 1. */
const root = `wr-${randomUUID()}`;

beforeAll(async () => {
  env = await startWardenTestEnv();
  workspace = mkdtempSync(join(tmpdir(), 'warden-new-workflow-id-'));
  writeFileSync(join(workspace, 'notes.txt'), 'keep me\n');
  const result = await env.runTask(
    {
      user: 'alice@example.com',
      intent: 'write a file and have it looked at',
      agent: { name: 'writer', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'made.txt', content: 'new' } }, { spawn: 'reviewer', intent: 'look' }, { final: 'wrote' }] } },
      tools: { builtin: ['fs.write', 'fs.list'] },
      grants: { tools: ['fs.write', 'fs.list'], subagents: ['reviewer'] },
      resources: { workspace },
      subagents: {
        reviewer: {
          intent: 'look at the workspace',
          agent: { name: 'reviewer', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: { path: '.' } }, { final: 'looked' }] } },
          tools: { builtin: ['fs.list'] },
          grants: { tools: ['fs.list'] },
        },
      },
    },
    { workflowId: root },
  );
  expect(result.status).toBe('completed');
  expect(result.children.map((c) => c.workflowId)).toEqual([`${root}/reviewer-1`]);
}, 300_000);
afterAll(async () => env?.close());

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const io: CliIo = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop()! } };
  const code = await main(argv, io);
  return { code, ...out };
}

/** Ids a new task may not take, each of the form of one Warden derives from the task above. */
const COLLIDING = () => [`${root}/reader`, `${root}/reviewer-1`, `${root}#${randomUUID()}`];

/** Every entry point that starts a task under an id the user chose: [name, starts it or throws]. */
const ENTRY_POINTS: [string, (id: string) => Promise<{ code: string; message: string }>][] = [
  [
    'warden run --workflow-id',
    async (id) => {
      const { code, stdout, stderr } = await cli(['run', join(REPO_ROOT, 'examples', 'hello.yaml'), '--workflow-id', id]);
      expect(code, stderr).toBe(2);
      expect(stdout).toBe('');
      const [, errorCode, message] = /^warden run: (ERR_[A-Z_]+): (.*)$/.exec(stderr.split('\n')[0]!) ?? [];
      return { code: errorCode!, message: message! };
    },
  ],
  [
    'startAgentTask({ workflowId })',
    async (id) => {
      const task = parseTask({ user: 'alice@example.com', intent: 'read', agent: { name: 'reader', model: { driver: 'scripted', script: [{ final: 'read' }] } } }, 'task.yaml', REPO_ROOT);
      const error = await startAgentTask(env.client, task, { taskQueue: env.taskQueue, workflowId: id }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(WardenError);
      return error as WardenError;
    },
  ],
];

describe.each(ENTRY_POINTS)('%s', (_name, start) => {
  it('refuses an id of the form of another task\'s derived id: ERR_WORKFLOW_ID_INVALID naming it, and nothing starts', async () => {
    for (const id of COLLIDING()) {
      const refused = await start(id);
      expect(refused.code).toBe('ERR_WORKFLOW_ID_INVALID');
      expect(refused.message).toContain(JSON.stringify(id));
      expect(refused.message).toMatch(/holds "[/#]" \(at character \d+\), which Warden puts in /);
      // Nothing started under it: no workflow, or (the sub-agent's own id) still only the sub-agent, its parent's child.
      if (id === `${root}/reviewer-1`) expect((await env.client.workflow.getHandle(id).describe()).parentExecution?.workflowId).toBe(root);
      else await expect(env.client.workflow.getHandle(id).describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
    }
  });
});

// A client that starts `agentTask` itself passes neither check above: the worker refuses such a
// root before any grant exists (activities/task-identity.ts assertRootWorkflowIdChoosable), on the
// original loop (beginTask) and on the data flow (placeTask), and no tool runs.
describe.each([
  ['the original loop', false],
  ['the data flow', true],
])('a client that starts agentTask itself under such an id, on %s', (_loop, dataFlow) => {
  it('is refused by the worker with ERR_WORKFLOW_ID_INVALID before any step runs', async () => {
    const id = `${root}/reader-${dataFlow ? 'flow' : 'loop'}`;
    env.workflowIds.push(id);
    const task = parseTask(
      {
        user: 'mallory@example.com',
        intent: 'write into the other task',
        agent: { name: 'reader', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'planted.txt', content: 'x' } }, { final: 'done' }] } },
        tools: { builtin: ['fs.write'] },
        grants: { tools: ['fs.write'] },
        resources: { workspace },
        ...(dataFlow ? { dataFlow: true } : {}),
      },
      'task.yaml',
      REPO_ROOT,
    );
    const handle = await env.client.workflow.start<typeof agentTask>('agentTask', { taskQueue: env.taskQueue, workflowId: id, args: [{ task }] });
    const result = await followAgentTask(handle);
    expect(result.status).not.toBe('completed');
    expect(result.reason ?? '').toContain(`ERR_WORKFLOW_ID_INVALID`);
    expect(result.reason ?? '').toContain(JSON.stringify(id));
    expect(result.steps.filter((step) => step.executed)).toEqual([]);
    expect(existsSync(join(workspace, 'planted.txt'))).toBe(false);
  });
});

describe('commands that read a task still take a sub-agent\'s id', () => {
  it('warden status of the sub-agent', async () => {
    const { code, stdout, stderr } = await cli(['status', `${root}/reviewer-1`, '--json']);
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ workflowId: `${root}/reviewer-1`, status: 'completed' });
  });

  it.each([['snapshots'], ['rollback']])('warden %s of the sub-agent reads its task tree\'s records', async (command) => {
    const { code, stdout, stderr } = await cli([command!, `${root}/reviewer-1`, '--json']);
    expect(code, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ taskKey: expect.stringContaining(root) });
  });
});
