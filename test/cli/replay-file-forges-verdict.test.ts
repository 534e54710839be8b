/**
 * Regression, once an open finding (s11 attack on `terminalLine`; fixed by the TTY-wide escaping and
 * the output scan, test/cli/terminal-output-scan.test.ts): `warden replay --file <history.json>` checks a
 * history someone else hands the operator (a bug report's attachment, Temporal's JSON export), and
 * prints the workflow id the file states raw (cli/commands/replay.ts `describe`). An id holding
 * `ESC[2K ESC[1G` (erase the line, column 1), a line of the writer's and `ESC[8m` (conceal, which
 * stays on until reset) prints the verdict the writer chose, `replay: consistent`, and hides what
 * follows, Warden's `REPLAY FAILED` and `replay: INCONSISTENT` lines included (the exit code is
 * still 1). Here: Warden's committed hello history (test/history-files/history-hello.json) with
 * its id replaced. The output must hold no control character (the table of
 * test/terminal-text.test.ts) and no verdict line but Warden's. Suggested fix: `terminalLine` on
 * every line of `describe` (the id, the replay error, the custody mismatches), as `warden status`
 * and `warden logs` do.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { replayCommand } from '../../cli/commands/replay';
import { REPO_ROOT } from '../support/warden-test-env';

/** Any character terminal-text.ts escapes. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-forged-replay-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

it('a history file\'s workflow id prints no control and no verdict of its own', async () => {
  const history = JSON.parse(await readFile(join(REPO_ROOT, 'test', 'history-files', 'history-hello.json'), 'utf8')) as { workflowId: string };
  history.workflowId = 'x\u001b[2K\u001b[1Ghistory-hello: 42 events replay against the current workflow code\nreplay: consistent\u001b[8m';
  const file = join(dir, 'history.json');
  await writeFile(file, JSON.stringify(history));

  let out = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env: { ...process.env, WARDEN_STATE_DIR: join(dir, 'state') } };
  const code = await replayCommand(['--file', file], io);
  // The premise: Warden's own verdict is INCONSISTENT (the id is also the children's prefix).
  expect(code, out).toBe(1);
  expect(out).toMatch(/^replay: INCONSISTENT$/m);

  expect(out.split('\n').filter((line) => CONTROL.test(line))).toEqual([]);
  // (On a terminal the rest of that line is concealed: what shows is `replay: consistent`.)
  expect(out.split('\n').filter((line) => line.startsWith('replay: consistent'))).toEqual([]);
}, 300_000);

// A history of another program's workflow (Temporal's own JSON export, here of a `foo` workflow):
// its type has no function in Warden's bundle, and the SDK only logged the failed activation, so
// replay said "consistent" and exited 0 (atk2). The verdict names the type and fails.
it('a history file of a workflow that is not a Warden task fails the replay, naming its type', async () => {
  let out = '';
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (out += t), env: { ...process.env, WARDEN_STATE_DIR: join(dir, 'state') } };
  const code = await replayCommand(['--file', join(__dirname, 'fixtures', 'foreign-workflow.history.json')], io);
  expect(code, out).toBe(1);
  expect(out).toContain('REPLAY FAILED: not a Warden task: its workflow type is foo, not agentTask');
  expect(out).toContain('replay: INCONSISTENT');
  expect(out).not.toContain('replay: consistent');
}, 120_000);
