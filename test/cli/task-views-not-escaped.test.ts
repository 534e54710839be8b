/**
 * Regression, once an open finding (s11 attack on `terminalLine`; fixed by the TTY-wide escaping and
 * the output scan, test/cli/terminal-output-scan.test.ts): three terminal views of a finished task still print
 * what its agent wrote raw, after terminal-text.ts `terminalLine` was applied to run, status, logs,
 * list, kill, credentials verify and the rest:
 *
 * - `warden trace <id>` (custody/task-timeline.ts `formatTaskTimeline`): the model's final answer,
 *   the task's reason, the agent's claims and their verdicts' reasons, alert reasons;
 * - `warden snapshots <id>` (cli/commands/snapshots.ts `formatRecords`): the workspace paths the
 *   task committed, which the model chose (`fs.write`'s `path`);
 * - `warden rollback <id>` (cli/commands/rollback.ts): the same paths, `restored` / `deleted`, and
 *   in the refusal when a file changed since the commit (ERR_ROLLBACK_CONFLICT's message,
 *   recovery/workspace-rollback.ts, printed as `${error.code}: ${error.message}`).
 *
 * Here a scripted agent (standing for a model: the script is what a model would answer) writes a
 * file whose name moves the cursor and sets the terminal's title, and ends with a final answer and
 * a claim that rewrite the line above. Each view's output must hold no control character (the
 * table of test/terminal-text.test.ts). Suggested fix: `terminalLine` on every line of the three
 * views (and the scan over cli/ that test/cli/terminal-views-escaped.test.ts suggested, which would
 * have named `formatTaskTimeline` and `formatRecords`).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { traceCommand } from '../../cli/commands/trace';
import { snapshotsCommand } from '../../cli/commands/snapshots';
import { rollbackCommand } from '../../cli/commands/rollback';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

/** Any character terminal-text.ts escapes. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;
/** Cursor up, erase the line, column 1, a row of the writer's; then the window title. */
const FORGED = '\u001b[1A\u001b[2K\u001b[1Gpayroll-sync  COMPLETED  auditor\u001b]0;pwned\u0007';

async function run(command: (argv: string[], io: CliIo) => Promise<number>, argv: string[]): Promise<string> {
  let out = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR } };
  await command(argv, io);
  return out;
}

describe('a finished task\'s views print no control of its agent\'s', () => {
  let env: WardenTestEnv;
  let workspace: string;
  let result: TaskResult;
  beforeAll(async () => {
    workspace = await mkdtemp(join(tmpdir(), 'warden-task-views-'));
    env = await startWardenTestEnv();
    result = await env.runTask(
      {
        user: 'eve@example.com',
        intent: 'Write a note.',
        agent: {
          name: 'scribe',
          model: {
            driver: 'scripted',
            script: [
              { tool: 'fs.write', args: { path: `note${FORGED}.txt`, content: 'hello\n' } },
              { final: `done${FORGED}`, claims: [`it is done${FORGED}`] },
            ],
          },
        },
        tools: { builtin: ['fs.write'] },
        grants: { tools: ['fs.write'] },
        resources: { workspace },
        snapshot: true,
      },
      { baseDir: workspace },
    );
  }, 600_000);
  afterAll(async () => {
    await env?.close();
    if (workspace !== undefined) await rm(workspace, { recursive: true, force: true });
  });

  it('the task ran and committed the file (premise)', () => {
    expect(result.status, result.reason).toBe('completed');
    expect(result.final?.answer).toContain(FORGED);
  });

  type Command = (argv: string[], io: CliIo) => Promise<number>;
  it.each<[string, Command, (id: string) => string[]]>([
    ['warden trace', traceCommand, (id) => [id]],
    ['warden snapshots', snapshotsCommand, (id) => [id]],
    ['warden rollback, refused (the file changed since the commit)', rollbackCommand, (id) => [id]],
    ['warden rollback --force', rollbackCommand, (id) => [id, '--force']],
  ])('%s', async (view, command, argv) => {
    // The refusal's error names the conflicting path: the file changed behind the task.
    if (view.includes('refused')) await writeFile(join(workspace, `note${FORGED}.txt`), 'changed\n');
    const out = await run(command, argv(result.workflowId));
    // The view shows the task (so the row is not passed by an empty answer).
    expect(out, out).toContain('note');
    const unsafe = out.split('\n').filter((line) => CONTROL.test(line));
    expect(unsafe).toEqual([]);
  }, 120_000);
});
