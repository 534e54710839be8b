/**
 * The `warden` command line follows the conventions of gh, kubectl and temporal: `--version`,
 * a one-line-per-command `--help`, `<cmd> --help`, `--json` on every read command, clear errors
 * for bad options (exit 2), read-only commands that never start a server, list/status/logs/cancel,
 * `policy test` failing when a decision changes, `replay --file` reading Temporal's own JSON, a
 * clean Ctrl-C, and `run` saying when no worker polls its queue.
 */
import { execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { packsAndRuns } from '../../cli/commands/policy-test';
import { sentencesOf } from '../../cli/commands/policy';
import { main, overview } from '../../cli/main';
import { parseCommandArgs } from '../../cli/parse-command-args';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { agentTaskResult } from '../../client/start-agent-task';
import { isPortInUse } from '../../temporal/embedded-server';
import { findOrBuildTemporalCli } from '../../temporal/temporal-cli';
import { taskStateQuery } from '../../workflows/definitions';
import { collectOutput, exitOf, waitForOutput } from '../support/child-output';
import { testTemporalAddress } from '../support/temporal';
import { registeredApprover } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { freePort } from '../temporal/ports';

const BIN = join(REPO_ROOT, 'bin/warden.js');

/** Every command `warden --help` lists. */
const COMMANDS = ['run', 'list', 'status', 'logs', 'cancel', 'worker', 'mcp', 'approvals', 'approve', 'deny', 'policy', 'keys', 'credentials', 'approvers', 'snapshots', 'rollback', 'audit', 'trace', 'replay', 'attest', 'receipt', 'server', 'db', 'alerts', 'kill', 'baseline'];

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const port = testTemporalAddress().address.split(':').pop()!;
  return { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, WARDEN_APPROVER: 'ops', ...extra };
}

async function cli(argv: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: testEnv(extraEnv) };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

describe('help and version', () => {
  it('--version prints the package version (the installed CLI, as a process)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, '--version']);
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(stdout).toBe(`warden ${version}\n`);
  });

  it.each([[['--version', '--json']], [['--json', '--version']], [['-V', '--json']]])('%j prints { "version": ... } as JSON', async (argv) => {
    const { code, stdout } = await cli(argv);
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ version });
  });

  it('--help lists every command on one line each, and nothing else at length', async () => {
    const { code, stdout } = await cli(['--help']);
    expect(code).toBe(0);
    for (const name of COMMANDS) expect(stdout).toMatch(new RegExp(`^  ${name} +\\S.*$`, 'm'));
    // One screen: a line per command, a header and a blank line per group; then the environment, a line per variable (test/cli/help-environment.test.ts).
    expect(stdout.split('\nEnvironment:\n')[0]!.split('\n').length).toBeLessThan(55);
    expect(stdout).toBe(overview());
  });

  it.each(COMMANDS)('warden %s --help prints that command\'s usage (exit 0)', async (name) => {
    const { code, stdout } = await cli([name, '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^usage: warden /);
    expect(stdout).toContain(name === 'approve' || name === 'deny' ? `warden ${name} <workflowId>` : `warden ${name}`);
  });

  it('an unknown command suggests the nearest one (exit 2)', async () => {
    const { code, stderr } = await cli(['stauts']);
    expect(code).toBe(2);
    expect(stderr).toContain('did you mean "status"?');
  });

  it.each([
    [['keys', 'list', '--jsn'], 'unknown option --jsn (options: --alg, --verify-for, --json)'],
    [['list', '--limit'], 'option --limit needs a value'],
    [['list', '--limit', '-1'], 'option --limit needs a value (a value that starts with "-" is written --limit=<value>)'],
    [['list', '--limit', '--json'], 'option --limit needs a value'],
    [['list', '--json=yes'], 'option --json takes no value'],
    [['status'], 'expected one workflow id'],
    [['list', '--status', 'weird'], '--status must be one of'],
    [['run', 'a.yaml', '--worker', '--no-worker'], '--worker and --no-worker exclude each other'],
  ])('bad usage %j: one clear line and the usage, exit 2', async (argv, message) => {
    const { code, stderr } = await cli(argv);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr).not.toContain('To specify a positional argument');
  });
});

// Each command and sub-command with every argument it takes, and one more: refused before it
// reads a state folder or reaches a server (`approvals` listed the pending actions instead).
describe('an argument too many is refused by every command (exit 2), before anything runs', () => {
  let ports: { WARDEN_TEMPORAL_PORT: string; WARDEN_TEMPORAL_UI_PORT: string } | undefined;
  it.each([
    'run a.yaml extra', 'list extra', 'status x extra', 'logs x extra', 'cancel x extra', 'worker extra',
    'mcp serve a.yaml extra', 'mcp tools a.yaml extra', 'approvals extra', 'approve x y extra', 'deny x y extra',
    'keys list extra', 'keys jwks extra', 'keys rotate extra', 'credentials explain t extra', 'credentials verify t extra',
    'approvers add n extra', 'approvers list extra', 'approvers remove n extra', 'snapshots x extra', 'rollback x extra',
    'audit verify extra', 'audit proof 1 extra', 'trace x extra', 'replay x extra', 'attest verify f extra',
    'receipt x extra', 'receipt verify f extra', 'server status extra', 'server start extra', 'server stop extra',
    'db status extra', 'db migrate extra', 'alerts extra', 'kill x extra', 'baseline list extra', 'baseline learn extra',
    'baseline show x extra', 'baseline forget x extra', 'console extra',
  ])('warden %s', async (line) => {
    const stateDir = join(await mkdtemp(join(tmpdir(), 'warden-extra-arg-')), 'state');
    // One pair of ports for every row (nothing may listen there): a test process has 100 pairs.
    ports ??= { WARDEN_TEMPORAL_PORT: String(await freePort()), WARDEN_TEMPORAL_UI_PORT: String(await freePort()) };
    const { code, stderr } = await cli(line.split(' '), { WARDEN_STATE_DIR: stateDir, ...ports });
    expect(code, stderr).toBe(2);
    expect(stderr).toMatch(/^warden /);
    expect(stderr).toContain('usage: warden ');
    expect(existsSync(stateDir)).toBe(false);
  });
});

describe('read-only commands never start a server', () => {
  it.each([['list'], ['status', 'x'], ['logs', 'x'], ['approvals'], ['cancel', 'x'], ['policy', 'test', 'foundation', '--against', 'x']])(
    'warden %j says none is running, and none is started',
    async (...argv) => {
      const stateDir = await mkdtemp(join(tmpdir(), 'warden-readonly-'));
      const port = String(await freePort());
      const { code, stderr } = await cli(argv, { WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: port, WARDEN_TEMPORAL_UI_PORT: String(await freePort()) });
      expect(code).toBe(1);
      expect(stderr).toContain(`no Temporal server is running on 127.0.0.1:${port}`);
      expect(await isPortInUse(Number(port))).toBe(false);
      expect(existsSync(join(stateDir, 'temporal', 'server.json'))).toBe(false);
    },
  );
});

describe('arguments', () => {
  it('policy test: packs first, every word after --against is a run', () => {
    const parse = (argv: string[]) => {
      const args = parseCommandArgs('policy test', '', argv, { stdout: () => {}, stderr: () => {}, env: {} }, { against: { type: 'string', multiple: true }, json: { type: 'boolean' } });
      if (typeof args === 'number') throw new Error('usage');
      return packsAndRuns(args.tokens);
    };
    expect(parse(['foundation', '--against', 'a', 'b'])).toEqual({ packs: ['foundation'], against: ['a', 'b'] });
    expect(parse(['foundation', 'enterprise', '--against', 'a', '--against', 'b', 'c'])).toEqual({ packs: ['foundation', 'enterprise'], against: ['a', 'b', 'c'] });
    expect(parse(['--against=a', 'b', '--json'])).toEqual({ packs: [], against: ['a', 'b'] });
  });

  it('policy compile: each quoted argument is one rule; unquoted words are one rule', async () => {
    expect((await sentencesOf(['never delete files', 'never fetch a URL the user did not give'])).map((s) => s.sentence)).toEqual([
      'never delete files',
      'never fetch a URL the user did not give',
    ]);
    expect((await sentencesOf(['never', 'delete', 'files'])).map((s) => s.sentence)).toEqual(['never delete files']);
    expect((await sentencesOf(['foundation'])).length).toBeGreaterThan(1);
  });
});

/** A task that waits for approval (a 42-row delete), started on the test worker. */
async function heldTask() {
  const dir = await mkdtemp(join(tmpdir(), 'warden-conv-'));
  const db = join(dir, 'crm.db');
  const database = new Database(db);
  database.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
  const insert = database.prepare('INSERT INTO leads (stale) VALUES (1)');
  for (let i = 0; i < 42; i++) insert.run();
  database.close();
  const task = parseTask(deleteTask(db), 'task.yaml', REPO_ROOT);
  const handle = await env.start(task);
  for (;;) {
    const state = await handle.query(taskStateQuery).catch(() => undefined);
    const requestId = state?.pendingApprovals[0]?.requestId;
    if (requestId !== undefined) return { workflowId: handle.workflowId, handle, db, requestId };
    await new Promise((r) => setTimeout(r, 50));
  }
}

function deleteTask(db: string) {
  return {
    user: 'fay@example.com',
    intent: 'clean up the stale leads',
    agent: { name: 'janitor', model: { driver: 'scripted', script: [{ tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } }, { final: 'cleaned' }] } },
    tools: { builtin: ['sql.exec'] },
    grants: { tools: ['sql.exec'], databases: ['crm'] },
    resources: { databases: { crm: db } },
  };
}

describe('list, status, logs, cancel', () => {
  let held: Awaited<ReturnType<typeof heldTask>>;
  let done: TaskResult;

  beforeAll(async () => {
    done = await env.runTask({ user: 'u', intent: 'nothing', agent: { name: 'idler', model: { driver: 'scripted', script: [{ final: 'ok' }] } } });
    held = await heldTask();
  }, 120_000);

  it('list --status running --json shows the running task, not the finished one', async () => {
    const { code, stdout } = await cli(['list', '--status', 'running', '--limit', '200', '--json']);
    expect(code).toBe(0);
    const tasks = JSON.parse(stdout) as { workflowId: string; status: string; agent?: string; user?: string }[];
    expect(tasks.find((t) => t.workflowId === held.workflowId)).toMatchObject({ status: 'running', agent: 'janitor', user: 'fay@example.com' });
    expect(tasks.some((t) => t.workflowId === done.workflowId)).toBe(false);
    const completed = JSON.parse((await cli(['list', '--status', 'completed', '--limit', '200', '--json'])).stdout) as { workflowId: string }[];
    expect(completed.some((t) => t.workflowId === done.workflowId)).toBe(true);
  });

  it('status shows the pending approval with its command; --json is one object', async () => {
    const text = await cli(['status', held.workflowId]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('status:  RUNNING');
    expect(text.stdout).toContain(`waiting for approval: warden approve ${held.workflowId} ${held.requestId}`);
    const json = JSON.parse((await cli(['status', held.workflowId, '--json'])).stdout) as { status: string; state: { pendingApprovals: unknown[] } };
    expect(json.status).toBe('running');
    expect(json.state.pendingApprovals).toHaveLength(1);
    const finished = JSON.parse((await cli(['status', done.workflowId, '--json'])).stdout) as { status: string; result: TaskResult };
    expect(finished.result.final?.answer).toBe('ok');
    expect((await cli(['status', 'no-such-task'])).stderr).toContain('no task with workflow id no-such-task');
  });

  const approver = registeredApprover('conventions');
  // Every command that takes a task's workflow id, the SDK's two ways of saying "not found"
  // (WorkflowNotFoundError, and fetchHistory's raw gRPC NOT_FOUND) alike: replay printed the gRPC
  // error with its stack, approve and deny the SDK's message with no code.
  it.each([
    [['status', 'no-such-task']],
    [['logs', 'no-such-task']],
    [['logs', 'no-such-task', '--follow']],
    [['cancel', 'no-such-task']],
    [['replay', 'no-such-task']],
    [['replay', 'no-such-task', '--export', join(tmpdir(), 'warden-no-such-task.json')]],
    [['receipt', 'no-such-task']],
    [['approve', 'no-such-task', 'request-1']],
    [['deny', 'no-such-task', 'request-1']],
    [['policy', 'test', 'foundation', '--against', 'no-such-task']],
    [['kill', 'no-such-task']],
  ])('%j with an unknown workflow id: ERR_TASK_NOT_FOUND, exit 1', async (argv) => {
    // approve and deny read their key first: a registered one, so the id is what fails.
    const { code, stderr } = await cli(argv, { WARDEN_APPROVER_KEY: approver.cli().io.env.WARDEN_APPROVER_KEY! });
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('ERR_TASK_NOT_FOUND: no task with workflow id no-such-task');
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  // A workflow Warden did not start (another type, on a queue no worker polls): no command reads it
  // as a task or acts on it. Before: status showed it RUNNING, cancel cancelled it, replay printed
  // the SDK's failure and said "consistent", approve and deny said "Failed to query Workflow".
  it.each([
    [['status', 'OTHER']],
    [['logs', 'OTHER']],
    [['cancel', 'OTHER']],
    [['replay', 'OTHER']],
    [['receipt', 'OTHER']],
    [['approve', 'OTHER', 'request-1']],
    [['deny', 'OTHER', 'request-1']],
    [['kill', 'OTHER']],
    [['policy', 'test', 'foundation', '--against', 'OTHER']],
    // trace said "no custody records ..., and Temporal does not know it": Temporal knows it, as another type.
    [['trace', 'OTHER']],
  ])('%j on a workflow that is not a Warden task: ERR_TASK_NOT_FOUND naming its type, exit 1, and it is left as it was', async (argv) => {
    const workflowId = `not-warden-${randomUUID()}`;
    const handle = await env.client.workflow.start('somebodyElsesWorkflow', { taskQueue: `nobody-polls-${randomUUID()}`, workflowId });
    try {
      const { code, stdout, stderr } = await cli(argv.map((a) => (a === 'OTHER' ? workflowId : a)), { WARDEN_APPROVER_KEY: approver.cli().io.env.WARDEN_APPROVER_KEY! });
      expect(code, stderr).toBe(1);
      expect(stderr).toContain(`ERR_TASK_NOT_FOUND: workflow ${workflowId} is a somebodyElsesWorkflow workflow, not a Warden task`);
      expect(stdout).toBe('');
      expect((await handle.describe()).status.name).toBe('RUNNING');
    } finally {
      await handle.terminate('test over');
    }
  });

  it('approve and deny on a task that has ended: ERR_APPROVAL_NOT_PENDING, saying it ended', async () => {
    for (const command of ['approve', 'deny']) {
      const { code, stderr } = await cli([command, done.workflowId, 'request-1'], { WARDEN_APPROVER_KEY: approver.cli().io.env.WARDEN_APPROVER_KEY! });
      expect(code, stderr).toBe(1);
      expect(stderr).toContain(`ERR_APPROVAL_NOT_PENDING: ${done.workflowId} has ended (completed): no action of it waits for approval`);
    }
  });

  // A workflow id no workflow can have, wherever a command takes one: refused as bad usage, naming
  // what is wrong, before any call. Before: an empty id printed the SDK's error and stack (exit 1),
  // a 70,000-character one ended the command with exit 0 and no output (the call was dropped),
  // and a line break in one forged a second line of the command's output.
  const badIds: [string, string][] = [
    ['empty', ''],
    ['1,001 characters', 'x'.repeat(1_001)],
    ['a line break', 'no-such\nforged line'],
    ['an escape', 'no-such\u001b[31m'],
  ];
  const idSlots: [string, (id: string) => string[]][] = [
    ['status', (id) => ['status', id]],
    ['logs', (id) => ['logs', id]],
    ['cancel', (id) => ['cancel', id]],
    ['replay', (id) => ['replay', id]],
    ['receipt', (id) => ['receipt', id]],
    ['approve', (id) => ['approve', id, 'request-1']],
    ['deny', (id) => ['deny', id, 'request-1']],
    ['kill', (id) => ['kill', id]],
    ['trace', (id) => ['trace', id]],
    ['snapshots', (id) => ['snapshots', id]],
    ['rollback', (id) => ['rollback', id]],
    ['policy test --against', (id) => ['policy', 'test', 'foundation', '--against', id]],
    ['alerts --task', (id) => ['alerts', '--task', id]],
    ['audit verify --task', (id) => ['audit', 'verify', '--task', id]],
    ['run --workflow-id', (id) => ['run', join(REPO_ROOT, 'examples', 'hello.yaml'), '--workflow-id', id]],
  ];
  it.each(idSlots.flatMap(([slot, argv]) => badIds.map(([what, id]) => [slot, what, argv(id)] as const)))('%s with a workflow id holding %s: ERR_WORKFLOW_ID_INVALID, exit 2', async (slot, what, argv) => {
    const { code, stdout, stderr } = await cli([...argv], { WARDEN_APPROVER_KEY: approver.cli().io.env.WARDEN_APPROVER_KEY! });
    expect(code, stderr).toBe(2);
    // An option's empty value is refused by the shared parser, naming the option, before any check of what it holds.
    const option = /--[a-z-]+$/.exec(slot)?.[0];
    if (what === 'empty' && option !== undefined) expect(stderr.split('\n')[0]).toMatch(new RegExp(`^warden [a-z ]+: option ${option} needs a value \\(it was given an empty one\\)$`));
    else expect(stderr.split('\n')[0]).toMatch(/^warden [a-z ]+: ERR_WORKFLOW_ID_INVALID: the workflow id (is empty|has 1001 characters; Temporal takes at most 1000|holds a control character \(U\+00(0A|1B) at character 8\))$/);
    expect(stdout).toBe('');
  });

  it('logs prints the steps and held actions; --json one event a line', async () => {
    const { stdout } = await cli(['logs', held.workflowId]);
    expect(stdout).toContain('#0 sql.exec');
    expect(stdout).toContain('waiting for approval');
    const lines = (await cli(['logs', done.workflowId, '--json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string });
    expect(lines.at(-1)).toMatchObject({ kind: 'result', result: { status: 'completed' } });
  });

  it('cancel ends the task, runs its compensations and says what was undone; logs --follow ends with it', async () => {
    const follower = cli(['logs', held.workflowId, '--follow']);
    const { code, stdout } = await cli(['cancel', held.workflowId]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^cancelled ${held.workflowId}: `));
    const followed = await follower;
    expect(followed.stdout).toContain(`task ${held.workflowId}: CANCELLED`);
    expect((await cli(['status', held.workflowId])).code).toBe(1);
    expect((await cli(['cancel', held.workflowId])).stderr).toContain('is not running');
  }, 120_000);
});

describe('replay --file', () => {
  it("reads Temporal's own JSON export (temporal workflow show --output json)", async () => {
    const result = await env.runTask({ user: 'u', intent: 'nothing', agent: { name: 'idler', model: { driver: 'scripted', script: [{ final: 'ok' }] } } });
    const temporalCli = await findOrBuildTemporalCli({ env: process.env, log: () => {} });
    const { address, namespace } = testTemporalAddress();
    const { stdout } = await promisify(execFile)(temporalCli, ['workflow', 'show', '--address', address, '--namespace', namespace, '--workflow-id', result.workflowId, '--output', 'json'], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const file = join(await mkdtemp(join(tmpdir(), 'warden-history-')), 'history.json');
    await writeFile(file, stdout);
    const replay = await cli(['replay', '--file', file, '--json']);
    expect(replay.code, replay.stderr + replay.stdout).toBe(0);
    expect(JSON.parse(replay.stdout)).toMatchObject({ ok: true, workflows: [{ workflowId: result.workflowId }] });
  });

  it('a file that is not a history is bad input (exit 2), named', async () => {
    const file = join(await mkdtemp(join(tmpdir(), 'warden-history-')), 'nope.json');
    await writeFile(file, '{"hello":"world"}');
    const { code, stderr } = await cli(['replay', '--file', file]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${file} is not a workflow history`);
  });
});

describe('warden run as a process', () => {
  async function heldTaskFile(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'warden-sigint-'));
    const db = join(dir, 'crm.db');
    const database = new Database(db);
    database.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
    for (let i = 0; i < 42; i++) database.prepare('INSERT INTO leads (stale) VALUES (1)').run();
    database.close();
    const file = join(dir, 'task.yaml');
    await writeFile(file, stringify(deleteTask(db)));
    return file;
  }

  it('Ctrl-C cancels the task, its compensations run, one line says what was undone, exit 130, no stack trace', async () => {
    const child = spawn(process.execPath, [BIN, 'run', await heldTaskFile()], { cwd: REPO_ROOT, env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collectOutput(child);
    const exited = exitOf(child);
    const stderr = await waitForOutput(child, output, 'stderr', /waiting for approval: warden approve (\S+) /);
    const workflowId = /waiting for approval: warden approve (\S+) /.exec(stderr)![1]!;
    child.kill('SIGINT');
    expect((await exited).code, output.stderr).toBe(130);
    expect(output.stderr).toContain('cancelling the task; its compensations run now');
    expect(output.stderr).toMatch(new RegExp(`warden: cancelled ${workflowId}: `));
    expect(output.stderr).not.toMatch(/\n\s+at /);
    expect(output.stderr).not.toContain('PromiseCompletionTimeoutError');
    const result = await agentTaskResult(env.client.workflow.getHandle(workflowId));
    expect(result.status).toBe('cancelled');
    expect(result.recovery).toBeDefined();
  }, 240_000);

  it('with --no-worker and nobody polling, says so; Ctrl-C twice leaves the task cancel-requested (exit 130)', async () => {
    const taskQueue = `nobody-polls-${randomUUID()}`;
    const child = spawn(process.execPath, [BIN, 'run', await heldTaskFile(), '--no-worker', '--task-queue', taskQueue], { cwd: REPO_ROOT, env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collectOutput(child);
    const exited = exitOf(child);
    const stderr = await waitForOutput(child, output, 'stderr', `no worker is polling task queue ${taskQueue}`);
    const workflowId = /started (\S+) on/.exec(stderr)![1]!;
    child.kill('SIGINT');
    await waitForOutput(child, output, 'stderr', 'cancelling the task');
    child.kill('SIGINT');
    expect((await exited).code, output.stderr).toBe(130);
    expect(output.stderr).toContain(`left ${workflowId} cancel-requested`);
    await env.client.workflow.getHandle(workflowId).terminate('test cleanup');
  }, 240_000);
});
