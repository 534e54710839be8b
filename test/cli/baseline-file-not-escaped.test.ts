/**
 * Regression, once an open finding (s11 attack on `terminalLine`; fixed by the TTY-wide escaping and
 * the output scan, test/cli/terminal-output-scan.test.ts): `warden baseline learn --from <results.json>`
 * learns from task results in a file (`warden run --json` output someone collected, or was handed)
 * and prints each learnt baseline's agent name and each skipped run's workflow id as the file
 * states them (cli/commands/baseline.ts `summary` and the `skipped` lines); neither field is
 * checked when the file is read (`readTaskResultsFile`), so an agent name holding escapes is also
 * stored as a baseline and printed raw by every later `warden baseline list` / `show`.
 * The output of learn and of the list after it must hold no control character (the table of
 * test/terminal-text.test.ts). Suggested fix: `terminalLine` on every line of the baseline views;
 * and refuse, when a results file is read, an agent name a task file could not have given
 * (task/task-schema.ts's agent name).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { baselineCommand } from '../../cli/commands/baseline';
import type { CliIo } from '../../cli/cli-io';
import type { TaskResult } from '../../task/task-run';

/** Any character terminal-text.ts escapes. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;
/** Erase the line, column 1, a line of the writer's; then conceal what follows. */
const FORGED = '\u001b[2K\u001b[1Gno agent baselines (nothing to learn from)\u001b[8m';

let stateDir: string;
beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'warden-baseline-file-'));
});
afterAll(() => rm(stateDir, { recursive: true, force: true }));

function result(workflowId: string, agent: string, status: TaskResult['status']): TaskResult {
  return {
    workflowId,
    runId: 'r',
    agent,
    model: { id: 'm', version: '1' },
    depth: 0,
    status,
    steps: [{ index: 0, turn: 0, kind: 'tool', tool: 'http.fetch', args: { url: 'https://api.example.com/x' }, decision: 'allow', reason: 'ok', executed: true, output: { status: 200 }, startedAt: '2026-11-30T10:00:00.000Z', durationMs: 1 }],
    children: [],
    final: null,
  };
}

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env: { PATH: process.env.PATH, HOME: stateDir, WARDEN_STATE_DIR: stateDir } };
  const code = await baselineCommand(argv, io);
  return { code, out };
}

it('a results file\'s agent name and workflow id print no control, at learn and at every later list', async () => {
  const file = join(stateDir, 'results.jsonl');
  await writeFile(file, [result('w-1', `clerk${FORGED}`, 'completed'), result(`w-2${FORGED}`, 'clerk', 'failed')].map((r) => JSON.stringify(r)).join('\n'));
  const learnt = await run(['learn', '--from', file]);
  // The premise: the file was read and learnt from (one run learnt, one skipped).
  expect(learnt.code, learnt.out).toBe(0);
  expect(learnt.out).toContain('learnt from 1 run(s); skipped 1');
  const listed = await run(['list']);
  expect(listed.code, listed.out).toBe(0);

  const unsafe = [...learnt.out.split('\n'), ...listed.out.split('\n')].filter((line) => CONTROL.test(line));
  expect(unsafe).toEqual([]);
});
