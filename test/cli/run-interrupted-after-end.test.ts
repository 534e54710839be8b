/**
 * A signal that reaches `warden run` when its task has already ended changes nothing: the exit
 * code is the task's real outcome, and one line says the interrupt came after the end. And
 * `warden status` names a cancelled task's status plainly, without the workflow's own "failed".
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { statusOf } from '../../cli/commands/status';
import { main } from '../../cli/main';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { TEST_STATE_DIR } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

const TASK = `user: eve@example.com
intent: Write a file
agent:
  name: writer
  model:
    driver: scripted
    script:
      - tool: fs.write
        args: { path: a.txt, content: "done\\n" }
      - final: done
tools:
  builtin: [fs.write]
grants:
  tools: [fs.write]
resources:
  workspace: ./ws
`;

describe('warden run interrupted after its task ended', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)('%s with the result in hand exits with the outcome (0), not the signal', async (signal) => {
    const dir = makeTempDir('run-late-signal');
    fs.mkdirSync(path.join(dir, 'ws'));
    const file = path.join(dir, 'task.yaml');
    fs.writeFileSync(file, TASK);
    const before = new Set(process.listeners(signal));
    let out = '';
    let err = '';
    let sent = false;
    const io: CliIo = {
      // The summary is printed once the result is in hand: the signal comes exactly then.
      stdout: (text) => {
        out += text;
        if (sent) return;
        sent = true;
        for (const listener of process.listeners(signal)) if (!before.has(listener)) (listener as (s: string) => void)(signal);
      },
      stderr: (text) => void (err += text),
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop() },
    };
    const code = await main(['run', file, '--worker'], io);
    expect(sent, err).toBe(true);
    expect(out).toMatch(/COMPLETED/);
    expect(code, err).toBe(0);
    expect(err).toContain(`${signal} came after the task had ended completed: nothing was cancelled`);
    expect(err).not.toMatch(/cancelling the task/);
    expect(fs.readFileSync(path.join(dir, 'ws', 'a.txt'), 'utf8')).toBe('done\n');
  }, 300_000);
});

describe('warden status', () => {
  it.each([
    ['a cancelled task (its workflow fails by design)', { status: 'cancelled', execution: 'FAILED', result: {} }, 'CANCELLED'],
    ['a failed task', { status: 'failed', execution: 'FAILED', result: {} }, 'FAILED'],
    ['a completed task', { status: 'completed', execution: 'COMPLETED', result: {} }, 'COMPLETED'],
    ['a running task', { status: 'running', execution: 'RUNNING' }, 'RUNNING'],
    ['a terminated workflow without a Warden result', { status: 'failed', execution: 'TERMINATED' }, 'FAILED (workflow terminated)'],
    ['a cancelled workflow without a Warden result', { status: 'cancelled', execution: 'CANCELLED' }, 'CANCELLED'],
    ['a task whose status cannot be read', { status: undefined, execution: 'TIMED_OUT' }, 'UNKNOWN (workflow timed_out)'],
  ])('shows %s as %s', (_label, view, shown) => {
    expect(statusOf(view as Parameters<typeof statusOf>[0])).toBe(shown);
  });
});
