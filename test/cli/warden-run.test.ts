/**
 * `warden run` as a user runs it: a child process, the bundled examples, exit codes, `--json`.
 * It uses the test state folder, so it reuses the test Temporal server.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { TaskResultSchema, type TaskResult } from '../../task/task-run';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

const run = promisify(execFile);

async function warden(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { address } = testTemporalAddress();
  const port = address.split(':').pop();
  try {
    const { stdout, stderr } = await run(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('warden run', () => {
  it.each(['examples/hello.yaml', 'examples/injected-agent.yaml', 'examples/inventory.yaml'])(
    'completes %s with the documented --json shape',
    async (example) => {
      const { code, stdout, stderr } = await warden(['run', example, '--json']);
      expect(code, stderr).toBe(0);
      const result = JSON.parse(stdout) as TaskResult;
      expect(TaskResultSchema.safeParse(result).error).toBeUndefined();
      expect(result.status).toBe('completed');
      expect(result.workflowId).toMatch(/^warden-/);
      expect(result.runId).toMatch(/\S/);
      for (const step of result.steps) {
        expect(Object.keys(step)).toEqual(expect.arrayContaining(['tool', 'args', 'decision', 'reason', 'executed']));
      }
      expect(result.final?.answer).toMatch(/\S/);
    },
    120_000,
  );

  it('records the prompt-injected actions of the injected-agent example as refused', async () => {
    const { stdout } = await warden(['run', 'examples/injected-agent.yaml', '--json']);
    const result = JSON.parse(stdout) as TaskResult;
    // The write outside the workspace is stopped by the foundation pack before the sandbox would refuse it.
    expect(result.steps.map((s) => s.error?.code ?? null)).toEqual([null, 'ERR_TOOL_NOT_GRANTED', 'ERR_POLICY_DENIED', null]);
    expect(result.steps[2]?.policy?.matched.map((m) => m.sentence)).toContain('never write outside /workspace');
  }, 120_000);

  it('prints steps and a summary without --json, and exits 1 when the task is denied', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-cli-'));
    const file = join(dir, 'denied.yaml');
    await writeFile(
      file,
      `user: eve\nintent: try\nagent:\n  name: rogue\n  model:\n    driver: scripted\n    script:\n      - tool: sql.exec\n        args: { database: x, sql: "DELETE FROM t" }\n      - final: done\n`,
    );
    const { code, stdout, stderr } = await warden(['run', file]);
    expect(code).toBe(1);
    // The step as it ran (stderr), once; the summary (stdout) says how the task ended.
    expect(stderr).toMatch(/#0 sql\.exec .*DENIED.*ERR_TOOL_UNKNOWN/);
    expect(`${stderr}${stdout}`.split('#0 sql.exec').length - 1).toBe(1);
    expect(stdout).toMatch(/^task rogue \(.*\): DENIED/);
    expect(stdout).toContain('1 step(s), shown on stderr as they ran');
  }, 120_000);

  it('rejects a bad task file with exit code 2, naming the file and the field', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-cli-'));
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'user: eve\nintent: x\nagent:\n  name: Bad Name\n  model: { driver: scripted, script: [] }\n');
    const { code, stdout, stderr } = await warden(['run', file, '--json']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('ERR_TASK_FILE_INVALID');
    // Compiler style: file:line:column, then the field.
    expect(stderr).toContain(`${file}:4:3: agent.name:`);
    expect(stderr).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: agent\\.model\\.script:`));
  });

  it('exits 2 on usage errors', async () => {
    expect((await warden(['run'])).code).toBe(2);
    expect((await warden(['frobnicate'])).code).toBe(2);
    expect((await warden(['run', 'a.yaml', '--colour'])).stderr).toContain('--colour');
  });
});
